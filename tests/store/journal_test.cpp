// Journal (SQLite WAL) and the JSONL sink.
#include <gtest/gtest.h>

#include <filesystem>
#include <algorithm>
#include <fstream>
#include <sstream>

#include "floodgate/core/error.hpp"
#include "floodgate/store/journal.hpp"
#include "floodgate/store/sink.hpp"

namespace floodgate::store {
namespace {

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("fg_store_" + std::to_string(::getpid()) + "_" + name);
}

std::string read_all(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Outcome outcome(const std::string& id) {
  Outcome o;
  o.custom_id = id;
  o.status_code = 200;
  o.body = "{}";
  o.attempts = 1;
  return o;
}

TEST(Journal, RecordsOnlyOnCommitAndSurvivesReopen) {
  const auto path = temp_path("j1.db");
  std::filesystem::remove(path);
  {
    Journal j(path.string(), "ident-A");
    EXPECT_FALSE(j.resumed());
    j.record(outcome("a"));
    j.record(outcome("b"));
    EXPECT_FALSE(j.is_done("a"));  // not committed yet
    j.commit();
    EXPECT_TRUE(j.is_done("a"));
    EXPECT_TRUE(j.is_done("b"));
    EXPECT_FALSE(j.is_done("c"));
    EXPECT_EQ(j.count(), 2u);
  }
  {
    Journal j(path.string(), "ident-A");
    EXPECT_TRUE(j.resumed());
    EXPECT_TRUE(j.is_done("b"));
    j.remove({"b"});
    EXPECT_FALSE(j.is_done("b"));
    EXPECT_EQ(j.count_ok(), 1u);
  }
  EXPECT_THROW(Journal(path.string(), "ident-B"), Error);
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + "-wal");
  std::filesystem::remove(path.string() + "-shm");
}

TEST(Journal, KeyOfLineWithoutId) {
  Outcome o;
  o.line_no = 12;
  EXPECT_EQ(Journal::key_of(o), "@line:12");
}

TEST(JsonlSink, WritesWholeLinesOnFlushAndAppendsAfterTornTail) {
  const auto path = temp_path("out.jsonl");
  std::filesystem::remove(path);
  {
    auto sink = make_jsonl_sink(path.string(), OpenMode::truncate);
    sink->write(outcome("a"), {});
    EXPECT_EQ(read_all(path), "");  // buffered until flush
    sink->flush();
    const std::string once = read_all(path);
    EXPECT_EQ(std::count(once.begin(), once.end(), '\n'), 1);
    sink->close();
  }
  {
    std::ofstream f(path, std::ios::app | std::ios::binary);
    f << R"({"id":"batch_req_x","custom_id":"to)";  // a torn line, as after kill -9
  }
  EXPECT_GT(truncate_torn_tail(path.string()), 0u);
  EXPECT_EQ(truncate_torn_tail(path.string()), 0u);
  std::ofstream(path, std::ios::app | std::ios::binary) << R"({"custom_id":"torn)";
  {
    auto sink = make_jsonl_sink(path.string(), OpenMode::append);
    sink->write(outcome("b"), {});
    sink->close();
  }
  const std::string text = read_all(path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);
  EXPECT_EQ(text.find("torn"), std::string::npos);
  EXPECT_NE(text.find("\"custom_id\":\"b\""), std::string::npos);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace floodgate::store
