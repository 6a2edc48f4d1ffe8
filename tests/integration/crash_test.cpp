// Crashes, a full disk and two runs at once, against `floodgate sim` (issue 12): every sink
// ends with every row exactly once after a kill -9 between the output and the journal and
// after --retry-failed; a second run on the same output is refused (exit 2, naming the pid);
// a full disk stops with exit 74, resumable, and the re-run finishes exactly once; a run
// started right after a crashed one keeps the server's 60-second window. The simulator's
// stats and ledger are the judge of what reached the server.
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "floodgate/csv/csv.hpp"
#include "support/files.hpp"
#include "support/run_process.hpp"
#include "support/sim_process.hpp"

namespace {

namespace fs = std::filesystem;
using floodgate::test::complete_lines;
using floodgate::test::read_jsonl;
using floodgate::test::run_args;
using floodgate::test::RunProcess;
using floodgate::test::SimProcess;
using floodgate::test::slurp;
using floodgate::test::TempDir;
using nlohmann::json;

constexpr int kKilled = 128 + SIGKILL;

// A table of `n` rows (id,text) and its prompt template.
void write_table(const TempDir& dir, int n) {
  std::string csv = "id,text\r\n";
  for (int i = 0; i < n; ++i) {
    floodgate::csv::append_record(csv, std::vector<std::string>{"r" + std::to_string(i), "text, \"quoted\" " + std::to_string(i)});
  }
  std::ofstream(dir.file("data.csv"), std::ios::binary) << csv;
  std::ofstream(dir.file("prompt.txt")) << "Summarise: {{text}}";
}

std::vector<std::string> table_args(const SimProcess& sim, const TempDir& dir, const std::string& out) {
  return {dir.file("data.csv"), "--template", dir.file("prompt.txt"), "--model", "gpt-4o-mini", "-o", out,
          "--base-url", sim.base_url(), "--quiet", "--max-in-flight", "4"};
}

// Writes `n` chat lines with custom_ids id0..id<n-1>.
fs::path write_chat_input(const TempDir& dir, int n) {
  const fs::path in = dir.path / "in.jsonl";
  std::ofstream f(in);
  for (int i = 0; i < n; ++i) {
    const json line = {{"custom_id", "id" + std::to_string(i)},
                       {"method", "POST"},
                       {"url", "/v1/chat/completions"},
                       {"body", {{"model", "gpt-4o-mini"}, {"messages", {{{"role", "user"}, {"content", "Line " + std::to_string(i)}}}}, {"max_tokens", 8}}}};
    f << line.dump() << "\n";
  }
  return in;
}

// custom_id -> how many rows: a CSV results file (first column), read with our reader.
std::map<std::string, int> csv_ids(const std::string& path, std::map<std::string, std::string>* status = nullptr) {
  std::map<std::string, int> ids;
  floodgate::csv::Reader reader(path);
  floodgate::csv::Record r;
  while (reader.next(r)) {
    EXPECT_TRUE(r.error.empty()) << path << ": " << r.error;
    if (r.number == 1 || r.fields.empty()) continue;
    ++ids[r.fields[0]];
    if (status != nullptr && r.fields.size() > 1) (*status)[r.fields[0]] = r.fields[1];
  }
  return ids;
}

std::map<std::string, int> sqlite_ids(const std::string& path) {
  std::map<std::string, int> ids;
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT custom_id FROM results", -1, &st, nullptr), SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) ++ids[reinterpret_cast<const char*>(sqlite3_column_text(st, 0))];
  sqlite3_finalize(st);
  sqlite3_close(db);
  return ids;
}

std::map<std::string, int> jsonl_ids(const fs::path& path) {
  std::map<std::string, int> ids;
  for (const auto& line : read_jsonl(path)) ++ids[line.value("custom_id", "")];
  return ids;
}

void expect_each_once(const std::map<std::string, int>& ids, int n, const std::string& what) {
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(n)) << what;
  for (int i = 0; i < n; ++i) {
    for (const char* prefix : {"r", "id"}) {
      auto it = ids.find(prefix + std::to_string(i));
      if (it != ids.end()) {
        EXPECT_EQ(it->second, 1) << what << ": " << it->first;
      }
    }
  }
}

// How many requests with each x-client-request-id's line reached the server.
std::map<std::string, int> ledger_lines(const SimProcess& sim) {
  std::map<std::string, int> by_line;
  for (const auto& e : sim.ledger()) {
    if (e.value("path", "") != "/v1/chat/completions") continue;
    const std::string crid = e.value("client_request_id", "");
    ++by_line[crid.substr(crid.rfind('-') + 1)];  // fg-<nonce>-<line>
  }
  return by_line;
}

int run(RunProcess& p) { return p.wait(std::chrono::seconds(120)); }

RunProcess::Options transcribe_options() {
  RunProcess::Options o;
  o.command = "transcribe";
  return o;
}

RunProcess::Options kill_after_rows(int rows) {
  RunProcess::Options o;
  o.env = {{"FLOODGATE_TEST_KILL_AFTER_ROWS", std::to_string(rows)}};
  return o;
}

// ---- item 1: the table sinks after a kill -9 between the output and the journal ----------

class TableCrash : public ::testing::TestWithParam<std::string> {};

TEST_P(TableCrash, EveryRowOnceInTheTableAfterAKillBeforeTheJournalCommit) {
  TempDir dir("crash_table");
  const int n = 60;
  write_table(dir, n);
  SimProcess sim;
  const std::string out = dir.file("out." + GetParam());
  {
    // Killed right after the raw output got its 25th row, before the journal commits: the
    // resume adopts those rows from out.*.raw.jsonl without sending them again.
    RunProcess p(table_args(sim, dir, out), sim.api_key(), dir.path / "log1",
                 kill_after_rows(25));
    ASSERT_EQ(run(p), kKilled) << slurp(dir.path / "log1");
  }
  RunProcess resume(table_args(sim, dir, out), sim.api_key(), dir.path / "log2");
  ASSERT_EQ(run(resume), 0) << slurp(dir.path / "log2");
  expect_each_once(jsonl_ids(out + ".raw.jsonl"), n, "raw output");
  expect_each_once(GetParam() == "csv" ? csv_ids(out) : sqlite_ids(out), n, out);
}

INSTANTIATE_TEST_SUITE_P(Formats, TableCrash, ::testing::Values("csv", "sqlite"));

TEST(TableRetryFailed, TheCsvKeepsOnlyTheNewRowOfALineSentAgain) {
  TempDir dir("crash_retry");
  const int n = 40;
  write_table(dir, n);
  const std::string out = dir.file("out.csv");
  {
    SimProcess flaky({"--fault-rate", "0.4", "--faults", "500", "--seed", "11"});
    auto args = table_args(flaky, dir, out);
    args.insert(args.end(), {"--max-attempts", "1"});
    RunProcess p(args, flaky.api_key(), dir.path / "log1");
    ASSERT_EQ(run(p), 1) << slurp(dir.path / "log1");
  }
  std::map<std::string, std::string> status;
  const auto before = csv_ids(out, &status);
  int errors = 0;
  for (const auto& [id, s] : status) errors += s == "error" ? 1 : 0;
  ASSERT_GT(errors, 0);
  SimProcess healthy;
  auto args = table_args(healthy, dir, out);
  args.push_back("--retry-failed");
  RunProcess p(args, healthy.api_key(), dir.path / "log2");
  ASSERT_EQ(run(p), 0) << slurp(dir.path / "log2");
  status.clear();
  expect_each_once(csv_ids(out, &status), n, "out.csv after --retry-failed");
  for (const auto& [id, s] : status) EXPECT_EQ(s, "ok") << id;
  EXPECT_EQ(healthy.stats().value("requests", 0), errors);  // only the failed lines were sent again
}

// ---- item 4: one process per output --------------------------------------------------------

TEST(RunLock, ASecondRunOnTheSameOutputExitsTwoNamingTheFirst) {
  TempDir dir("crash_lock");
  const fs::path in = write_chat_input(dir, 20);
  const fs::path out = dir.path / "out.jsonl";
  SimProcess sim({"--latency", "fixed:300ms"});
  RunProcess first(run_args(sim, in, out, {"--max-in-flight", "1"}), sim.api_key(), dir.path / "log1");
  // The first run holds the lock once its pid is in the lock file.
  const fs::path lock = dir.path / "out.jsonl.journal.lock";
  const std::string pid = std::to_string(first.pid());
  for (int i = 0; i < 500 && slurp(lock) != pid + "\n"; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(slurp(lock), pid + "\n");
  RunProcess second(run_args(sim, in, out, {}), sim.api_key(), dir.path / "log2");
  EXPECT_EQ(run(second), 2);
  EXPECT_NE(slurp(dir.path / "log2").find("pid " + pid), std::string::npos) << slurp(dir.path / "log2");
  ASSERT_EQ(run(first), 0) << slurp(dir.path / "log1");
  const auto ids = jsonl_ids(out);
  expect_each_once(ids, 20, "out.jsonl");
  EXPECT_EQ(sim.stats().value("requests", 0), 20);  // the second run sent nothing
}

TEST(RunLock, ATableRunIsRefusedBeforeItTouchesTheResultsFile) {
  TempDir dir("crash_lock_csv");
  write_table(dir, 5);
  SimProcess sim;
  const std::string out = dir.file("out.csv");
  std::ofstream(out, std::ios::binary) << "precious";
  std::ofstream(out + ".journal") << "";  // as if a run had started
  // Another process holds the lock (flock on the lock file, its pid written in it).
  const int fd = ::open((out + ".journal.lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ASSERT_EQ(::write(fd, "4242\n", 5), 5);
  RunProcess p(table_args(sim, dir, out), sim.api_key(), dir.path / "log");
  EXPECT_EQ(run(p), 2);
  EXPECT_NE(slurp(dir.path / "log").find("pid 4242"), std::string::npos) << slurp(dir.path / "log");
  EXPECT_EQ(slurp(out), "precious");
  EXPECT_EQ(sim.stats().value("requests", 0), 0);
  ::close(fd);
}

TEST(RunLock, TranscribeIntoAFolderAnotherProcessWritesExitsTwo) {
  TempDir dir("crash_lock_tr");
  const fs::path outdir = dir.path / "out";
  fs::create_directories(outdir);
  const int fd = ::open((outdir / ".floodgate.lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ASSERT_EQ(::write(fd, "4343\n", 5), 5);
  std::ofstream(dir.path / "a.wav") << "RIFF";
  RunProcess p({(dir.path / "a.wav").string(), "-o", outdir.string(), "--base-url", "http://127.0.0.1:9/v1"}, "sk-x",
               dir.path / "log", transcribe_options());
  EXPECT_EQ(run(p), 2);
  EXPECT_NE(slurp(dir.path / "log").find("pid 4343"), std::string::npos) << slurp(dir.path / "log");
  ::close(fd);
}

// ---- item 8: a full disk -------------------------------------------------------------------

// The output and its journal on a filesystem that fills up: a small tmpfs when this process
// may mount one (root), else the file size limit (RLIMIT_FSIZE: writes fail with EFBIG).
TEST(DiskFull, StopsWithExit74ResumableAndTheRerunFinishesExactlyOnce) {
  TempDir dir("crash_disk");
  const int n = 4000;  // about 2 MiB of output: more than the disk holds, the reserve aside
  const fs::path in = write_chat_input(dir, n);
  const fs::path mnt = dir.path / "mnt";
  fs::create_directories(mnt);
  const bool tmpfs = ::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1200k") == 0;
  struct Unmount {
    const fs::path& at;
    bool mounted;
    ~Unmount() {
      if (mounted) ::umount(at.c_str());
    }
  } unmount{mnt, tmpfs};
  const fs::path out = mnt / "out.jsonl";
  SimProcess sim;
  RunProcess::Options limited;
  if (!tmpfs) limited.file_size_limit_bytes = 200 * 1024;
  {
    RunProcess p(run_args(sim, in, out, {"--max-in-flight", "32"}), sim.api_key(), dir.path / "log1", limited);
    const int rc = run(p);
    const std::string log = slurp(dir.path / "log1");
    EXPECT_EQ(rc, 74) << log;
    EXPECT_NE(log.find("resumable"), std::string::npos) << log;
    EXPECT_NE(log.find(mnt.string()), std::string::npos) << log;  // names the file
  }
  const auto sent_first = static_cast<std::size_t>(sim.stats().value("requests", 0));
  EXPECT_LT(sent_first, static_cast<std::size_t>(n));
  if (tmpfs) {
    ASSERT_EQ(::mount("tmpfs", mnt.c_str(), "tmpfs", MS_REMOUNT, "size=64m"), 0);  // a larger disk
  }
  RunProcess rerun(run_args(sim, in, out, {"--max-in-flight", "32"}), sim.api_key(), dir.path / "log2");
  EXPECT_EQ(run(rerun), 0) << slurp(dir.path / "log2");
  expect_each_once(jsonl_ids(out), n, "out.jsonl");
  const auto by_line = ledger_lines(sim);
  std::size_t twice = 0;
  for (const auto& [line, count] : by_line) twice += count > 1 ? 1 : 0;
  EXPECT_EQ(by_line.size(), static_cast<std::size_t>(n));
  // On a full disk the reserve is freed, so the answers of the requests in flight are still
  // written: nothing is paid twice. (With the file size limit no room can be made.)
  if (tmpfs) {
    EXPECT_EQ(twice, 0u) << "first run sent " << sent_first;
  }
}

// ---- item 3: the window across a crash ----------------------------------------------------

TEST(WindowAcrossCrash, ARunStartedRightAfterAKillDoesNotSendTheMinuteAgain) {
  TempDir dir("crash_window");
  const fs::path in = write_chat_input(dir, 40);
  const fs::path out = dir.path / "out.jsonl";
  SimProcess sim({"--rpm", "100000"});
  // The whole minute's 20 requests may go at once; then the window is full for a minute.
  const std::vector<std::string> extra = {"--rpm", "20", "--burst", "60s", "--max-in-flight", "20"};
  {
    RunProcess first(run_args(sim, in, out, extra), sim.api_key(), dir.path / "log1");
    for (int i = 0; i < 1000 && complete_lines(out) < 20; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(complete_lines(out), 20u) << slurp(dir.path / "log1");
    first.signal(SIGKILL);
    EXPECT_EQ(run(first), kKilled);
  }
  RunProcess second(run_args(sim, in, out, extra), sim.api_key(), dir.path / "log2");
  // Give the second run time to send (an empty window would let it send 20 at once).
  for (int i = 0; i < 250 && sim.stats().value("requests", 0) <= 20; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  second.signal(SIGINT);
  EXPECT_EQ(run(second), 5) << slurp(dir.path / "log2");
  EXPECT_LE(sim.stats().value("max_requests_60s", 0), 20) << slurp(dir.path / "log2");
}

// --overwrite starts the output and the journal afresh, not the server's windows: what the
// replaced journal admitted in the last minute still counts.
TEST(WindowAcrossCrash, OverwriteKeepsTheWindowOfTheRunItReplaces) {
  TempDir dir("overwrite_window");
  const fs::path in = write_chat_input(dir, 20);
  const fs::path out = dir.path / "out.jsonl";
  SimProcess sim({"--rpm", "100000"});
  const std::vector<std::string> extra = {"--rpm", "20", "--burst", "60s", "--max-in-flight", "20"};
  {
    RunProcess first(run_args(sim, in, out, extra), sim.api_key(), dir.path / "log1");
    ASSERT_EQ(run(first), 0) << slurp(dir.path / "log1");
  }
  ASSERT_EQ(sim.stats().value("requests", 0), 20);
  std::vector<std::string> again = extra;
  again.push_back("--overwrite");
  RunProcess second(run_args(sim, in, out, again), sim.api_key(), dir.path / "log2");
  // Give the second run time to send (an empty window would let it send 20 at once).
  for (int i = 0; i < 250 && sim.stats().value("requests", 0) <= 20; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  second.signal(SIGINT);
  EXPECT_EQ(run(second), 5) << slurp(dir.path / "log2");
  EXPECT_LE(sim.stats().value("max_requests_60s", 0), 20) << slurp(dir.path / "log2");
}

}  // namespace

