// Pure parts of the engine: response inspection, the conservative estimator, progress
// drawing (time injected, no sleeping) and the summary.
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "floodgate/engine/engine.hpp"
#include "floodgate/engine/response.hpp"

namespace floodgate::engine {
namespace {

TEST(InspectResponse, ReadsUsageAndErrorFields) {
  auto ok = inspect_response_body(R"({"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,
    "prompt_tokens_details":{"cached_tokens":4}}})");
  EXPECT_TRUE(ok.valid_json);
  EXPECT_TRUE(ok.has_usage);
  EXPECT_EQ(ok.usage.prompt_tokens, 12u);
  EXPECT_EQ(ok.usage.completion_tokens, 5u);
  EXPECT_EQ(ok.usage.total_tokens, 17u);
  EXPECT_EQ(ok.usage.cached_tokens, 4u);

  auto err = inspect_response_body(R"({"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}})");
  EXPECT_EQ(err.error_type, "insufficient_quota");
  EXPECT_EQ(err.error_code, "insufficient_quota");
  EXPECT_FALSE(err.has_usage);
  // Classification uses type/code only: the same message with another code is a rate limit.
  EXPECT_EQ(classify_http(429, err.error_type, err.error_code), ErrorKind::insufficient_quota);
  EXPECT_EQ(classify_http(429, "requests", "rate_limit_exceeded"), ErrorKind::rate_limited);

  EXPECT_FALSE(inspect_response_body(R"({"choices":[{"message":)").valid_json);
  EXPECT_FALSE(inspect_response_body("").valid_json);
}

TEST(ConservativeEstimator, CountsAllowanceTimesN) {
  auto est = conservative_estimator();
  const floodgate::limit::ChargeModel openai;  // input + (max | 16) x n
  Request r;
  r.endpoint = Endpoint::chat_completions;
  r.body = R"({"model":"m","messages":[],"max_tokens":50,"n":3})";
  const std::uint64_t prompt = (r.body.size() + 2) / 3;
  EXPECT_EQ(openai.charge(est(r)), prompt + 150);
  EXPECT_EQ(floodgate::limit::worst_case_tokens(est(r), 4096), prompt + 150);
  r.body = R"({"model":"m","messages":[]})";
  // No max_tokens: the pacing charge takes the provider's 16, the worst case 4,096.
  EXPECT_EQ(openai.charge(est(r)), (r.body.size() + 2) / 3 + 16);
  EXPECT_EQ(floodgate::limit::worst_case_tokens(est(r), 4096), (r.body.size() + 2) / 3 + 4096);
  r.body = R"({"model":"m","messages":[],"max_completion_tokens":7})";
  EXPECT_EQ(openai.charge(est(r)), (r.body.size() + 2) / 3 + 7);
  r.endpoint = Endpoint::embeddings;
  r.body = R"({"model":"e","input":"hello"})";
  EXPECT_EQ(openai.charge(est(r)), (r.body.size() + 2) / 3);
  EXPECT_EQ(floodgate::limit::worst_case_tokens(est(r), 4096), (r.body.size() + 2) / 3);
  r.endpoint = Endpoint::audio_transcriptions;
  EXPECT_EQ(openai.charge(est(r)), 0u);
}

std::string read_stream(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  return out;
}

TEST(Progress, LogLinesEveryIntervalWithoutATerminal) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  ProgressOptions o;
  o.tty = false;
  o.stream = f;
  o.log_interval = std::chrono::seconds(5);
  const TimePoint t0 = TimePoint{} + std::chrono::hours(1);
  Progress p(o, t0);
  ProgressState s;
  s.done = 10;
  s.total = 100;
  s.total_final = true;
  s.rpm_limit = 6000;
  EXPECT_FALSE(p.due(t0 + std::chrono::milliseconds(4999)));
  EXPECT_TRUE(p.due(t0 + std::chrono::seconds(5)));
  p.update(s, t0 + std::chrono::seconds(5));
  EXPECT_FALSE(p.due(t0 + std::chrono::milliseconds(9999)));
  EXPECT_TRUE(p.due(t0 + std::chrono::seconds(10)));
  const std::string text = read_stream(f);
  EXPECT_NE(text.find("[10/100"), std::string::npos) << text;
  EXPECT_NE(text.find("rpm 0/6000"), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
  std::fclose(f);
}

// The simulator's "unlimited" header (1e9) read as a limit of 1,000,000,000 requests/min.
TEST(Progress, AHugeLimitIsUnlimited) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  ProgressOptions o;
  o.tty = false;
  o.stream = f;
  const TimePoint t0 = TimePoint{} + std::chrono::hours(1);
  Progress p(o, t0);
  ProgressState s;
  s.done = 1;
  s.total = 2;
  s.rpm_limit = 1e9;
  s.tpm_limit = 200000;
  p.update(s, t0 + std::chrono::seconds(5), true);
  const std::string text = read_stream(f);
  EXPECT_NE(text.find("rpm 0/unlimited tpm 0/200.0k"), std::string::npos) << text;
  std::fclose(f);
}

// The first lines do not extrapolate a rate from one to three answers: "- req/s ETA ?" until
// the rate is measured over 5 s (kMinRateSpan); then a rate of this run's lines.
TEST(Progress, NoRateFromTheFirstSeconds) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  ProgressOptions o;
  o.tty = false;
  o.stream = f;
  const TimePoint t0 = TimePoint{} + std::chrono::hours(1);
  Progress p(o, t0);
  ProgressState s;
  s.total = 100;
  s.total_final = true;
  s.done = 1;
  p.update(s, t0 + std::chrono::milliseconds(250), true);
  s.done = 3;
  p.update(s, t0 + std::chrono::milliseconds(4999), true);
  s.done = 10;
  p.update(s, t0 + std::chrono::seconds(5), true);
  const std::string text = read_stream(f);
  std::istringstream lines(text);
  std::string line;
  std::vector<std::string> drawn;
  while (std::getline(lines, line)) drawn.push_back(line);
  ASSERT_EQ(drawn.size(), 3u) << text;
  EXPECT_NE(drawn[0].find("] - req/s ETA ? |"), std::string::npos) << drawn[0];  // was "4.0 req/s ETA 25s"
  EXPECT_NE(drawn[1].find("] - req/s ETA ? |"), std::string::npos) << drawn[1];
  EXPECT_NE(drawn[2].find("] 2.0 req/s ETA 45s |"), std::string::npos) << drawn[2];  // 10 lines over the run's first 5 s
  std::fclose(f);

}

TEST(Progress, JsonAndQuiet) {
  std::FILE* f = std::tmpfile();
  ProgressOptions o;
  o.tty = false;
  o.stream = f;
  o.format = LogFormat::json;
  const TimePoint t0 = TimePoint{} + std::chrono::hours(1);
  Progress p(o, t0);
  ProgressState s;
  s.done = 3;
  s.breaker = "open";
  p.update(s, t0 + std::chrono::seconds(1), true);
  p.message("warning", "a \"quoted\" note");
  std::string text = read_stream(f);
  const auto first = nlohmann::json::parse(text.substr(0, text.find('\n')));
  EXPECT_EQ(first["event"], "progress");
  EXPECT_EQ(first["breaker"], "open");
  const auto second = nlohmann::json::parse(text.substr(text.find('\n') + 1));
  EXPECT_EQ(second["message"], "a \"quoted\" note");
  std::fclose(f);

  std::FILE* q = std::tmpfile();
  o.quiet = true;
  o.stream = q;
  Progress quiet(o, t0);
  quiet.update(s, t0 + std::chrono::seconds(100), true);
  quiet.message("info", "hidden");
  EXPECT_EQ(read_stream(q), "");
  std::fclose(q);
}

TEST(Summary, JsonCarriesCountsAndExitCode) {
  RunSummary s;
  s.total_lines = 10;
  s.succeeded = 8;
  s.failed = 2;
  s.outcomes = {{"none", 8}, {"bad_request", 2}};
  s.exit_code = 1;
  s.http_429 = 3;
  const auto j = nlohmann::json::parse(format_summary(s, true));
  EXPECT_EQ(j["exit_code"], 1);
  EXPECT_EQ(j["outcomes"]["bad_request"], 2);
  EXPECT_EQ(j["http_429"], 3);
  const std::string text = format_summary(s, false);
  EXPECT_NE(text.find("bad_request"), std::string::npos);
  EXPECT_NE(text.find("succeeded     8"), std::string::npos);
}

// A run shorter than a minute reports what it sent against the limit, all in one 60 s window:
// a per-minute figure extrapolated from its seconds ("6,383/min if sustained (limit
// 5,000/min)") read like a breach after a burst the window allowed. A longer run reports
// the average against the limit.
TEST(Summary, ShortRunsSayWhatWasSentWithoutAPerMinuteExtrapolation) {
  RunSummary s;
  s.total_lines = 300;
  s.succeeded = 300;
  s.attempts = 300;
  s.tokens_total = 30386;
  s.wall_seconds = 2.82;
  s.achieved_rpm = 6383.0;
  s.achieved_tpm = 646510.0;
  s.limits.requests_per_minute = 5000;
  s.limits.tokens_per_minute = 2000000;
  const std::string short_run = format_summary(s, false);
  EXPECT_NE(short_run.find("requests      300 attempts in 2.8 s, all within one 60 s window (limit 5,000/min); 0 retries"), std::string::npos)
      << short_run;
  EXPECT_NE(short_run.find("tokens/min    30,386 used in 2.8 s, all within one 60 s window (limit 2,000,000/min)"), std::string::npos) << short_run;
  EXPECT_EQ(short_run.find("6,383"), std::string::npos) << short_run;
  EXPECT_EQ(short_run.find("646,510"), std::string::npos) << short_run;
  EXPECT_EQ(short_run.find("sustained"), std::string::npos) << short_run;
  EXPECT_EQ(short_run.find("average over the run"), std::string::npos) << short_run;

  s.wall_seconds = 120.0;
  s.achieved_rpm = 4950.0;
  const std::string long_run = format_summary(s, false);
  EXPECT_NE(long_run.find("requests/min  4,950 average over the run (limit 5,000/min in any 60 s)"), std::string::npos) << long_run;
}

// A server's "unlimited" (1e9) is not a limit of 1,000,000,000/min in the summary either.
TEST(Summary, AHugeLimitIsUnlimited) {
  RunSummary s;
  s.total_lines = 10;
  s.succeeded = 10;
  s.attempts = 10;
  s.tokens_total = 90;
  s.wall_seconds = 0.3;
  s.limits.requests_per_minute = 1e9;
  s.limits.tokens_per_minute = 1e9;
  const std::string short_run = format_summary(s, false);
  EXPECT_NE(short_run.find("(limit unlimited)"), std::string::npos) << short_run;
  EXPECT_EQ(short_run.find("1,000,000,000"), std::string::npos) << short_run;
  s.wall_seconds = 90;
  const std::string long_run = format_summary(s, false);
  EXPECT_NE(long_run.find("(limit unlimited in any 60 s)"), std::string::npos) << long_run;
  EXPECT_EQ(long_run.find("1,000,000,000"), std::string::npos) << long_run;
}

// A fully resumed run sent nothing: no rate (it read "0/min if sustained"), and the limits
// the run was given.
TEST(Summary, NothingSentShowsTheLimitsAndNoRate) {
  RunSummary s;
  s.total_lines = 30;
  s.skipped_done = 30;
  s.earlier_succeeded = 30;
  s.wall_seconds = 0.01;
  s.limits.requests_per_minute = 6000;
  s.limits.tokens_per_minute = 100000;
  const std::string text = format_summary(s, false);
  EXPECT_NE(text.find("requests      none sent in this run (limit 6,000/min)"), std::string::npos) << text;
  EXPECT_NE(text.find("tokens/min    none used in this run (limit 100,000/min)"), std::string::npos) << text;
  EXPECT_EQ(text.find("/min if sustained"), std::string::npos) << text;
  EXPECT_EQ(text.find("0 attempts"), std::string::npos) << text;
}

// --log-format json: the summary's outcomes are the failures by kind; successes are
// "succeeded" (a number), never an outcome named "none".
TEST(Summary, JsonOutcomesAreFailuresNotNone) {
  RunSummary s;
  s.total_lines = 10;
  s.succeeded = 8;
  s.failed = 2;
  s.outcomes = {{"none", 8}, {"bad_request", 2}};
  const std::string text = format_summary(s, true);
  const auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["succeeded"], 8);
  EXPECT_FALSE(j["outcomes"].contains("none")) << text;
  EXPECT_EQ(text.find("\"none\""), std::string::npos) << text;
  EXPECT_EQ(j["outcomes"]["bad_request"], 2);
}

}  // namespace
}  // namespace floodgate::engine
