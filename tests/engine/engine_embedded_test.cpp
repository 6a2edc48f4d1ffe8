// The engine as engine::Client runs it, against `floodgate sim`: no output file and a
// journal in memory (its rows go to the sinks only, nothing touches the disk), and
// Engine::cancel() from another thread for a request waiting in its lane (dropped, never
// sent) and for one in flight (its transfer aborted). No sleeping: the test waits on a
// condition for what the sink receives, with a bounded timeout as a safety net only.
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "floodgate/engine/engine.hpp"
#include "support/files.hpp"
#include "support/sim_process.hpp"

namespace floodgate::engine {
namespace {

using std::chrono::seconds;
using test::SimProcess;
using test::TempDir;

// What the engine wrote, by custom_id; waitable from the test's thread.
struct Rows {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, Outcome> by_id;
  int writes = 0;

  bool wait_for(const std::string& id, seconds limit = seconds(60)) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, limit, [&] { return by_id.contains(id); });
  }
  Outcome get(const std::string& id) {
    const std::lock_guard lock(mu);
    return by_id.at(id);
  }
};

class RowsSink final : public store::Sink {
 public:
  explicit RowsSink(Rows& rows) : rows_(rows) {}
  void write(const Outcome& outcome, const store::RowContext& /*context*/) override {
    const std::lock_guard lock(rows_.mu);
    rows_.by_id[outcome.custom_id] = outcome;
    ++rows_.writes;
    rows_.cv.notify_all();
  }
  void flush() override {}
  void close() override {}

 private:
  Rows& rows_;
};

std::string chat_line(const std::string& id) {
  return R"({"custom_id":")" + id +
         R"(","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"Hi"}]}})";
}

void write_input(const std::filesystem::path& path, const std::vector<std::string>& ids) {
  std::ofstream out(path);
  for (const auto& id : ids) out << chat_line(id) << '\n';
}

EngineOptions embedded_options(const SimProcess& sim, const std::string& input, Rows& rows) {
  EngineOptions o;
  o.input_path = input;
  o.output_path.clear();
  o.journal_path = EngineOptions::kJournalInMemory;
  o.record_outcomes = false;
  o.base_url = sim.base_url();
  o.credentials.api_key = sim.api_key();
  o.progress.quiet = true;
  o.extra_sinks.push_back(std::make_unique<RowsSink>(rows));
  return o;
}

TEST(EngineEmbedded, NoOutputFileAndAJournalInMemoryTouchNothingOnDisk) {
  SimProcess sim({"--rpm", "100000", "--tpm", "100000000"});
  TempDir dir("embedded");
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back("r" + std::to_string(i));
  write_input(dir.path / "in.jsonl", ids);
  const auto cwd_before = std::distance(std::filesystem::directory_iterator("."), std::filesystem::directory_iterator());

  Rows rows;
  Engine engine(embedded_options(sim, (dir.path / "in.jsonl").string(), rows));
  const RunSummary s = engine.run();

  EXPECT_EQ(s.exit_code, 0) << s.stop_reason;
  EXPECT_EQ(s.succeeded, 20u);
  ASSERT_EQ(rows.by_id.size(), 20u);
  for (const auto& id : ids) EXPECT_TRUE(rows.by_id.at(id).ok()) << id;
  // Only the input is in its folder (no journal, lock, reserve or output), and nothing was
  // made where the process runs (a file named ":memory:" or its reserve).
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir.path)) files.push_back(e.path().filename().string());
  EXPECT_EQ(files, std::vector<std::string>{"in.jsonl"});
  EXPECT_FALSE(std::filesystem::exists(EngineOptions::kJournalInMemory));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator("."), std::filesystem::directory_iterator()), cwd_before);
}

TEST(EngineEmbedded, WithoutRecordedOutcomesTheSameIdTwiceIsSentTwice) {
  // A stream of requests from memory is not a file to resume: ids are not remembered (nor
  // is memory spent on them), so a repeated id is a request like any other.
  SimProcess sim({"--rpm", "100000", "--tpm", "100000000"});
  TempDir dir("embedded");
  write_input(dir.path / "in.jsonl", {"same", "same"});
  Rows rows;
  Engine engine(embedded_options(sim, (dir.path / "in.jsonl").string(), rows));
  const RunSummary s = engine.run();
  EXPECT_EQ(s.succeeded, 2u);
  EXPECT_EQ(rows.writes, 2);
  EXPECT_EQ(sim.ledger().size(), 2u);
}

TEST(EngineEmbedded, CancelDropsARequestWaitingInItsLaneUnsent) {
  // One request a minute: "first" goes, "second" waits in its lane for the next minute.
  SimProcess sim({"--rpm", "1", "--tpm", "100000000"});
  TempDir dir("embedded");
  write_input(dir.path / "in.jsonl", {"first", "second"});
  Rows rows;
  EngineOptions o = embedded_options(sim, (dir.path / "in.jsonl").string(), rows);
  o.limits.defaults.requests_per_minute = 1;
  Engine engine(std::move(o));
  RunSummary s;
  std::thread loop([&] { s = engine.run(); });

  ASSERT_TRUE(rows.wait_for("first"));
  engine.cancel("second");
  ASSERT_TRUE(rows.wait_for("second"));
  loop.join();  // nothing left: the run ends

  EXPECT_TRUE(rows.get("first").ok());
  const Outcome second = rows.get("second");
  EXPECT_EQ(second.error, ErrorKind::cancelled);
  EXPECT_EQ(second.attempts, 0u);
  EXPECT_EQ(second.status_code, 0);
  EXPECT_EQ(s.attempts, 1u);
  const auto ledger = sim.ledger();
  ASSERT_EQ(ledger.size(), 1u);  // "second" never reached the server
  EXPECT_EQ(ledger[0].value("status", 0), 200);
}

TEST(EngineEmbedded, CancelAbortsATransferInFlight) {
  // Every answer takes 20 s: the request is in flight when it is cancelled.
  SimProcess sim({"--rpm", "100000", "--tpm", "100000000", "--latency", "fixed:20s"});
  TempDir dir("embedded");
  write_input(dir.path / "in.jsonl", {"slow"});
  Rows rows;
  Engine engine(embedded_options(sim, (dir.path / "in.jsonl").string(), rows));
  RunSummary s;
  std::thread loop([&] { s = engine.run(); });

  ASSERT_TRUE(sim.wait_for_requests(1));  // the simulator holds it (its 20 s wait)
  engine.cancel("slow");
  // Without the abort the engine would wait for the answer and write a success.
  ASSERT_TRUE(rows.wait_for("slow", seconds(15)));
  loop.join();

  const Outcome o = rows.get("slow");
  EXPECT_EQ(o.error, ErrorKind::cancelled);
  EXPECT_EQ(o.attempts, 1u);
  EXPECT_EQ(s.attempts, 1u);
  EXPECT_EQ(s.succeeded, 0u);
}

TEST(EngineEmbedded, CancelOfAnUnknownOrFinishedRequestChangesNothing) {
  SimProcess sim({"--rpm", "100000", "--tpm", "100000000"});
  TempDir dir("embedded");
  write_input(dir.path / "in.jsonl", {"a"});
  Rows rows;
  Engine engine(embedded_options(sim, (dir.path / "in.jsonl").string(), rows));
  engine.cancel("nobody");  // before the run: kept, then found nowhere
  const RunSummary s = engine.run();
  EXPECT_EQ(s.succeeded, 1u);
  EXPECT_TRUE(rows.get("a").ok());
}

}  // namespace
}  // namespace floodgate::engine
