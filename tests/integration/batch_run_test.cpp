// Integration: `floodgate batch` against `floodgate sim`'s Batch API: the lifecycle
// (run; submit/status/wait/fetch), validation failure, expiry then --retry-failed and
// --fallback realtime, cancel with partial results, token_limit_exceeded re-queued,
// --deadline finishing in real time, and kill -9 at each step without a duplicate upload,
// batch or charge.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/files.hpp"
#include "support/run_process.hpp"
#include "support/sim_process.hpp"

namespace floodgate::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Each line's prompt is different, so its body hash names it in the sim's ledger.
std::string chat_body(int i) {
  return json{{"model", "gpt-4o-mini"},
              {"messages", {{{"role", "user"}, {"content", "question number " + std::to_string(i)}}}},
              {"max_tokens", 5}}
      .dump();
}

void write_input(const std::string& path, int n) {
  std::string text;
  for (int i = 0; i < n; ++i) {
    text += R"({"custom_id":"q)" + std::to_string(i) + R"(","method":"POST","url":"/v1/chat/completions","body":)" +
            chat_body(i) + "}\n";
  }
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
}

RunProcess::Options command_options(const std::string& command,
                                    const std::vector<std::pair<std::string, std::string>>& env = {}) {
  RunProcess::Options o;
  o.command = command;
  o.env = env;
  return o;
}

struct Cli {
  Cli(const SimProcess& s, TempDir& d) : sim(s), dir(d) {}
  const SimProcess& sim;
  TempDir& dir;
  int calls = 0;

  // `floodgate batch VERB ARGS... --base-url <sim> --poll-interval 20ms`, waited for.
  int operator()(const std::string& verb, std::vector<std::string> args,
                 const std::vector<std::pair<std::string, std::string>>& env = {}) {
    std::vector<std::string> all = {"batch", verb};
    all.insert(all.end(), args.begin(), args.end());
    all.insert(all.end(), {"--base-url", sim.base_url()});
    if (verb == "run" || verb == "wait") all.insert(all.end(), {"--poll-interval", "20ms", "--poll-max", "100ms"});
    last_log = dir.file("batch-" + std::to_string(++calls) + ".log");
    RunProcess p(all, sim.api_key(), last_log, command_options("", env));
    return p.wait(std::chrono::seconds(120));
  }
  [[nodiscard]] std::string log() const { return slurp(last_log); }
  std::string last_log;
};

struct LedgerCounts {
  int uploads = 0;
  int creates = 0;
  int batch_lines = 0;
  std::map<std::string, int> charged;  // body_sha256 of answered (200) chat requests, batch or real time
};

LedgerCounts count_ledger(const SimProcess& sim) {
  LedgerCounts c;
  for (const auto& e : sim.ledger()) {
    const std::string path = e["path"];
    if (e["method"] == "POST" && path == "/v1/files" && e["status"] == 200) ++c.uploads;
    if (e["method"] == "POST" && path == "/v1/batches" && e["status"] == 200) ++c.creates;
    if (e.contains("batch_id")) ++c.batch_lines;
    if (path == "/v1/chat/completions" && e["status"] == 200) ++c.charged[e["body_sha256"].get<std::string>()];
  }
  return c;
}

// Every custom_id q0..q{n-1} exactly once in OUTPUT; returns how many are successes.
int expect_each_once(const std::string& out, int n) {
  std::map<std::string, int> seen;
  int ok = 0;
  for (const auto& line : read_jsonl(out)) {
    ++seen[line["custom_id"].get<std::string>()];
    if (line["error"].is_null() && line["response"]["status_code"] == 200) ++ok;
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(n));
  for (const auto& [id, count] : seen) EXPECT_EQ(count, 1) << id;
  for (int i = 0; i < n; ++i) EXPECT_TRUE(seen.count("q" + std::to_string(i))) << i;
  return ok;
}

// Every answered request charged once: as many distinct bodies as lines, none twice.
void expect_charged_once(const LedgerCounts& c, int n) {
  EXPECT_EQ(c.charged.size(), static_cast<std::size_t>(n));
  for (const auto& [hash, count] : c.charged) EXPECT_EQ(count, 1) << hash;
}

TEST(BatchRun, SplitsSubmitsWaitsAndMergesEachLineOnce) {
  SimProcess sim({"--batch-speed", "200"});
  TempDir dir("batch_run");
  Cli batch{sim, dir};
  write_input(dir.file("in.jsonl"), 100);
  ASSERT_EQ(batch("run", {dir.file("in.jsonl"), "-o", dir.file("out.jsonl"), "--max-lines", "30"}), 0) << batch.log();
  EXPECT_EQ(expect_each_once(dir.file("out.jsonl"), 100), 100);
  const auto c = count_ledger(sim);
  EXPECT_EQ(c.uploads, 4);  // 30 + 30 + 30 + 10
  EXPECT_EQ(c.creates, 4);
  EXPECT_EQ(c.batch_lines, 100);
  expect_charged_once(c, 100);
  // Each batch names the job in its metadata.
  const json list = sim.get("/v1/batches?limit=10").json();
  ASSERT_EQ(list["data"].size(), 4u);
  for (const auto& b : list["data"]) {
    EXPECT_EQ(b["metadata"]["job"], "out.jsonl");
    EXPECT_EQ(b["request_counts"]["total"].get<int>() <= 30, true);
  }
  // A second run has nothing left to do: no upload, no batch.
  ASSERT_EQ(batch("run", {dir.file("in.jsonl"), "-o", dir.file("out.jsonl"), "--max-lines", "30"}), 0) << batch.log();
  EXPECT_EQ(count_ledger(sim).uploads, 4);
  EXPECT_EQ(count_ledger(sim).creates, 4);
  EXPECT_EQ(expect_each_once(dir.file("out.jsonl"), 100), 100);
}

TEST(BatchRun, SubmitStatusWaitFetchAsSeparateSteps) {
  SimProcess sim({"--batch-speed", "200"});
  TempDir dir("batch_steps");
  Cli batch{sim, dir};
  write_input(dir.file("in.jsonl"), 50);
  ASSERT_EQ(batch("submit", {dir.file("in.jsonl"), "-o", dir.file("out.jsonl")}), 0) << batch.log();
  EXPECT_EQ(count_ledger(sim).creates, 1);
  ASSERT_EQ(batch("status", {"-o", dir.file("out.jsonl")}), 0) << batch.log();
  EXPECT_NE(batch.log().find("batch_"), std::string::npos) << batch.log();
  ASSERT_EQ(batch("wait", {"-o", dir.file("out.jsonl")}), 0) << batch.log();
  EXPECT_NE(batch.log().find("1 finished"), std::string::npos) << batch.log();
  ASSERT_EQ(batch("fetch", {"-o", dir.file("out.jsonl")}), 0) << batch.log();
  EXPECT_EQ(expect_each_once(dir.file("out.jsonl"), 50), 50);
  // Fetching again adds nothing.
  ASSERT_EQ(batch("fetch", {"-o", dir.file("out.jsonl")}), 0) << batch.log();
  EXPECT_EQ(read_jsonl(dir.file("out.jsonl")).size(), 50u);
}

TEST(BatchRun, BadLinesAreNamedAndNothingIsSubmitted) {
  SimProcess sim({"--batch-speed", "200"});
  TempDir dir("batch_invalid");
  Cli batch{sim, dir};
  write_input(dir.file("in.jsonl"), 6);
  std::string text = slurp(dir.file("in.jsonl"));
  text += "this is not json\n";  // line 7
  text += R"({"custom_id":"q1","method":"POST","url":"/v1/chat/completions","body":)" + chat_body(1) + "}\n";  // line 8
  FILE* f = std::fopen(dir.file("in.jsonl").c_str(), "wb");
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  EXPECT_EQ(batch("run", {dir.file("in.jsonl"), "-o", dir.file("out.jsonl")}), 2);
  const std::string log = batch.log();
  EXPECT_NE(log.find("line 7"), std::string::npos) << log;
  EXPECT_NE(log.find("line 8: duplicate custom_id \"q1\""), std::string::npos) << log;
  EXPECT_NE(log.find("nothing was submitted"), std::string::npos) << log;
  EXPECT_EQ(count_ledger(sim).uploads, 0);
}

TEST(BatchRun, ExpiredLinesThenRetryFailedSendsOnlyThoseAgain) {
  SimProcess sim({"--batch-speed", "200", "--batch-expire-rate", "0.3"});
  TempDir dir("batch_retry");
  Cli batch{sim, dir};
  write_input(dir.file("in.jsonl"), 60);
  EXPECT_EQ(batch("run", {dir.file("in.jsonl"), "-o", dir.file("out.jsonl")}), 1) << batch.log();
  int expired = 0;
  for (const auto& line : read_jsonl(dir.file("out.jsonl"))) {
    if (!line["error"].is_null() && line["error"]["message"].get<std::string>().find("batch_expired") != std::string::npos) ++expired;
  }
  EXPECT_GT(expired, 5);
  const int ok_first = expect_each_once(dir.file("out.jsonl"), 60);
  EXPECT_EQ(ok_first + expired, 60);
  EXPECT_EQ(count_ledger(sim).batch_lines, ok_first);

  // The retry sends only the expired lines (rounds repeat while some expire again).
  ASSERT_EQ(batch("run", {dir.file("in.jsonl"), "-o", dir.file("out.jsonl"), "--retry-failed"}), 0) << batch.log();
  EXPECT_EQ(expect_each_once(dir.file("out.jsonl"), 60), 60);
  const auto c = count_ledger(sim);
  EXPECT_EQ(c.batch_lines, 60);
  expect_charged_once(c, 60);
  EXPECT_GE(c.creates, 2);
}

TEST(BatchRun, FallbackRealtimeFinishesTheExpiredLines) {
  SimProcess sim({"--batch-speed", "200", "--batch-expire-rate", "0.3"});
  TempDir dir("batch_fallback");
  Cli batch{sim, dir};
  write_input(dir.file("in.jsonl"), 60);
  ASSERT_EQ(batch("run", {dir.file("in.jsonl"), "-o", dir.file("out.jsonl"), "--fallback", "realtime"}), 0) << batch.log();
  EXPECT_EQ(expect_each_once(dir.file("out.jsonl"), 60), 60);
  const auto c = count_ledger(sim);
  EXPECT_EQ(c.creates, 1);
  EXPECT_LT(c.batch_lines, 60);
  EXPECT_GT(c.batch_lines, 20);
  expect_charged_once(c, 60);  // batch lines and real-time requests together: each once
}

TEST(BatchRun, CancelKeepsWhatTheBatchDidAndNamesTheRest) {
  SimProcess sim({"--batch-speed", "1"});  // 10 ms a line: 400 lines take 4 s, time enough to cancel
  TempDir dir("batch_cancel");
  Cli batch{sim, dir};
  write_input(dir.file("in.jsonl"), 400);
  ASSERT_EQ(batch("submit", {dir.file("in.jsonl"), "-o", dir.file("out.jsonl")}), 0) << batch.log();
  for (int i = 0; i < 2000; ++i) {
    const json list = sim.get("/v1/batches").json();
    if (list["data"][0]["request_counts"]["completed"].get<int>() > 0) break;
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(batch("cancel", {"-o", dir.file("out.jsonl")}), 0) << batch.log();
  ASSERT_EQ(batch("wait", {"-o", dir.file("out.jsonl")}), 0) << batch.log();
  EXPECT_EQ(batch("fetch", {"-o", dir.file("out.jsonl")}), 1) << batch.log();
  const int ok = expect_each_once(dir.file("out.jsonl"), 400);
  EXPECT_GT(ok, 0);
  EXPECT_LT(ok, 400);
  int missing = 0;
  for (const auto& line : read_jsonl(dir.file("out.jsonl"))) {
    if (!line["error"].is_null() &&
        line["error"]["message"].get<std::string>().find("missing from both the output and the error file") != std::string::npos) {
      ++missing;
    }
  }
  EXPECT_EQ(ok + missing, 400);
  EXPECT_EQ(count_ledger(sim).batch_lines, ok);
}

TEST(BatchRun, TokenLimitExceededIsRequeuedAndLearned) {
  // Two parts of ~2,000 input tokens; the sim holds 3,000 enqueued tokens of gpt-4o-mini.
  // At speed 2 the first batch runs for 2.5 s: the second is created while it is queued.
  SimProcess sim({"--batch-speed", "2", "--batch-queue-limit", "gpt-4o-mini=3000"});
  TempDir dir("batch_queue");
  Cli batch{sim, dir};
  write_input(dir.file("in.jsonl"), 400);
  ASSERT_EQ(batch("run", {dir.file("in.jsonl"), "-o", dir.file("out.jsonl"), "--max-lines", "200"}), 0) << batch.log();
  EXPECT_NE(batch.log().find("enqueued-token limit of gpt-4o-mini is 3,000"), std::string::npos) << batch.log();
  EXPECT_EQ(expect_each_once(dir.file("out.jsonl"), 400), 400);
  const auto c = count_ledger(sim);
  EXPECT_EQ(c.uploads, 2);  // the refused part's file is used again
  EXPECT_EQ(c.creates, 3);  // one create was refused whole
  expect_charged_once(c, 400);
}

TEST(BatchRun, AKnownQueueLimitIsNeverPassed) {
  SimProcess sim({"--batch-speed", "20", "--batch-queue-limit", "gpt-4o-mini=3000"});
  TempDir dir("batch_queue_known");
  Cli batch{sim, dir};
  write_input(dir.file("in.jsonl"), 400);
  ASSERT_EQ(batch("run", {dir.file("in.jsonl"), "-o", dir.file("out.jsonl"), "--queue-limit", "gpt-4o-mini=3000"}), 0)
      << batch.log();
  EXPECT_EQ(batch.log().find("refused"), std::string::npos) << batch.log();
  EXPECT_EQ(expect_each_once(dir.file("out.jsonl"), 400), 400);
  const auto c = count_ledger(sim);
  EXPECT_EQ(c.creates, c.uploads);  // nothing refused
  EXPECT_GE(c.creates, 2);          // split so that each part fits under the limit
}

TEST(BatchRun, DeadlineCancelsAndFinishesInRealTime) {
  // 20 ms a line after 4 s of validation: the batch cannot finish before the deadline.
  SimProcess sim({"--batch-speed", "0.5"});
  TempDir dir("batch_deadline");
  Cli batch{sim, dir};
  write_input(dir.file("in.jsonl"), 40);
  ASSERT_EQ(batch("run", {dir.file("in.jsonl"), "-o", dir.file("out.jsonl"), "--deadline", "3s", "--deadline-reserve", "2s"}), 0)
      << batch.log();
  EXPECT_NE(batch.log().find("the deadline is near"), std::string::npos) << batch.log();
  EXPECT_EQ(expect_each_once(dir.file("out.jsonl"), 40), 40);
  const json list = sim.get("/v1/batches").json();
  ASSERT_EQ(list["data"].size(), 1u);
  EXPECT_EQ(list["data"][0]["status"], "cancelled");
  expect_charged_once(count_ledger(sim), 40);
}

TEST(BatchRun, EstimateShowsTheBatchPriceBesideTheRealTimeOne) {
  TempDir dir("batch_estimate");
  write_input(dir.file("in.jsonl"), 20);
  const std::string log = dir.file("estimate.log");
  RunProcess p({dir.file("in.jsonl"), "--json"}, "sk-unused", log, command_options("estimate"));
  ASSERT_EQ(p.wait(std::chrono::seconds(60)), 0) << slurp(log);
  const json j = json::parse(slurp(log));
  EXPECT_GT(j["cost_usd_max"].get<double>(), 0);
  EXPECT_DOUBLE_EQ(j["batch_cost_usd_max"].get<double>(), j["cost_usd_max"].get<double>() / 2);
  EXPECT_DOUBLE_EQ(j["batch_cost_usd_min"].get<double>(), j["cost_usd_min"].get<double>() / 2);
  const std::string text_log = dir.file("estimate.txt");
  RunProcess text({dir.file("in.jsonl")}, "sk-unused", text_log, command_options("estimate"));
  ASSERT_EQ(text.wait(std::chrono::seconds(60)), 0);
  EXPECT_NE(slurp(text_log).find("cost with `floodgate batch` (Batch API prices): $"), std::string::npos) << slurp(text_log);
}

class BatchCrash : public ::testing::TestWithParam<const char*> {};

TEST_P(BatchCrash, KilledThenRunAgainNeverDuplicatesAnUploadABatchOrACharge) {
  SimProcess sim({"--batch-speed", "100"});
  TempDir dir("batch_crash");
  Cli batch{sim, dir};
  write_input(dir.file("in.jsonl"), 90);
  const std::vector<std::string> args = {dir.file("in.jsonl"), "-o", dir.file("out.jsonl"), "--max-lines", "40"};
  EXPECT_EQ(batch("run", args, {{"FLOODGATE_TEST_CRASH_AT", GetParam()}}), 128 + 9) << batch.log();
  ASSERT_EQ(batch("run", args), 0) << batch.log();
  EXPECT_EQ(expect_each_once(dir.file("out.jsonl"), 90), 90);
  const auto c = count_ledger(sim);
  EXPECT_EQ(c.uploads, 3);
  EXPECT_EQ(c.creates, 3);
  EXPECT_EQ(c.batch_lines, 90);
  expect_charged_once(c, 90);
}

INSTANTIATE_TEST_SUITE_P(EachStep, BatchCrash,
                         ::testing::Values("after_upload", "after_create", "during_wait", "during_fetch"));

}  // namespace
}  // namespace floodgate::test
