// The engine's scheduling and stop rules, driven through a scripted fake transport on a
// manual clock (tests/support/scripted_transport.hpp): no server, no socket, no sleeping.
// Minutes of the job's time pass in milliseconds of the test's, because the only wait of
// the engine's loop is the transport's poll(), which the fake answers by moving the clock.
//
// Each test names the rule it checks; the comment under it says what breaks it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "floodgate/core/exit_codes.hpp"
#include "floodgate/engine/engine.hpp"
#include "support/files.hpp"
#include "support/scripted_transport.hpp"

namespace floodgate::engine {
namespace {

using namespace std::chrono_literals;
using test::ScriptedReply;
using test::ScriptedServer;
using test::SentRequest;

// One job against a scripted server: a temporary folder with the input, the output and the
// journal, the engine's messages captured, limits given (no learning) so admission is known.
class Job {
 public:
  Job(const std::vector<nlohmann::json>& lines, ScriptedServer::Script script)
      : dir_("sched"), server_(clock_, std::move(script)), log_(std::fopen(dir_.file("log.txt").c_str(), "w")) {
    std::string text;
    for (const auto& l : lines) text += l.dump() + "\n";
    std::FILE* f = std::fopen(dir_.file("in.jsonl").c_str(), "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
    options.input_path = dir_.file("in.jsonl");
    options.output_path = dir_.file("out.jsonl");
    options.base_url = "http://127.0.0.1:9/v1";
    options.credentials.api_key = "sk-test-scripted";
    options.limits.defaults.requests_per_minute = 6000;
    options.limits.defaults.tokens_per_minute = 10'000'000;
    options.limits.learn_from_headers = false;
    options.disk_reserve_bytes = 0;
    options.progress.tty = false;
    options.progress.stream = log_;
    options.make_transport = server_.factory();
    options.on_event = [this](const JobEvent& e) { events.push_back(e); };
  }
  ~Job() { std::fclose(log_); }

  RunSummary run() {
    Engine engine(std::move(options), clock_);
    engine_ = &engine;
    start_ = clock_.now();
    RunSummary s = engine.run();
    engine_ = nullptr;
    return s;
  }

  // Asks the running engine to stop (as Ctrl-C does); callable from the script.
  void interrupt() { engine_->request_stop(); }

  [[nodiscard]] const std::vector<SentRequest>& sent() const { return server_.sent(); }
  [[nodiscard]] ScriptedServer& server() { return server_; }
  [[nodiscard]] Duration since_start(TimePoint t) const { return t - start_; }
  [[nodiscard]] std::vector<nlohmann::json> output() const { return test::read_jsonl(dir_.file("out.jsonl")); }
  [[nodiscard]] std::string messages() const {
    std::fflush(log_);
    return test::slurp(dir_.file("log.txt"));
  }

  EngineOptions options;
  std::vector<JobEvent> events;  // the engine's typed job events, in order

 private:
  test::TempDir dir_;
  ManualClock clock_;
  ScriptedServer server_;
  std::FILE* log_;
  Engine* engine_ = nullptr;
  TimePoint start_{};
};

std::vector<nlohmann::json> chat_lines(int n, const std::string& model = "gpt-4o-mini", const std::string& prefix = "q") {
  std::vector<nlohmann::json> out;
  for (int i = 0; i < n; ++i) out.push_back(test::chat_request(prefix + std::to_string(i), i, model));
  return out;
}

std::size_t count_kind(const std::vector<nlohmann::json>& rows, const std::string& kind) {
  return static_cast<std::size_t>(std::count_if(rows.begin(), rows.end(), [&](const nlohmann::json& r) {
    return r.contains("error") && r["error"].is_object() && r["error"].value("code", std::string()) == kind;
  }));
}

std::size_t count_ok(const std::vector<nlohmann::json>& rows) {
  return static_cast<std::size_t>(std::count_if(rows.begin(), rows.end(), [](const nlohmann::json& r) {
    return !r.contains("error") || r["error"].is_null();
  }));
}

TEST(Scheduler, RetryAfterIsHonoured) {
  // Broken by: a retry that ignores the 429's retry-after (the backoff's own 0.5 s jitter
  // then, unless the limiter's hold after a 429 keeps it: both honour it).
  Job job(chat_lines(1), [](const SentRequest&, std::size_t i) {
    return i == 0 ? ScriptedReply::rate_limited({{"retry-after", "7"}}) : ScriptedReply::ok();
  });
  const RunSummary s = job.run();
  EXPECT_EQ(s.exit_code, exit_code::ok);
  ASSERT_EQ(job.sent().size(), 2u);
  const TimePoint answered = job.sent()[0].at + 100ms;  // the scripted latency
  // Not before the 7 s, and not the backoff's own delay either (at most 0.5 s after a first
  // attempt); the limiter's even pace may add one emission interval (10 ms at 6,000/min).
  EXPECT_GE(job.sent()[1].at - answered, 7s);
  EXPECT_LT(job.sent()[1].at - answered, 7s + 100ms);
  EXPECT_EQ(s.http_429, 1u);
  EXPECT_EQ(s.breaker_opened, 0u);
}

TEST(Scheduler, BreakerOpensAfterThree429sThenOneProbeGoesAlone) {
  // Broken by: an admission that takes the breaker for closed (retries go at ~0.5 s, and
  // nothing waits for a probe).
  Job job(chat_lines(10), [](const SentRequest&, std::size_t i) { return i < 10 ? ScriptedReply::rate_limited() : ScriptedReply::ok(); });
  const RunSummary s = job.run();
  EXPECT_EQ(s.exit_code, exit_code::ok);
  EXPECT_EQ(s.succeeded, 10u);
  EXPECT_EQ(s.breaker_opened, 1u);
  ASSERT_EQ(job.sent().size(), 20u);
  // The ten went at once and were refused at 100 ms; the third 429 opened the breaker for its
  // default 5 s: nothing goes before it ends.
  const TimePoint first = job.sent()[0].at;
  for (std::size_t i = 0; i < 10; ++i) EXPECT_EQ(job.sent()[i].at, first);
  const SentRequest& probe = job.sent()[10];
  EXPECT_GE(probe.at - first, 100ms + 5s);
  EXPECT_LT(probe.at - first, 100ms + 5s + 10ms);
  // Half-open: the probe alone until it answers, then the rest together.
  const TimePoint probe_answered = probe.at + 100ms;
  for (std::size_t i = 11; i < 20; ++i) {
    EXPECT_GE(job.sent()[i].at, probe_answered) << i;
    EXPECT_EQ(job.sent()[i].at, job.sent()[11].at) << i;
  }
  EXPECT_NE(job.messages().find("circuit breaker open after 3 consecutive 429s"), std::string::npos) << job.messages();
}

TEST(Scheduler, InsufficientQuotaStopsAdmittingDrainsAndExits3) {
  // Broken by: a quota 429 retried like a rate limit (the job then finishes, exit 0).
  Job job(chat_lines(20), [](const SentRequest&, std::size_t i) { return i == 0 ? ScriptedReply::insufficient_quota() : ScriptedReply::ok(); });
  job.options.max_in_flight = 2;
  const RunSummary s = job.run();
  EXPECT_EQ(s.exit_code, exit_code::insufficient_quota);
  EXPECT_EQ(s.stop_reason, "insufficient_quota");
  // The other request in flight was drained and written; nothing was sent after the quota
  // answer, and the quota line itself is left for the resume, not written as an error.
  EXPECT_EQ(job.sent().size(), 2u);
  EXPECT_EQ(s.succeeded, 1u);
  EXPECT_EQ(s.not_done, 19u);
  const auto rows = job.output();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(count_ok(rows), 1u);
}

TEST(Scheduler, APauseBeyondTheHorizonSuspendsOnlyThatModel) {
  // Broken by: a horizon (max_server_wait) that does not suspend: the 2 h wait is then
  // retried in this run, and the run ends with the model's lines failed, not paused.
  std::vector<nlohmann::json> lines = chat_lines(5, "gpt-a", "a");
  for (auto& l : chat_lines(5, "gpt-b", "b")) lines.push_back(l);
  Job job(lines, [](const SentRequest& r, std::size_t) {
    return r.body.find("\"gpt-a\"") != std::string::npos ? ScriptedReply::rate_limited({{"retry-after", "7200"}}) : ScriptedReply::ok();
  });
  const RunSummary s = job.run();
  EXPECT_EQ(s.exit_code, exit_code::paused);
  EXPECT_EQ(s.stop, StopCause::paused);
  EXPECT_EQ(s.stop_reason, "paused");  // no describe hook: the stop's name
  ASSERT_FALSE(job.events.empty());
  const JobEvent& stop = job.events.back();
  EXPECT_EQ(stop.kind, JobEvent::Kind::stopped);
  EXPECT_EQ(stop.cause, StopCause::paused);
  EXPECT_NE(stop.detail.find("model \"gpt-a\" may resume after"), std::string::npos) << stop.detail;
  EXPECT_EQ(s.succeeded, 5u);
  EXPECT_EQ(s.not_done, 5u);
  std::size_t sent_a = 0;
  for (const SentRequest& r : job.sent()) {
    if (r.body.find("\"gpt-a\"") != std::string::npos) ++sent_a;
  }
  EXPECT_EQ(sent_a, 5u);  // the first round only: no retry in this run
  const auto rows = job.output();
  EXPECT_EQ(rows.size(), 5u);
  EXPECT_EQ(count_ok(rows), 5u);
  for (const auto& r : rows) EXPECT_EQ(r["custom_id"].get<std::string>()[0], 'b');
}

TEST(Scheduler, NoAnswerAtAllIsTheUnreachableVerdictExit7) {
  // Broken by: connection failures before any answer treated as per-line errors (every line
  // written as a connection error after its attempts, exit 1).
  Job job(chat_lines(20), [](const SentRequest&, std::size_t) { return ScriptedReply::connection_refused(); });
  const RunSummary s = job.run();
  EXPECT_EQ(s.exit_code, exit_code::unreachable);
  EXPECT_EQ(s.stop, StopCause::unreachable);
  EXPECT_EQ(s.stop_reason, "unreachable");
  EXPECT_EQ(s.not_done, 20u);
  EXPECT_EQ(s.failed, 0u);
  EXPECT_TRUE(job.output().empty());
  EXPECT_GE(job.sent().size(), 8u);
  // Typed: the verdict with its evidence, then the stop; no words but the event's name.
  ASSERT_EQ(job.events.size(), 2u);
  const JobEvent& verdict = job.events[0];
  EXPECT_EQ(verdict.kind, JobEvent::Kind::unreachable);
  EXPECT_TRUE(verdict.error);
  EXPECT_EQ(verdict.base_url, "http://127.0.0.1:9/v1");
  EXPECT_GE(verdict.count, 8u);
  EXPECT_FALSE(verdict.slow);
  EXPECT_FALSE(verdict.detail.empty());
  EXPECT_EQ(job.events[1].kind, JobEvent::Kind::stopped);
  EXPECT_EQ(job.events[1].cause, StopCause::unreachable);
  EXPECT_NE(job.messages().find("unreachable"), std::string::npos) << job.messages();
  EXPECT_EQ(job.messages().find("--base-url"), std::string::npos) << job.messages();  // the CLI's words, not the engine's
}

TEST(Scheduler, TheDescribeHookWordsTheMessagesAndTheStopReason) {
  // Broken by: an event worded by the engine itself, or a stop reason not from the hook.
  Job job(chat_lines(20), [](const SentRequest&, std::size_t) { return ScriptedReply::connection_refused(); });
  job.options.describe = [](const JobEvent& e) {
    return "words for " + std::string(name(e)) + (e.kind == JobEvent::Kind::stopped ? " (stop)" : "");
  };
  const RunSummary s = job.run();
  EXPECT_EQ(s.exit_code, exit_code::unreachable);
  EXPECT_EQ(s.stop_reason, "words for unreachable (stop)");
  EXPECT_NE(job.messages().find("words for unreachable"), std::string::npos) << job.messages();
}

TEST(Scheduler, ARequestLargerThanTheTokenLimitIsCannotFitAndNeverSent) {
  // Broken by: treating cannot_fit as a wait (the request then waits for ever; the poll
  // bound fails the test) or sending it anyway.
  std::vector<nlohmann::json> lines = chat_lines(3);
  lines[1]["body"]["max_tokens"] = 5000;
  Job job(lines, [](const SentRequest&, std::size_t) { return ScriptedReply::ok(); });
  job.options.limits.defaults.tokens_per_minute = 1000;
  job.server().set_max_polls(100'000);
  const RunSummary s = job.run();
  EXPECT_EQ(s.exit_code, exit_code::some_failed);
  EXPECT_EQ(job.sent().size(), 2u);
  for (const SentRequest& r : job.sent()) EXPECT_EQ(r.body.find("5000"), std::string::npos);
  const auto rows = job.output();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(count_kind(rows, "cannot_fit"), 1u);
  for (const auto& r : rows) {
    if (r["custom_id"] == "q1") {
      EXPECT_EQ(r["error"]["code"], "cannot_fit");
    }
  }
}

TEST(Scheduler, MaxWaitFailsEachHeadThatWaitedLongerForAdmission) {
  // Broken by: a --max-wait that is not checked (the lines then wait a minute for the
  // window and succeed).
  Job job(chat_lines(5), [](const SentRequest&, std::size_t) { return ScriptedReply::ok(); });
  job.options.limits.defaults.requests_per_minute = 2;
  job.options.max_wait = 10s;
  const RunSummary s = job.run();
  EXPECT_EQ(s.exit_code, exit_code::some_failed);
  EXPECT_EQ(job.sent().size(), 2u);
  EXPECT_EQ(s.succeeded, 2u);
  const auto rows = job.output();
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(count_kind(rows, "max_wait"), 3u);
  for (const auto& r : rows) {
    if (r.contains("error") && r["error"].is_object()) {
      EXPECT_NE(r["error"]["message"].get<std::string>().find("waited longer than max_wait (10s)"), std::string::npos) << r.dump();
    }
  }
}

TEST(Scheduler, CtrlCStopsAdmittingAndDrainsWhatIsInFlight) {
  // Broken by: a stop that drops the requests in flight (not written), or goes on admitting.
  Job* jp = nullptr;
  Job job(chat_lines(20), [&jp](const SentRequest&, std::size_t i) {
    if (i == 3) jp->interrupt();  // Ctrl-C while the fourth request goes out
    ScriptedReply r = ScriptedReply::ok();
    if (i >= 2) r.latency = 5s;  // two answered at once, two still in flight at the stop
    return r;
  });
  jp = &job;
  job.options.max_in_flight = 4;
  const RunSummary s = job.run();
  EXPECT_EQ(s.exit_code, exit_code::interrupted);
  EXPECT_EQ(s.stop_reason, "interrupted");
  EXPECT_EQ(job.sent().size(), 4u);
  EXPECT_EQ(s.succeeded, 4u);
  EXPECT_EQ(s.not_done, 16u);
  EXPECT_EQ(count_ok(job.output()), 4u);
  ASSERT_FALSE(job.events.empty());
  EXPECT_EQ(job.events[0].kind, JobEvent::Kind::interrupted);
  EXPECT_EQ(job.events[0].in_flight, 2u);
}

}  // namespace
}  // namespace floodgate::engine
