// Issue 14: a table job and a transcribe job feed the engine from memory. The output folder
// holds the outputs the user asked for, the engine's JSONL and the journal, and nothing else:
// no OUT.requests.jsonl, no OUT.rows.sqlite, no requests-*.jsonl or responses-*.jsonl.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "support/files.hpp"
#include "support/run_process.hpp"
#include "support/sim_process.hpp"

namespace {

namespace fs = std::filesystem;
using floodgate::test::RunProcess;
using floodgate::test::SimProcess;
using floodgate::test::slurp;
using floodgate::test::TempDir;

void write_file(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// The names in `folder`, without the journal's own files (OUT.journal, its -wal/-shm and
// lock), which are expected beside every output.
std::set<std::string> listing(const fs::path& folder, const std::string& journal) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(folder)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(journal, 0) == 0) continue;
    names.insert(name);
  }
  return names;
}

std::string names_of(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += n + " ";
  return out;
}

TEST(NoTempFiles, ATableJobWritesOnlyItsResultsTheEngineOutputAndTheJournal) {
  SimProcess sim;
  TempDir dir("notemp_table");
  fs::create_directory(dir.path / "in");
  fs::create_directory(dir.path / "out");
  std::string table = "id,text\n";
  for (int i = 0; i < 40; ++i) table += "r" + std::to_string(i) + (i == 7 ? "\n" : ",hello " + std::to_string(i) + "\n");
  write_file(dir.path / "in" / "data.csv", table);
  write_file(dir.path / "in" / "prompt.txt", "Say: {text}\n");
  for (const char* out : {"out.csv", "out.sqlite"}) {
    const std::string out_path = (dir.path / "out" / out).string();
    RunProcess run({(dir.path / "in" / "data.csv").string(), "--template", (dir.path / "in" / "prompt.txt").string(), "--model",
                    "gpt-4o-mini", "--id-column", "id", "-q", "-o", out_path, "--base-url", sim.base_url()},
                   sim.api_key(), dir.path / "run.log");
    EXPECT_EQ(run.wait(std::chrono::seconds(60)), 1) << slurp(dir.path / "run.log");  // row 7 is an error row
  }
  const std::set<std::string> expected = {"out.csv", "out.csv.raw.jsonl", "out.sqlite", "out.sqlite.raw.jsonl"};
  std::set<std::string> got;
  for (const std::string& name : listing(dir.path / "out", "out.csv.journal")) {
    if (name.rfind("out.sqlite.journal", 0) != 0) got.insert(name);
  }
  EXPECT_EQ(got, expected) << names_of(got);
  EXPECT_TRUE(fs::exists(dir.path / "out" / "out.csv.journal"));
  EXPECT_TRUE(fs::exists(dir.path / "out" / "out.sqlite.journal"));
}

// A WAV file of `seconds` of a 440 Hz tone (8 kHz mono, 16-bit PCM): no silence, so a split
// cuts at exactly every --max-chunk-seconds.
void write_tone_wav(const fs::path& path, int seconds) {
  const std::uint32_t rate = 8000;
  const std::uint32_t samples = rate * static_cast<std::uint32_t>(seconds);
  std::string bytes;
  auto u32 = [&](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  auto u16 = [&](std::uint16_t v) {
    bytes.push_back(static_cast<char>(v & 0xff));
    bytes.push_back(static_cast<char>(v >> 8));
  };
  bytes += "RIFF";
  u32(36 + samples * 2);
  bytes += "WAVEfmt ";
  u32(16);
  u16(1);  // PCM
  u16(1);  // mono
  u32(rate);
  u32(rate * 2);
  u16(2);
  u16(16);
  bytes += "data";
  u32(samples * 2);
  for (std::uint32_t i = 0; i < samples; ++i) {
    const double v = 8000.0 * std::sin(2.0 * 3.14159265358979 * 440.0 * static_cast<double>(i) / rate);
    u16(static_cast<std::uint16_t>(static_cast<std::int16_t>(v)));
  }
  write_file(path, bytes);
}

// Every file under `folder`, as paths relative to it.
std::set<std::string> files_under(const fs::path& folder) {
  std::set<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(folder)) {
    if (e.is_regular_file()) names.insert(fs::relative(e.path(), folder).string());
  }
  return names;
}

// A file of requests or responses: transcribe once wrote requests-*.jsonl for the engine and
// read back its responses-*.jsonl. The only JSONL a transcribe job may leave is its results.
bool is_request_or_response_file(const std::string& relative) {
  const std::string name = fs::path(relative).filename().string();
  if (name.rfind("requests-", 0) == 0 || name.rfind("responses-", 0) == 0) return true;
  return fs::path(name).extension() == ".jsonl" && relative != "results.jsonl";
}

TEST(NoTempFiles, ATranscribeJobWritesNoRequestOrResponseFiles) {
  TempDir dir("notemp_transcribe");
  fs::create_directory(dir.path / "in");
  write_tone_wav(dir.path / "in" / "long.wav", 25);  // three chunks of 10 s at most
  write_tone_wav(dir.path / "in" / "short.wav", 4);  // sent whole
  const fs::path out = dir.path / "out";
  const std::vector<std::string> args = {(dir.path / "in").string(), "-o", out.string(), "--max-chunk-seconds", "10",
                                         "--max-attempts", "1", "--quiet"};
  RunProcess::Options transcribe;
  transcribe.command = "transcribe";
  auto with_url = [&](const SimProcess& sim) {
    auto a = args;
    a.insert(a.end(), {"--base-url", sim.base_url()});
    return a;
  };
  {
    // Every upload fails: the job keeps what a resume needs (the journal, the answers
    // store), and no file of requests or responses.
    SimProcess failing({"--fault-rate", "1", "--faults", "500"});
    RunProcess run(with_url(failing), failing.api_key(), dir.path / "run1.log", transcribe);
    ASSERT_EQ(run.wait(std::chrono::seconds(120)), 1) << slurp(dir.path / "run1.log");
    const auto files = files_under(out);
    EXPECT_TRUE(files.count("results.jsonl") == 1 && files.count("results.csv") == 1) << names_of(files);
    EXPECT_TRUE(std::any_of(files.begin(), files.end(), [](const std::string& f) { return f.rfind(".floodgate/", 0) == 0; }))
        << "the state a resume needs is kept: " << names_of(files);
    for (const auto& f : files) EXPECT_FALSE(is_request_or_response_file(f)) << f;
  }
  {
    // The resume sends them; a finished job leaves its transcripts and results only.
    SimProcess healthy;
    RunProcess run(with_url(healthy), healthy.api_key(), dir.path / "run2.log", transcribe);
    ASSERT_EQ(run.wait(std::chrono::seconds(120)), 0) << slurp(dir.path / "run2.log");
    const std::set<std::string> expected = {".floodgate.lock", "long.json", "short.json", "results.csv", "results.jsonl"};
    EXPECT_EQ(files_under(out), expected) << names_of(files_under(out));
    EXPECT_EQ(healthy.ledger().size(), 4U);  // 3 chunks + 1 whole file, each once
  }
}

}  // namespace
