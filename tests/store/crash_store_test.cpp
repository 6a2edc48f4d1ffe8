// The store's parts of crash safety (issue 12): the run lock, sinks forgetting the rows a
// --retry-failed run sends again, a failed write keeping its bytes for the next flush, and
// the journal's recent admissions.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "floodgate/core/error.hpp"
#include "floodgate/store/journal.hpp"
#include "floodgate/store/output_order.hpp"
#include "floodgate/store/run_lock.hpp"
#include "floodgate/store/table_sink.hpp"

namespace floodgate::store {
namespace {

namespace fs = std::filesystem;

struct Dir {
  fs::path path = fs::temp_directory_path() / ("fg_crash_store_" + std::to_string(::getpid()) + "_" +
                                               ::testing::UnitTest::GetInstance()->current_test_info()->name());
  Dir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Dir() { fs::remove_all(path); }
  [[nodiscard]] std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read_all(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Outcome row(const std::string& id, bool ok) {
  Outcome o;
  o.custom_id = id;
  o.attempts = 1;
  if (ok) {
    o.status_code = 200;
    o.body = R"({"choices":[{"message":{"content":"fine"},"finish_reason":"stop"}]})";
  } else {
    o.status_code = 500;
    o.error = ErrorKind::server_error;
    o.error_message = "HTTP 500";
  }
  return o;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(RunLock, ASecondLockOnTheSameFileNamesTheHolderAndExitsTwo) {
  Dir dir;
  const std::string path = dir.file("out.jsonl.journal.lock");
  auto held = std::make_unique<RunLock>(path, "the output out.jsonl");
  EXPECT_EQ(read_all(path), std::to_string(::getpid()) + "\n");
  try {
    RunLock second(path, "the output out.jsonl");
    FAIL() << "a second lock was granted";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), exit_code::usage);
    EXPECT_NE(std::string(e.what()).find("pid " + std::to_string(::getpid())), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("out.jsonl"), std::string::npos) << e.what();
  }
  held.reset();  // released: the next one gets it
  RunLock again(path, "the output out.jsonl");
}

TEST(RunLock, LockRunSharesTheLockThisProcessHolds) {
  Dir dir;
  const std::string path = dir.file("j.lock");
  auto a = lock_run(path, "x");
  auto b = lock_run(path, "x");  // the CLI and then the engine
  EXPECT_EQ(a.get(), b.get());
  EXPECT_THROW(RunLock(path, "x"), Error);
}

TEST(SinkForget, CsvDropsTheOldRowsSoTheNewOnesAreWrittenOnce) {
  Dir dir;
  const std::string path = dir.file("out.csv");
  {
    auto sink = make_csv_sink(path, OpenMode::truncate, TableSinkOptions{});
    for (const char* id : {"a", "b", "c"}) sink->write(row(id, std::string(id) != "b"), RowContext{});
    sink->close();
  }
  auto sink = make_csv_sink(path, OpenMode::append, TableSinkOptions{});
  sink->forget({"b"});
  sink->write(row("b", true), RowContext{});
  sink->write(row("a", true), RowContext{});  // already there: skipped, as before
  sink->close();
  const std::string text = read_all(path);
  EXPECT_EQ(count(text, "\r\nb,"), 1u) << text;
  EXPECT_EQ(count(text, "\r\na,"), 1u) << text;
  EXPECT_EQ(count(text, ",error,"), 0u) << text;  // the old error row of b is gone
  EXPECT_EQ(text.rfind("custom_id,", 0), 0u) << text;
}

TEST(SinkForget, SqliteDeletesTheRows) {
  Dir dir;
  const std::string path = dir.file("out.sqlite");
  auto sink = make_sqlite_sink(path, OpenMode::truncate, TableSinkOptions{});
  for (const char* id : {"a", "b"}) sink->write(row(id, false), RowContext{});
  sink->flush();
  sink->forget({"b"});
  sink->close();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT group_concat(custom_id) FROM results", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))), "a");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST(SinkForget, JsonlErrorsFileDropsTheLinesAndKeepsAppending) {
  Dir dir;
  const std::string path = dir.file("errors.jsonl");
  {
    auto sink = make_jsonl_sink(path, OpenMode::truncate);
    for (const char* id : {"a", "b", "c"}) sink->write(row(id, false), RowContext{});
    sink->close();
  }
  auto sink = make_sink_for_path(path, OpenMode::append, TableSinkOptions{});
  sink->forget({"a", "c"});
  sink->write(row("d", false), RowContext{});
  sink->close();
  const std::string text = read_all(path);
  EXPECT_EQ(count(text, "\n"), 2u) << text;
  EXPECT_NE(text.find("\"custom_id\":\"b\""), std::string::npos);
  EXPECT_NE(text.find("\"custom_id\":\"d\""), std::string::npos);
  EXPECT_EQ(drop_lines_with_keys(path, {"zzz"}), 0u);
}

// A write past the file size limit fails with EFBIG: exit_code::disk_full, the file named,
// and the bytes that did not fit stay buffered, so a later flush (with room) finishes the
// line and the file holds whole lines only.
TEST(DiskFull, AFailedFlushKeepsItsBytesAndTheNextFlushCompletesTheLine) {
  Dir dir;
  const std::string path = dir.file("out.jsonl");
  auto sink = make_jsonl_sink(path, OpenMode::truncate);
  for (int i = 0; i < 20; ++i) sink->write(row("id" + std::to_string(i), true), RowContext{});
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto* const previous = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 1000;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  try {
    sink->flush();
    ADD_FAILURE() << "the flush went past the limit";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), exit_code::disk_full);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  std::signal(SIGXFSZ, previous);
  EXPECT_EQ(fs::file_size(path), 1000u);  // a torn line at the limit
  sink->close();
  const std::string text = read_all(path);
  EXPECT_EQ(count(text, "\n"), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(count(text, "\"custom_id\":\"id" + std::to_string(i) + "\""), 1u) << i;
}

TEST(DiskFull, CsvFlushKeepsItsBytesToo) {
  Dir dir;
  const std::string path = dir.file("out.csv");
  auto sink = make_csv_sink(path, OpenMode::truncate, TableSinkOptions{});
  for (int i = 0; i < 20; ++i) sink->write(row("id" + std::to_string(i), true), RowContext{});
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto* const previous = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 700;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  int code = 0;
  try {
    sink->flush();
  } catch (const Error& e) {
    code = e.exit_code();
  }
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  std::signal(SIGXFSZ, previous);
  EXPECT_EQ(code, exit_code::disk_full);
  sink->close();
  const std::string text = read_all(path);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(count(text, "\r\nid" + std::to_string(i) + ","), 1u) << i << "\n" << text;
}

TEST(JournalAdmissions, AddUpPerSecondSurviveReopenAndForgetTheOld) {
  Dir dir;
  const std::string path = dir.file("j.db");
  using std::chrono::seconds;
  const std::chrono::system_clock::time_point t0{seconds(1'800'000'000)};
  {
    Journal j(path, "id");
    j.record_admission("m", t0, 1, 10);
    j.record_admission("m", t0 + std::chrono::milliseconds(900), 1, 5);
    j.record_admission("n", t0 + seconds(1), 1, 7);
    j.commit_admissions();
    j.record_admission("m", t0 + std::chrono::milliseconds(300), 2, 1);  // the same second, a later commit
    j.record_admission("m", t0 + seconds(100), 1, 1);
    j.commit_admissions();
  }
  Journal j(path, "id");
  auto all = j.admissions_since(t0);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].model, "m");
  EXPECT_EQ(all[0].unix_second, 1'800'000'000);
  EXPECT_EQ(all[0].requests, 4u);
  EXPECT_EQ(all[0].tokens, 16u);
  EXPECT_EQ(all[1].model, "n");
  auto recent = j.admissions_since(t0 + seconds(2));
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_EQ(recent[0].unix_second, 1'800'000'100);
  EXPECT_EQ(j.admissions_since(t0).size(), 1u);  // the older rows are gone
  EXPECT_EQ(j.count(), 0u);                        // admissions are not outcomes: nothing to resume
}

}  // namespace
}  // namespace floodgate::store
