// Issue 14: a table job and a transcribe job feed the engine from memory. The output folder
// holds the outputs the user asked for, the engine's JSONL and the journal, and nothing else:
// no OUT.requests.jsonl, no OUT.rows.sqlite, no requests-*.jsonl or responses-*.jsonl.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
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

}  // namespace
