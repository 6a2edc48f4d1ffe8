// Integration: `floodgate batch` against `floodgate sim`'s Batch API: the lifecycle
// (run; submit/status/wait/fetch), validation failure, expiry then --retry-failed and
// --fallback realtime, cancel with partial results, token_limit_exceeded re-queued,
// --deadline finishing in real time, and kill -9 at each step without a duplicate upload,
// batch or charge.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "floodgate/cost/prices.hpp"
#include "floodgate/schema/structured_output.hpp"
#include "support/files.hpp"
#include "support/run_process.hpp"
#include "support/sim_process.hpp"
#include "support/tables.hpp"

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

void write_text(const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
}

void write_input(const std::string& path, int n) {
  std::string text;
  for (int i = 0; i < n; ++i) {
    text += R"({"custom_id":"q)" + std::to_string(i) + R"(","method":"POST","url":"/v1/chat/completions","body":)" +
            chat_body(i) + "}\n";
  }
  write_text(path, text);
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

TEST(BatchRun, ABatchTheServerFailsInValidationNamesItsLineErrorsOnEveryLine) {
  // Lines the client accepts but the server refuses: a model it does not have.
  SimProcess sim({"--batch-speed", "200"});
  TempDir dir("batch_server_invalid");
  Cli batch{sim, dir};
  std::string text;
  for (int i = 0; i < 5; ++i) {
    json body = json::parse(chat_body(i));
    body["model"] = "gpt-no-such-model";
    text += json{{"custom_id", "q" + std::to_string(i)}, {"method", "POST"}, {"url", "/v1/chat/completions"}, {"body", body}}
                .dump() +
            "\n";
  }
  write_text(dir.file("in.jsonl"), text);
  EXPECT_EQ(batch("run", {dir.file("in.jsonl"), "-o", dir.file("out.jsonl")}), 1) << batch.log();
  EXPECT_NE(batch.log().find("failed: model_not_found (line 1)"), std::string::npos) << batch.log();
  EXPECT_EQ(expect_each_once(dir.file("out.jsonl"), 5), 0);
  for (const auto& line : read_jsonl(dir.file("out.jsonl"))) {
    const std::string message = line["error"]["message"];
    EXPECT_NE(message.find("(status failed: model_not_found (line 1)"), std::string::npos) << message;
    EXPECT_NE(message.find("model_not_found (line 5)"), std::string::npos) << message;
  }
  EXPECT_EQ(count_ledger(sim).batch_lines, 0);
}

TEST(BatchRun, WaitWarnsAboutABatchWhoseCountsDoNotMove) {
  SimProcess sim({"--batch-speed", "1"});  // 2 s validating: the counts stay at 0
  TempDir dir("batch_stuck");
  Cli batch{sim, dir};
  write_input(dir.file("in.jsonl"), 5);
  ASSERT_EQ(batch("run", {dir.file("in.jsonl"), "-o", dir.file("out.jsonl"), "--stuck-after", "500ms"}), 0) << batch.log();
  const std::string log = batch.log();
  EXPECT_NE(log.find(") has been validating at 0/5 for "), std::string::npos) << log;
  EXPECT_NE(log.find("without progress; `floodgate batch cancel` keeps what it did"), std::string::npos) << log;
  EXPECT_EQ(expect_each_once(dir.file("out.jsonl"), 5), 5);
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

TEST(BatchRun, TheDeadlineReserveIsWhatTheLimitsNeedForTheUnfinishedLines) {
  // 40 lines at 1,000 requests a minute: one window holds them all, so a deadline 5 minutes
  // away leaves the batch alone (a fixed 10-minute reserve would cancel it at once).
  SimProcess sim({"--batch-speed", "200"});
  TempDir dir("batch_deadline_reserve");
  Cli batch{sim, dir};
  write_input(dir.file("in.jsonl"), 40);
  ASSERT_EQ(batch("run", {dir.file("in.jsonl"), "-o", dir.file("out.jsonl"), "--deadline", "5m", "--rpm", "1000"}), 0)
      << batch.log();
  EXPECT_NE(batch.log().find("cancelled 2m0s before it (the real-time finish of 40 lines needs 0ms at the limits"),
            std::string::npos)
      << batch.log();
  EXPECT_EQ(batch.log().find("the deadline is near"), std::string::npos) << batch.log();
  EXPECT_EQ(sim.get("/v1/batches").json()["data"][0]["status"], "completed");
  EXPECT_EQ(count_ledger(sim).batch_lines, 40);  // every line at Batch prices, none in real time

  // 100 lines at 10 a minute: the last would go after 9 windows; the reserve says so.
  SimProcess sim2({"--batch-speed", "200"});
  Cli batch2{sim2, dir};
  write_input(dir.file("in2.jsonl"), 100);
  ASSERT_EQ(batch2("run", {dir.file("in2.jsonl"), "-o", dir.file("out2.jsonl"), "--deadline", "1h", "--rpm", "10"}), 0)
      << batch2.log();
  EXPECT_NE(batch2.log().find("cancelled 11m0s before it (the real-time finish of 100 lines needs 9m0s at the limits (set "
                              "by gpt-4o-mini rpm)"),
            std::string::npos)
      << batch2.log();
  EXPECT_EQ(count_ledger(sim2).batch_lines, 100);
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

// ---- results in run's formats and sinks -------------------------------------------------

const char* kSchema = R"({"type":"object","properties":{
  "label":{"type":"string","enum":["positive","negative","neutral"]},
  "score":{"type":"integer","minimum":0,"maximum":10}},
  "required":["label","score"]})";

// Lines that ask for kSchema in their own response_format.
void write_schema_input(const std::string& path, int n) {
  const json rf = json::parse(schema::response_format(kSchema, "rating"));
  std::string text;
  for (int i = 0; i < n; ++i) {
    json body = json::parse(chat_body(i));
    body["response_format"] = rf;
    text += json{{"custom_id", "q" + std::to_string(i)}, {"method", "POST"}, {"url", "/v1/chat/completions"}, {"body", body}}
                .dump() +
            "\n";
  }
  write_text(path, text);
}

// What an answer of gpt-4o-mini with this usage costs at `tier` (the built-in price table).
double price_of(std::uint64_t prompt, std::uint64_t completion, cost::Tier tier) {
  Usage u;
  u.prompt_tokens = prompt;
  u.completion_tokens = completion;
  u.total_tokens = prompt + completion;
  return cost::cost_usd(*cost::PriceTable::builtin().find("gpt-4o-mini"), u, tier);
}

bool near(double a, double b) { return std::abs(a - b) <= 1e-6 * std::max(std::abs(a), std::abs(b)) + 1e-15; }

TEST(BatchResults, CsvOutputHasRunsColumnsSchemaChecksAndBatchPrices) {
  SimProcess sim({"--batch-speed", "200", "--invalid-content-rate", "0.3", "--seed", "5"});
  TempDir dir("batch_csv");
  Cli batch{sim, dir};
  write_schema_input(dir.file("in.jsonl"), 80);
  write_text(dir.file("schema.json"), kSchema);
  const std::string out = dir.file("out.csv");
  EXPECT_EQ(batch("run", {dir.file("in.jsonl"), "-o", out, "--schema", dir.file("schema.json")}), 1) << batch.log();
  const Table t = read_csv(out);
  for (const char* column : {"custom_id", "status", "label", "score", "content", "prompt_tokens", "completion_tokens",
                             "cost_usd", "model", "error_kind", "error_message"}) {
    EXPECT_NE(std::find(t.header.begin(), t.header.end(), column), t.header.end()) << column;
  }
  const schema::Validator validator(kSchema);
  std::set<std::string> ids;
  int ok = 0, violations = 0;
  double batch_sum = 0;
  for (const auto& row : t.rows) {
    EXPECT_TRUE(ids.insert(row.at("custom_id")).second) << row.at("custom_id");
    const auto prompt = std::stoull(row.at("prompt_tokens"));
    const auto completion = std::stoull(row.at("completion_tokens"));
    // Batch API prices: the row's cost is the batch price, half the real-time one.
    const double at_batch = price_of(prompt, completion, cost::Tier::batch);
    EXPECT_TRUE(near(std::stod(row.at("cost_usd")), at_batch)) << row.at("cost_usd") << " vs " << at_batch;
    EXPECT_TRUE(near(2 * at_batch, price_of(prompt, completion, cost::Tier::standard)));
    batch_sum += at_batch;
    if (row.at("status") == "ok") {
      ++ok;
      EXPECT_EQ(validator.validate(row.at("content")), "") << row.at("custom_id");
      EXPECT_FALSE(row.at("label").empty());
    } else {
      ++violations;
      EXPECT_EQ(row.at("error_kind"), "schema_violation") << row.at("error_message");
      EXPECT_NE(validator.validate(row.at("content")), "");  // what was caught is really invalid
    }
  }
  EXPECT_EQ(ids.size(), 80u);
  EXPECT_GT(ok, 0);
  EXPECT_GT(violations, 0);
  // The Batch-API JSONL beside the table, as run writes it: the same lines, the same verdicts.
  int raw_errors = 0;
  const auto raw = read_jsonl(out + ".raw.jsonl");
  EXPECT_EQ(raw.size(), 80u);
  for (const auto& line : raw) raw_errors += line["error"].is_null() ? 0 : 1;
  EXPECT_EQ(raw_errors, violations);
  // The cost line: the rows' sum at Batch prices, and what real time would have cost.
  const std::string log = batch.log();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(log, m, std::regex(R"(cost \$([0-9.]+) .*; \$([0-9.]+) at real-time prices)"))) << log;
  EXPECT_NEAR(std::stod(m[1]), batch_sum, 2e-6);
  EXPECT_NEAR(std::stod(m[2]), 2 * batch_sum, 2e-6);
}

TEST(BatchResults, SqliteThroughTheStepsThenRetryFailedReplacesTheErrorRows) {
  SimProcess sim({"--batch-speed", "200", "--batch-expire-rate", "0.3"});
  TempDir dir("batch_sqlite");
  Cli batch{sim, dir};
  write_input(dir.file("in.jsonl"), 60);
  const std::string out = dir.file("out.sqlite");
  ASSERT_EQ(batch("submit", {dir.file("in.jsonl"), "-o", out}), 0) << batch.log();
  ASSERT_EQ(batch("wait", {"-o", out}), 0) << batch.log();
  EXPECT_EQ(batch("fetch", {"-o", out}), 1) << batch.log();
  const auto first = query(out, "SELECT count(*), count(DISTINCT custom_id), sum(status = 'ok'), sum(error_kind = 'timeout') FROM results");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0][0], "60");
  EXPECT_EQ(first[0][1], "60");
  const int expired = std::stoi(first[0][3]);
  EXPECT_GT(expired, 5);  // batch_expired lines are error rows of kind timeout
  EXPECT_EQ(std::stoi(first[0][2]) + expired, 60);
  EXPECT_EQ(read_jsonl(out + ".raw.jsonl").size(), 60u);
  // --retry-failed: the error rows are replaced, not joined.
  ASSERT_EQ(batch("run", {dir.file("in.jsonl"), "-o", out, "--retry-failed"}), 0) << batch.log();
  const auto after = query(out, "SELECT count(*), count(DISTINCT custom_id), sum(status = 'ok') FROM results");
  EXPECT_EQ(after[0], (std::vector<std::string>{"60", "60", "60"}));
  EXPECT_EQ(expect_each_once(out + ".raw.jsonl", 60), 60);
  expect_charged_once(count_ledger(sim), 60);
}

TEST(BatchResults, EachLinesOwnResponseFormatIsCheckedWithoutSchemaFlag) {
  SimProcess sim({"--batch-speed", "200", "--invalid-content-rate", "0.3", "--seed", "11"});
  TempDir dir("batch_rf");
  Cli batch{sim, dir};
  write_schema_input(dir.file("in.jsonl"), 80);
  EXPECT_EQ(batch("run", {dir.file("in.jsonl"), "-o", dir.file("out.jsonl")}), 1) << batch.log();
  const schema::Validator validator(kSchema);
  int ok = 0, violations = 0;
  for (const auto& line : read_jsonl(dir.file("out.jsonl"))) {
    const std::string content = line["response"]["body"]["choices"][0]["message"]["content"];
    if (line["error"].is_null()) {
      ++ok;
      EXPECT_EQ(validator.validate(content), "");
    } else {
      ++violations;
      EXPECT_EQ(line["error"]["code"], "schema_violation") << line.dump();
      EXPECT_NE(validator.validate(content), "");
    }
  }
  EXPECT_EQ(expect_each_once(dir.file("out.jsonl"), 80), ok);
  EXPECT_GT(ok, 0);
  EXPECT_GT(violations, 0);
}

TEST(BatchResults, RealTimeFinishRowsCostRealTimePrices) {
  SimProcess sim({"--batch-speed", "200", "--batch-expire-rate", "0.3"});
  TempDir dir("batch_rt_sqlite");
  Cli batch{sim, dir};
  write_input(dir.file("in.jsonl"), 60);
  const std::string out = dir.file("out.sqlite");
  ASSERT_EQ(batch("run", {dir.file("in.jsonl"), "-o", out, "--fallback", "realtime"}), 0) << batch.log();
  const auto rows = query(out, "SELECT custom_id, status, prompt_tokens, completion_tokens, cost_usd FROM results");
  ASSERT_EQ(rows.size(), 60u);
  std::set<std::string> ids;
  int at_batch = 0, at_realtime = 0;
  for (const auto& r : rows) {
    EXPECT_TRUE(ids.insert(r[0]).second) << r[0];
    EXPECT_EQ(r[1], "ok") << r[0];
    const auto prompt = std::stoull(r[2]), completion = std::stoull(r[3]);
    const double cost = std::stod(r[4]);
    if (near(cost, price_of(prompt, completion, cost::Tier::batch))) {
      ++at_batch;
    } else if (near(cost, price_of(prompt, completion, cost::Tier::standard))) {
      ++at_realtime;
    }
  }
  const auto c = count_ledger(sim);
  EXPECT_EQ(at_batch, c.batch_lines);  // answered by the batch: Batch prices
  EXPECT_EQ(at_realtime, 60 - c.batch_lines);  // answered in real time: real-time prices
  EXPECT_GT(at_realtime, 5);
  expect_charged_once(c, 60);
}

TEST(BatchResults, ResponsesCompletionsAndModerationsLinesGoThroughTheBatchAndTheRealTimeFinish) {
  SimProcess sim({"--batch-speed", "200", "--batch-expire-rate", "0.3"});
  TempDir dir("batch_responses");
  Cli batch{sim, dir};
  std::string text;
  for (int i = 0; i < 20; ++i) {
    const std::string n = std::to_string(i);
    text += json{{"custom_id", "r" + n}, {"method", "POST"}, {"url", "/v1/responses"},
                 {"body", {{"model", "gpt-4o-mini"}, {"input", "respond to " + n}, {"max_output_tokens", 8}}}}
                .dump() +
            "\n";
    text += json{{"custom_id", "c" + n}, {"method", "POST"}, {"url", "/v1/completions"},
                 {"body", {{"model", "gpt-4o-mini"}, {"prompt", "complete " + n}, {"max_tokens", 8}}}}
                .dump() +
            "\n";
    text += json{{"custom_id", "m" + n}, {"method", "POST"}, {"url", "/v1/moderations"},
                 {"body", {{"model", "omni-moderation-latest"}, {"input", "judge " + n}}}}
                .dump() +
            "\n";
  }
  write_text(dir.file("in.jsonl"), text);
  const std::string out = dir.file("out.csv");
  ASSERT_EQ(batch("run", {dir.file("in.jsonl"), "-o", out, "--fallback", "realtime"}), 0) << batch.log();
  const Table t = read_csv(out);
  std::set<std::string> ids;
  int at_batch = 0, at_realtime = 0;
  for (const auto& row : t.rows) {
    EXPECT_TRUE(ids.insert(row.at("custom_id")).second) << row.at("custom_id");
    EXPECT_EQ(row.at("status"), "ok") << row.at("error_message");
    if (row.at("custom_id")[0] == 'm') {  // moderations: free, no usage
      EXPECT_EQ(row.at("cost_usd"), "");
      continue;
    }
    const auto prompt = std::stoull(row.at("prompt_tokens")), completion = std::stoull(row.at("completion_tokens"));
    EXPECT_GT(prompt, 0u);  // the Responses API's input_tokens read as the prompt
    const double cost = std::stod(row.at("cost_usd"));
    if (near(cost, price_of(prompt, completion, cost::Tier::batch))) ++at_batch;
    if (near(cost, price_of(prompt, completion, cost::Tier::standard))) ++at_realtime;
  }
  EXPECT_EQ(ids.size(), 60u);
  std::map<std::string, int> answered;  // body hash -> 200s, batch and real time
  int batch_lines = 0, creates = 0;
  for (const auto& e : sim.ledger()) {
    const std::string path = e["path"];
    if (e["method"] == "POST" && path == "/v1/batches" && e["status"] == 200) ++creates;
    if ((path == "/v1/responses" || path == "/v1/completions" || path == "/v1/moderations") && e["status"] == 200) {
      ++answered[e["body_sha256"].get<std::string>()];
      if (e.contains("batch_id")) ++batch_lines;
    }
  }
  EXPECT_EQ(creates, 3);  // one batch per endpoint
  EXPECT_EQ(answered.size(), 60u);
  for (const auto& [hash, count] : answered) EXPECT_EQ(count, 1) << hash;
  int batch_priced = 0;  // the responses and completions lines the batches answered
  for (const auto& e : sim.ledger()) {
    if (e.contains("batch_id") && e["path"] != "/v1/moderations" && e["status"] == 200) ++batch_priced;
  }
  EXPECT_EQ(at_batch, batch_priced);
  EXPECT_EQ(at_realtime, 40 - batch_priced);
  EXPECT_LT(batch_priced, batch_lines);  // the moderations lines went through a batch too
  EXPECT_GT(at_realtime, 0);
}

TEST(BatchRun, StatusCodeZeroAndLostLinesAreNamedAsSuch) {
  SimProcess sim({"--batch-speed", "200", "--batch-zero-status-rate", "0.2", "--batch-lost-rate", "0.2"});
  TempDir dir("batch_zero");
  Cli batch{sim, dir};
  write_input(dir.file("in.jsonl"), 100);
  EXPECT_EQ(batch("run", {dir.file("in.jsonl"), "-o", dir.file("out.jsonl")}), 1) << batch.log();
  const int ok = expect_each_once(dir.file("out.jsonl"), 100);
  int zero = 0, lost = 0;
  for (const auto& line : read_jsonl(dir.file("out.jsonl"))) {
    if (line["error"].is_null()) continue;
    const std::string message = line["error"]["message"];
    if (message.find("status_code 0: batch batch_") == 0) ++zero;
    if (message.find("missing from both the output and the error file of batch batch_") == 0) ++lost;
  }
  EXPECT_GT(zero, 5);
  EXPECT_GT(lost, 5);
  EXPECT_EQ(ok + zero + lost, 100);
  EXPECT_EQ(ok, count_ledger(sim).batch_lines);  // the answered lines, each once
  EXPECT_EQ(sim.get("/v1/batches").json()["data"][0]["status"], "completed");
}

// kill -9 at each step, with a JSONL and with a CSV OUTPUT (the table and the JSONL beside it).
class BatchCrash : public ::testing::TestWithParam<std::tuple<const char*, const char*>> {};

TEST_P(BatchCrash, KilledThenRunAgainNeverDuplicatesAnUploadABatchOrACharge) {
  const auto [point, extension] = GetParam();
  SimProcess sim({"--batch-speed", "100"});
  TempDir dir("batch_crash");
  Cli batch{sim, dir};
  write_input(dir.file("in.jsonl"), 90);
  const std::string out = dir.file(std::string("out") + extension);
  const std::vector<std::string> args = {dir.file("in.jsonl"), "-o", out, "--max-lines", "40"};
  EXPECT_EQ(batch("run", args, {{"FLOODGATE_TEST_CRASH_AT", point}}), 128 + 9) << batch.log();
  ASSERT_EQ(batch("run", args), 0) << batch.log();
  if (std::string_view(extension) == ".csv") {
    const Table t = read_csv(out);
    std::set<std::string> ids;
    for (const auto& row : t.rows) {
      EXPECT_TRUE(ids.insert(row.at("custom_id")).second) << row.at("custom_id");
      EXPECT_EQ(row.at("status"), "ok");
    }
    EXPECT_EQ(ids.size(), 90u);
    EXPECT_EQ(expect_each_once(out + ".raw.jsonl", 90), 90);
  } else {
    EXPECT_EQ(expect_each_once(out, 90), 90);
  }
  const auto c = count_ledger(sim);
  EXPECT_EQ(c.uploads, 3);
  EXPECT_EQ(c.creates, 3);
  EXPECT_EQ(c.batch_lines, 90);
  expect_charged_once(c, 90);
}

INSTANTIATE_TEST_SUITE_P(EachStep, BatchCrash,
                         ::testing::Combine(::testing::Values("after_upload", "after_create", "during_wait", "during_fetch"),
                                            ::testing::Values(".jsonl", ".csv")),
                         [](const auto& param_info) {
                           return std::string(std::get<0>(param_info.param)) + (std::get<1>(param_info.param)[1] == 'c' ? "_csv" : "_jsonl");
                         });

}  // namespace
}  // namespace floodgate::test
