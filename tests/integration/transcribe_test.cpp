// `floodgate transcribe` against `floodgate sim`: a folder of good and bad audio (made at
// test time), long files split into chunks, every chunk sent exactly once (the sim's
// ledger is the judge), transcripts reassembled in chunk order with monotonic timestamps
// inside the file's duration, error rows for the bad files, and resume after failed chunks.
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "audio/audio_fixture.hpp"
#include "floodgate/audio/chunk_dir.hpp"
#include "floodgate/audio/merge.hpp"
#include "floodgate/audio_media/probe.hpp"
#include "floodgate/audio_media/split.hpp"
#include "support/files.hpp"
#include "support/sim_process.hpp"

namespace {

namespace fs = std::filesystem;
using floodgate::test::SimProcess;
using floodgate::test::slurp;
using floodgate::test::TempDir;
namespace audio = floodgate::audio;

// Runs floodgate transcribe; returns its exit code. Output goes to OUTDIR/../log.txt.
int transcribe(const SimProcess& sim, const std::vector<std::string>& args, const fs::path& log) {
  std::string cmd = std::string("'") + FLOODGATE_BIN + "' transcribe --quiet --base-url '" + sim.base_url() +
                    "' --api-key '" + sim.api_key() + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " > '" + log.string() + "' 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::map<std::string, nlohmann::json> results_by_name(const fs::path& outdir) {
  std::map<std::string, nlohmann::json> rows;
  std::ifstream in(outdir / "results.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    rows[fs::path(j["filename"].get<std::string>()).filename().string()] = j;
  }
  return rows;
}

std::vector<nlohmann::json> transcription_lines(const SimProcess& sim) {
  std::vector<nlohmann::json> out;
  for (auto& l : sim.ledger()) {
    if (l.value("path", "") == "/v1/audio/transcriptions") out.push_back(l);
  }
  return out;
}

// The SQLite results table (--table x.sqlite), read back with the sqlite3 API: the declared
// columns (name -> type) and the rows (column -> value as JSON: null, number or string).
struct SqliteTableDump {
  std::vector<std::pair<std::string, std::string>> columns;
  std::vector<nlohmann::json> rows;
};

SqliteTableDump read_sqlite_results(const fs::path& path) {
  SqliteTableDump out;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    ADD_FAILURE() << "cannot open " << path;
    return out;
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA table_info(results)", -1, &st, nullptr) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      out.columns.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 1)),
                               reinterpret_cast<const char*>(sqlite3_column_text(st, 2)));
    }
  }
  sqlite3_finalize(st);
  if (sqlite3_prepare_v2(db, "SELECT * FROM results", -1, &st, nullptr) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      nlohmann::json row = nlohmann::json::object();
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const std::string name = sqlite3_column_name(st, i);
        switch (sqlite3_column_type(st, i)) {
          case SQLITE_INTEGER: row[name] = sqlite3_column_int64(st, i); break;
          case SQLITE_FLOAT: row[name] = sqlite3_column_double(st, i); break;
          case SQLITE_TEXT: row[name] = reinterpret_cast<const char*>(sqlite3_column_text(st, i)); break;
          default: row[name] = nullptr; break;
        }
      }
      out.rows.push_back(std::move(row));
    }
  } else {
    ADD_FAILURE() << "no results table in " << path << ": " << sqlite3_errmsg(db);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// Every row of the SQLite table once, and equal to the row results.jsonl has for that file.
void expect_sqlite_matches_jsonl(const fs::path& db, const fs::path& outdir) {
  const auto jsonl = results_by_name(outdir);
  const auto table = read_sqlite_results(db);
  ASSERT_EQ(table.rows.size(), jsonl.size());
  std::set<std::string> seen;
  for (const auto& row : table.rows) {
    const std::string name = fs::path(row["filename"].get<std::string>()).filename().string();
    SCOPED_TRACE(name);
    EXPECT_TRUE(seen.insert(name).second) << "row twice";
    ASSERT_EQ(jsonl.count(name), 1U);
    const auto& expected = jsonl.at(name);
    for (const auto& [column, value] : row.items()) {
      EXPECT_EQ(value, expected.at(column)) << column;
    }
  }
}

struct Cue {
  int number;
  double start;
  double end;
};

std::vector<Cue> read_srt(const std::string& text) {
  std::vector<Cue> cues;
  std::istringstream in(text);
  std::string number;
  std::string timing;
  std::string words;
  std::string blank;
  while (std::getline(in, number) && std::getline(in, timing) && std::getline(in, words)) {
    std::getline(in, blank);
    const auto arrow = timing.find(" --> ");
    cues.push_back(Cue{std::stoi(number), audio::parse_timestamp(timing.substr(0, arrow)).value().count(),
                       audio::parse_timestamp(timing.substr(arrow + 5)).value().count()});
  }
  return cues;
}

TEST(Transcribe, FolderOfGoodAndBadAudioSplitSentOnceMergedInOrder) {
  TempDir tmp("transcribe_folder");
  const fs::path in = tmp.path / "in";
  fs::create_directories(in);
  for (const char* name : {"speech.mp3", "speech.m4a", "speech.ogg", "tone.wav", "empty.mp3", "truncated.mp3", "text.mp3"}) {
    fs::copy_file(audio::testing::fixture(name), in / name);
  }
  SimProcess sim;
  const fs::path out = tmp.path / "out";
  const fs::path db = tmp.path / "results.sqlite";
  const int rc = transcribe(sim, {in.string(), "-o", out.string(), "--max-chunk-seconds", "10", "--response-format", "srt",
                                  "--table", db.string()},
                            tmp.path / "log.txt");
  EXPECT_EQ(rc, 1) << slurp(tmp.path / "log.txt");  // some files failed (the bad ones)

  const auto rows = results_by_name(out);
  ASSERT_EQ(rows.size(), 7U) << slurp(out / "results.jsonl");
  EXPECT_EQ(rows.at("empty.mp3")["status"], "error");
  EXPECT_EQ(rows.at("empty.mp3")["error"].get<std::string>().rfind("empty:", 0), 0U);
  EXPECT_EQ(rows.at("truncated.mp3")["error"].get<std::string>().rfind("corrupt:", 0), 0U);
  EXPECT_EQ(rows.at("text.mp3")["error"].get<std::string>().rfind("not_audio:", 0), 0U);
  EXPECT_TRUE(fs::exists(out / "results.csv"));

  // The SQLite table: the columns, typed, keyed; one row per file, as in results.jsonl.
  const std::vector<std::pair<std::string, std::string>> columns = {
      {"key", "TEXT"},       {"filename", "TEXT"},    {"duration_seconds", "REAL"}, {"size_bytes", "INTEGER"},
      {"chunks", "INTEGER"}, {"status", "TEXT"},      {"error", "TEXT"},            {"transcription_seconds", "REAL"},
      {"transcribed_at", "TEXT"}, {"model", "TEXT"},  {"text", "TEXT"},             {"transcript", "TEXT"}};
  EXPECT_EQ(read_sqlite_results(db).columns, columns);
  expect_sqlite_matches_jsonl(db, out);

  std::size_t chunks = 0;
  for (const char* name : {"speech.mp3", "speech.m4a", "speech.ogg", "tone.wav"}) {
    SCOPED_TRACE(name);
    const auto& row = rows.at(name);
    ASSERT_EQ(row["status"], "ok") << row.dump();
    const double duration = row["duration_seconds"].get<double>();
    EXPECT_GE(row["chunks"].get<int>(), 2);  // ~20 s and 30 s files, 10 s chunks
    chunks += row["chunks"].get<std::size_t>();
    // srt: numbered 1..n, monotonic, inside the file's duration.
    const auto cues = read_srt(slurp(out / row["transcript"].get<std::string>()));
    ASSERT_FALSE(cues.empty());
    double prev_end = 0;
    for (std::size_t i = 0; i < cues.size(); ++i) {
      EXPECT_EQ(cues[i].number, static_cast<int>(i + 1));
      EXPECT_GE(cues[i].start, prev_end);
      EXPECT_GE(cues[i].end, cues[i].start);
      EXPECT_LE(cues[i].end, duration + 1e-3);
      prev_end = cues[i].end;
    }
    EXPECT_GT(prev_end, duration - 12.0);  // the last chunk's cues reach the end part
  }
  // Every chunk sent exactly once; nothing sent for the bad files.
  const auto sent = transcription_lines(sim);
  EXPECT_EQ(sent.size(), chunks);
  std::set<std::string> bodies;
  for (const auto& l : sent) {
    EXPECT_EQ(l["status"], 200);
    bodies.insert(l["body_sha256"].get<std::string>());
  }
  EXPECT_EQ(bodies.size(), sent.size());
  // Temporary chunk folders are gone.
  std::size_t leftovers = 0;
  std::error_code ec;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(out / ".floodgate-tmp", ec)) ++leftovers;
  EXPECT_EQ(leftovers, 0U);
}

TEST(Transcribe, ChunkTranscriptsAreJoinedInChunkOrder) {
  TempDir tmp("transcribe_order");
  const fs::path src = audio::testing::fixture("tone.mp3");  // 30 s, no silence: cut at 10 s and 20 s
  SimProcess sim;
  // The whole file, split by transcribe.
  const int rc = transcribe(sim, {src.string(), "-o", (tmp.path / "whole").string(), "--max-chunk-seconds", "10"},
                            tmp.path / "log1.txt");
  ASSERT_EQ(rc, 0) << slurp(tmp.path / "log1.txt");
  const auto whole = results_by_name(tmp.path / "whole").at("tone.mp3");
  ASSERT_EQ(whole["chunks"], 3);

  // The same chunks made by the library (deterministic), transcribed one by one.
  const auto info = audio::probe(src);
  ASSERT_TRUE(info.ok());
  audio::SplitOptions o;
  o.max_chunk = audio::Seconds(10);
  const fs::path parts = tmp.path / "parts";
  fs::create_directories(parts);
  auto split = audio::split_audio(src, *info, parts, o);
  ASSERT_TRUE(split.ok()) << split.error().message;
  ASSERT_EQ(split->chunks.size(), 3U);
  std::vector<std::string> texts;
  for (const auto& c : split->chunks) {
    const fs::path out = tmp.path / ("part-" + std::to_string(c.index));
    ASSERT_EQ(transcribe(sim, {c.path.string(), "-o", out.string()}, tmp.path / "log2.txt"), 0)
        << slurp(tmp.path / "log2.txt");
    texts.push_back(results_by_name(out).at(c.path.filename().string())["text"].get<std::string>());
  }
  std::string expected;
  for (const auto& t : texts) expected += (expected.empty() ? "" : " ") + t;
  EXPECT_EQ(whole["text"].get<std::string>(), expected);
  EXPECT_NE(texts[0], texts[1]);  // the check can fail: chunks have different transcripts
}

TEST(Transcribe, ResumeSendsOnlyTheChunksThatFailed) {
  TempDir tmp("transcribe_resume");
  const fs::path in = tmp.path / "in";
  fs::create_directories(in);
  fs::copy_file(audio::testing::fixture("tone.wav"), in / "tone.wav");  // 30 s
  fs::copy_file(audio::testing::fixture("long.flac"), in / "long.flac");  // ~60 s
  const fs::path out = tmp.path / "out";
  const fs::path db = tmp.path / "results.db";
  const std::vector<std::string> args = {in.string(), "-o", out.string(), "--max-chunk-seconds", "10", "--max-attempts", "1",
                                         "--table", db.string()};
  std::size_t first_ok = 0;
  std::size_t total_chunks = 0;
  {
    SimProcess flaky({"--fault-rate", "0.4", "--faults", "500", "--seed", "7"});
    const int rc = transcribe(flaky, args, tmp.path / "log1.txt");
    EXPECT_EQ(rc, 1) << slurp(tmp.path / "log1.txt");
    for (const auto& l : transcription_lines(flaky)) first_ok += l["status"] == 200 ? 1 : 0;
    for (const auto& [name, row] : results_by_name(out)) total_chunks += row["chunks"].get<std::size_t>();
    ASSERT_GT(first_ok, 0U);
    ASSERT_LT(first_ok, total_chunks);
    expect_sqlite_matches_jsonl(db, out);  // the failed files' rows (status error) are there too
  }
  SimProcess healthy;
  const int rc = transcribe(healthy, args, tmp.path / "log2.txt");
  EXPECT_EQ(rc, 0) << slurp(tmp.path / "log2.txt");
  EXPECT_EQ(transcription_lines(healthy).size(), total_chunks - first_ok);
  for (const auto& [name, row] : results_by_name(out)) EXPECT_EQ(row["status"], "ok") << name;
  expect_sqlite_matches_jsonl(db, out);  // updated in place: still one row per file, now ok
  // A third run has nothing left to send.
  const int rc3 = transcribe(healthy, args, tmp.path / "log3.txt");
  EXPECT_EQ(rc3, 0) << slurp(tmp.path / "log3.txt");
  EXPECT_EQ(transcription_lines(healthy).size(), total_chunks - first_ok);
  expect_sqlite_matches_jsonl(db, out);
}

}  // namespace

namespace {

TEST(Transcribe, CarryPromptSendsEachChunkOnceInOrder) {
  TempDir tmp("transcribe_carry");
  const fs::path src = audio::testing::fixture("tone.mp3");  // 30 s: 3 chunks of 10 s
  SimProcess sim;
  const int rc = transcribe(sim, {src.string(), "-o", (tmp.path / "out").string(), "--max-chunk-seconds", "10",
                                  "--carry-prompt", "--response-format", "vtt"},
                            tmp.path / "log.txt");
  ASSERT_EQ(rc, 0) << slurp(tmp.path / "log.txt");
  const auto row = results_by_name(tmp.path / "out").at("tone.mp3");
  ASSERT_EQ(row["chunks"], 3);
  const auto sent = transcription_lines(sim);
  ASSERT_EQ(sent.size(), 3U);
  // One round per chunk position: chunk k+1 is sent only after chunk k was answered,
  // so the ledger's times are in chunk order and the bodies all differ.
  std::set<std::string> bodies;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    bodies.insert(sent[i]["body_sha256"].get<std::string>());
    if (i > 0) {
      EXPECT_LE(sent[i - 1]["ts"].get<std::string>(), sent[i]["ts"].get<std::string>());
    }
  }
  EXPECT_EQ(bodies.size(), 3U);
  const std::string vtt = slurp(tmp.path / "out" / row["transcript"].get<std::string>());
  EXPECT_EQ(vtt.rfind("WEBVTT\n\n", 0), 0U);
}

}  // namespace

namespace {

// transcribe takes the engine flags of `floodgate run` (engine_flags.hpp): flags that only
// run had before work, and a bad value stops the job before any file is probed or sent.
TEST(Transcribe, TakesTheEngineFlagsOfRun) {
  TempDir tmp("transcribe_flags");
  const fs::path src = audio::testing::fixture("speech.mp3");  // one upload (under 600 s)
  SimProcess sim;
  const fs::path bad = tmp.path / "bad";
  EXPECT_EQ(transcribe(sim, {src.string(), "-o", bad.string(), "--max-wait", "soon"}, tmp.path / "log1.txt"), 2);
  EXPECT_NE(slurp(tmp.path / "log1.txt").find("--max-wait"), std::string::npos) << slurp(tmp.path / "log1.txt");
  EXPECT_FALSE(fs::exists(bad));  // nothing planned, nothing written
  EXPECT_TRUE(transcription_lines(sim).empty());

  const fs::path out = tmp.path / "out";
  const int rc = transcribe(sim, {src.string(), "-o", out.string(), "--tpm", "1000000", "--rpd", "100000", "--burst", "2s",
                                  "--max-wait", "1m", "--max-server-wait", "1m", "--breaker-threshold", "5",
                                  "--estimate", "exact", "--max-in-flight", "4"},
                            tmp.path / "log2.txt");
  ASSERT_EQ(rc, 0) << slurp(tmp.path / "log2.txt");
  EXPECT_EQ(results_by_name(out).at("speech.mp3")["status"], "ok");
  EXPECT_EQ(transcription_lines(sim).size(), 1U);
}

}  // namespace

namespace {

// The FFmpeg helper runs instead of the uploading process, not beside it: transcribe
// exec()s the helper, which exec()s transcribe back, so the two are never resident at once.
// A wrapper helper records whose child it is: with exec, the parent of floodgate (the
// shell); a spawned helper would be the child of floodgate.
TEST(Transcribe, TheAudioHelperReplacesTheUploaderInsteadOfRunningBesideIt) {
  TempDir tmp("transcribe_exec");
  const fs::path real = fs::path(FLOODGATE_BIN).parent_path() / "floodgate-audio";
  const fs::path wrapper = tmp.path / "helper.sh";
  const fs::path parents = tmp.path / "parents.txt";
  {
    std::ofstream w(wrapper);
    w << "#!/bin/sh\ncat /proc/$PPID/comm >> '" << parents.string() << "'\nexec '" << real.string() << "' \"$@\"\n";
  }
  fs::permissions(wrapper, fs::perms::owner_all);
  SimProcess sim;
  const fs::path out = tmp.path / "out";
  ASSERT_EQ(::setenv("FLOODGATE_AUDIO_HELPER", wrapper.c_str(), 1), 0);
  const int rc = transcribe(sim, {audio::testing::fixture("tone.mp3").string(), "-o", out.string(),
                                  "--max-chunk-seconds", "10"},
                            tmp.path / "log.txt");
  ::unsetenv("FLOODGATE_AUDIO_HELPER");
  ASSERT_EQ(rc, 0) << slurp(tmp.path / "log.txt");
  EXPECT_EQ(results_by_name(out).at("tone.mp3")["chunks"], 3);  // planned and split by the helper
  EXPECT_EQ(transcription_lines(sim).size(), 3U);
  const std::string who = slurp(parents);
  EXPECT_FALSE(who.empty());  // the wrapper ran
  EXPECT_EQ(who.find("floodgate"), std::string::npos) << who;
  // The summary reports the helper's own peak, handed over across exec.
  const std::string log = slurp(tmp.path / "log.txt");
  EXPECT_EQ(log.find("(audio helper 0.0 MiB)"), std::string::npos) << log;
  EXPECT_NE(log.find("(audio helper "), std::string::npos) << log;
}

}  // namespace

namespace {

// The output folder stays locked while the audio helper plans in this process's place (the
// lock used to be released across the exec, and a second transcribe could start then).
TEST(Transcribe, TheOutputFolderStaysLockedWhileTheHelperPlans) {
  TempDir tmp("transcribe_lock");
  const fs::path real = fs::path(FLOODGATE_BIN).parent_path() / "floodgate-audio";
  const fs::path wrapper = tmp.path / "helper.sh";
  const fs::path verdict = tmp.path / "verdict.txt";
  const fs::path out = tmp.path / "out";
  {
    // flock(1) opens the lock file anew: it gets the lock only when nobody holds it.
    std::ofstream w(wrapper);
    w << "#!/bin/sh\nif flock -n '" << (out / ".floodgate.lock").string() << "' true; then echo free; else echo held; fi > '"
      << verdict.string() << "'\nexec '" << real.string() << "' \"$@\"\n";
  }
  fs::permissions(wrapper, fs::perms::owner_all);
  SimProcess sim;
  ASSERT_EQ(::setenv("FLOODGATE_AUDIO_HELPER", wrapper.c_str(), 1), 0);
  const int rc = transcribe(sim, {audio::testing::fixture("tone.mp3").string(), "-o", out.string()}, tmp.path / "log.txt");
  ::unsetenv("FLOODGATE_AUDIO_HELPER");
  ASSERT_EQ(rc, 0) << slurp(tmp.path / "log.txt");
  EXPECT_EQ(slurp(verdict), "held\n");
  EXPECT_FALSE(transcription_lines(sim).empty());
}

// Files added to a folder while the helper plans it: the transcribe that the helper execs
// back sees another list than the one planned and stops, rather than pairing plans with
// the wrong files; the next run plans everything afresh.
TEST(Transcribe, InputsThatChangeWhilePlanningStopTheJobCleanly) {
  TempDir tmp("transcribe_changed");
  const fs::path in = tmp.path / "in";
  fs::create_directories(in);
  fs::copy_file(audio::testing::fixture("tone.mp3"), in / "b.mp3");
  const fs::path real = fs::path(FLOODGATE_BIN).parent_path() / "floodgate-audio";
  const fs::path wrapper = tmp.path / "helper.sh";
  {
    std::ofstream w(wrapper);
    w << "#!/bin/sh\ncp '" << audio::testing::fixture("tone.mp3").string() << "' '" << (in / "a.mp3").string()
      << "'\nexec '" << real.string() << "' \"$@\"\n";
  }
  fs::permissions(wrapper, fs::perms::owner_all);
  SimProcess sim;
  const fs::path out = tmp.path / "out";
  ASSERT_EQ(::setenv("FLOODGATE_AUDIO_HELPER", wrapper.c_str(), 1), 0);
  const int rc = transcribe(sim, {in.string(), "-o", out.string()}, tmp.path / "log1.txt");
  ::unsetenv("FLOODGATE_AUDIO_HELPER");
  EXPECT_EQ(rc, 2) << slurp(tmp.path / "log1.txt");
  EXPECT_NE(slurp(tmp.path / "log1.txt").find("changed while"), std::string::npos) << slurp(tmp.path / "log1.txt");
  EXPECT_TRUE(transcription_lines(sim).empty());

  ASSERT_EQ(transcribe(sim, {in.string(), "-o", out.string()}, tmp.path / "log2.txt"), 0) << slurp(tmp.path / "log2.txt");
  const auto rows = results_by_name(out);
  ASSERT_EQ(rows.size(), 2U);
  for (const auto& [name, row] : rows) EXPECT_EQ(row["status"], "ok") << name;
  EXPECT_EQ(transcription_lines(sim).size(), 2U);
  std::size_t leftovers = 0;  // the stopped run's chunk folder was removed too
  std::error_code ec;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(out / ".floodgate-tmp", ec)) ++leftovers;
  EXPECT_EQ(leftovers, 0U);
}

}  // namespace

namespace {

// --table by extension: .csv and .jsonl are copies of the whole results table (also after a
// resume that sent nothing), and --force starts over: everything is sent again and the
// SQLite table holds the new rows only, still one per file.
TEST(Transcribe, TableAsCsvJsonlAndSqliteAndForceStartsOver) {
  TempDir tmp("transcribe_tables");
  const fs::path in = tmp.path / "in";
  fs::create_directories(in);
  fs::copy_file(audio::testing::fixture("speech.mp3"), in / "speech.mp3");
  fs::copy_file(audio::testing::fixture("tone.wav"), in / "tone.wav");
  const fs::path out = tmp.path / "out";
  SimProcess sim;

  const fs::path csv = tmp.path / "t.csv";
  ASSERT_EQ(transcribe(sim, {in.string(), "-o", out.string(), "--table", csv.string()}, tmp.path / "log1.txt"), 0)
      << slurp(tmp.path / "log1.txt");
  const std::size_t sent_first = transcription_lines(sim).size();
  ASSERT_GE(sent_first, 2U);
  EXPECT_EQ(slurp(csv), slurp(out / "results.csv"));
  const std::string csv_text = slurp(csv);
  EXPECT_EQ(csv_text.rfind("filename,", 0), 0U) << csv_text.substr(0, 200);
  for (const char* name : {"speech.mp3", "tone.wav"}) {
    const auto first = csv_text.find(name);
    ASSERT_NE(first, std::string::npos) << name;
    EXPECT_EQ(csv_text.find(name, first + 1), std::string::npos) << name << " twice";
  }

  // A resumed run sends nothing and still writes every row.
  const fs::path jsonl = tmp.path / "t.jsonl";
  ASSERT_EQ(transcribe(sim, {in.string(), "-o", out.string(), "--table", jsonl.string()}, tmp.path / "log2.txt"), 0)
      << slurp(tmp.path / "log2.txt");
  EXPECT_EQ(transcription_lines(sim).size(), sent_first);
  std::ifstream lines(jsonl);
  std::string line;
  std::set<std::string> names;
  while (std::getline(lines, line)) {
    const auto row = nlohmann::json::parse(line);
    EXPECT_EQ(row["status"], "ok") << line;
    EXPECT_TRUE(names.insert(fs::path(row["filename"].get<std::string>()).filename().string()).second) << line;
  }
  EXPECT_EQ(names, (std::set<std::string>{"speech.mp3", "tone.wav"}));

  // SQLite: a resumed run fills it from the results; --force empties it (a left-over row
  // goes) and the job is transcribed again.
  const fs::path db = tmp.path / "t.sqlite";
  ASSERT_EQ(transcribe(sim, {in.string(), "-o", out.string(), "--table", db.string()}, tmp.path / "log3.txt"), 0)
      << slurp(tmp.path / "log3.txt");
  EXPECT_EQ(transcription_lines(sim).size(), sent_first);
  ASSERT_EQ(read_sqlite_results(db).rows.size(), 2U);
  {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(h, "INSERT INTO results(key, filename, status) VALUES('left-over', '/elsewhere/old.mp3', 'ok')",
                           nullptr, nullptr, &err),
              SQLITE_OK)
        << (err != nullptr ? err : "");
    sqlite3_free(err);
    sqlite3_close(h);
  }
  ASSERT_EQ(read_sqlite_results(db).rows.size(), 3U);
  ASSERT_EQ(transcribe(sim, {in.string(), "-o", out.string(), "--table", db.string(), "--force"}, tmp.path / "log4.txt"), 0)
      << slurp(tmp.path / "log4.txt");
  EXPECT_EQ(transcription_lines(sim).size(), 2 * sent_first);  // all sent again
  expect_sqlite_matches_jsonl(db, out);
}

}  // namespace

namespace {

// Runs floodgate transcribe without --quiet (its summary is what is checked).
int transcribe_loud(const SimProcess& sim, const std::vector<std::string>& args, const fs::path& log) {
  std::string cmd = std::string("'") + FLOODGATE_BIN + "' transcribe --base-url '" + sim.base_url() + "' --api-key '" +
                    sim.api_key() + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " > '" + log.string() + "' 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Milliseconds since the epoch of "2026-11-22T17:51:14.123Z".
std::int64_t iso_ms(const std::string& iso) {
  std::tm tm{};
  int ms = 0;
  EXPECT_EQ(std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                        &tm.tm_min, &tm.tm_sec, &ms),
            7)
      << iso;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000 + ms;
}

// The summary was headed "floodgate run summary" with a tokens/min line, counted the requests
// it planned as sent, and timed every file from the start of the job.
TEST(Transcribe, SummaryCountsWhatWasSentAndEachFileIsTimedOnItsOwn) {
  TempDir tmp("transcribe_summary");
  const fs::path in = tmp.path / "in";
  fs::create_directories(in);
  for (int i = 0; i < 5; ++i) fs::copy_file(audio::testing::fixture("tone.wav"), in / ("t" + std::to_string(i) + ".wav"));
  {
    // One upload at a time: each file's interval [first send, last answer] ends before the
    // next file's begins. Timed from the job's start, they all began together.
    SimProcess sim;
    const fs::path out = tmp.path / "out";
    ASSERT_EQ(transcribe_loud(sim, {in.string(), "-o", out.string(), "--max-in-flight", "1"}, tmp.path / "log1.txt"), 0)
        << slurp(tmp.path / "log1.txt");
    std::vector<std::pair<std::int64_t, std::int64_t>> spans;  // (start ms, end ms)
    for (const auto& [name, row] : results_by_name(out)) {
      const std::int64_t end = iso_ms(row["transcribed_at"].get<std::string>());
      const auto secs = row["transcription_seconds"].get<double>();
      EXPECT_GE(secs, 0.0) << name;
      spans.emplace_back(end - static_cast<std::int64_t>(std::llround(secs * 1000)), end);
    }
    ASSERT_EQ(spans.size(), 5u);
    std::sort(spans.begin(), spans.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    for (std::size_t i = 1; i < spans.size(); ++i) {
      EXPECT_GE(spans[i].first + 2, spans[i - 1].second) << "file " << i << " timed from before the previous file ended";
    }
    const std::string log = slurp(tmp.path / "log1.txt");
    EXPECT_EQ(log.find("floodgate run summary"), std::string::npos) << log;
    EXPECT_EQ(log.find("tokens/min"), std::string::npos) << log;
    EXPECT_NE(log.find("transcribe summary: 5 file(s): 5 ok"), std::string::npos) << log;
  }
  {
    // Retried uploads are sent requests too: the count is the simulator's.
    SimProcess flaky({"--fault-rate", "0.4", "--faults", "500", "--seed", "3"});
    const fs::path out = tmp.path / "out2";
    ASSERT_EQ(transcribe_loud(flaky, {in.string(), "-o", out.string()}, tmp.path / "log2.txt"), 0)
        << slurp(tmp.path / "log2.txt");
    const std::size_t sent = transcription_lines(flaky).size();
    ASSERT_GT(sent, 5u);  // some were retried
    const std::string log = slurp(tmp.path / "log2.txt");
    EXPECT_NE(log.find("; " + std::to_string(sent) + " request(s) sent"), std::string::npos) << log;
  }
}

// Word timestamps come only with verbose_json: asking for them with json was accepted and
// silently dropped.
TEST(Transcribe, TimestampGranularitiesNeedVerboseJson) {
  TempDir tmp("transcribe_granularities");
  SimProcess sim;
  const fs::path src = audio::testing::fixture("tone.wav");
  EXPECT_EQ(transcribe(sim, {src.string(), "-o", (tmp.path / "a").string(), "--timestamp-granularities", "word"},
                       tmp.path / "log1.txt"),
            2);
  EXPECT_NE(slurp(tmp.path / "log1.txt").find("--timestamp-granularities needs --response-format verbose_json"),
            std::string::npos)
      << slurp(tmp.path / "log1.txt");
  EXPECT_EQ(transcribe(sim, {src.string(), "-o", (tmp.path / "b").string(), "--response-format", "verbose_json",
                             "--timestamp-granularities", "letter"},
                       tmp.path / "log2.txt"),
            2);
  EXPECT_TRUE(transcription_lines(sim).empty());
  EXPECT_EQ(transcribe(sim, {src.string(), "-o", (tmp.path / "c").string(), "--response-format", "verbose_json",
                             "--timestamp-granularities", "word"},
                       tmp.path / "log3.txt"),
            0)
      << slurp(tmp.path / "log3.txt");
}

}  // namespace
