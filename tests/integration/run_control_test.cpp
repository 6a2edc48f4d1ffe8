// `floodgate run`'s control flow against `floodgate sim`: a pause remembered across runs
// (daily limit), --ordered output across an interrupted run and its resume, --max-wait,
// --retry-failed, an unreachable API (exit 7), and a per-model --limits file. Jobs are short (high limits, small counts); the sim's
// stats and ledger are the judge.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/files.hpp"
#include "support/run_process.hpp"
#include "support/sim_process.hpp"

namespace {

namespace fs = std::filesystem;
using floodgate::test::complete_lines;
using floodgate::test::ledger_ms;
using floodgate::test::max_in_window;
using floodgate::test::read_jsonl;
using floodgate::test::run_args;
using floodgate::test::run_to_end;
using floodgate::test::RunProcess;
using floodgate::test::slurp;
using floodgate::test::TempDir;
using floodgate::test::chat_request;
using floodgate::test::write_chat_input;
using floodgate::test::SimProcess;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

std::int64_t model_requests(const SimProcess& sim, const std::string& model) {
  const json stats = sim.stats();
  return stats["models"].contains(model) ? stats["models"][model]["requests"].get<std::int64_t>() : 0;
}

std::size_t count_prefix(const std::vector<json>& lines, char prefix) {
  return static_cast<std::size_t>(std::count_if(lines.begin(), lines.end(), [&](const json& l) {
    return l["custom_id"].is_string() && l["custom_id"].get<std::string>()[0] == prefix;
  }));
}

// ---- 1. a pause is remembered ----------------------------------------------------------------

TEST(RunControl, DailyPauseIsRememberedAcrossRunsUnlessIgnored) {
  TempDir dir("ctl");
  const fs::path cfg = dir.path / "sim.json";
  std::ofstream(cfg) << R"({"models":{"gpt-4o-mini":{"rpd":20}}})";
  SimProcess sim({"--config", cfg.string()});
  // m* lines go to the daily-limited model, n* lines to an unlimited one, interleaved.
  const fs::path in = dir.path / "in.jsonl";
  {
    std::ofstream f(in);
    for (int i = 0; i < 30; ++i) {
      f << chat_request("m" + std::to_string(i), i, "gpt-4o-mini").dump() << "\n";
      f << chat_request("n" + std::to_string(i), i, "gpt-4.1-nano").dump() << "\n";
    }
  }
  const fs::path out = dir.path / "out.jsonl";

  // Run 1: the 21st request of gpt-4o-mini is told to wait ~72 min: exit 6, the rest go on.
  ASSERT_EQ(run_to_end(sim, in, out, {"--max-in-flight", "2"}, dir.path / "log1"), 6) << slurp(dir.path / "log1");
  auto lines = read_jsonl(out);
  EXPECT_EQ(count_prefix(lines, 'm'), 20u);
  EXPECT_EQ(count_prefix(lines, 'n'), 30u);
  EXPECT_NE(slurp(dir.path / "log1").find("may resume after"), std::string::npos) << slurp(dir.path / "log1");

  // Lose the n* lines from the output: reconciliation forgets them, so run 2 has work for the
  // other model and shows it goes on while the paused one gets nothing.
  {
    std::ofstream f(out, std::ios::trunc);
    for (const auto& l : lines) {
      if (l["custom_id"].get<std::string>()[0] == 'm') f << l.dump() << "\n";
    }
  }
  const std::int64_t mini_before = model_requests(sim, "gpt-4o-mini");
  const std::int64_t nano_before = model_requests(sim, "gpt-4.1-nano");

  // Run 2, at once: nothing sent for gpt-4o-mini, exit 6 again with the reason.
  ASSERT_EQ(run_to_end(sim, in, out, {"--max-in-flight", "2"}, dir.path / "log2"), 6) << slurp(dir.path / "log2");
  const std::string log2 = slurp(dir.path / "log2");
  EXPECT_NE(log2.find("model \"gpt-4o-mini\" paused until"), std::string::npos) << log2;
  EXPECT_NE(log2.find("nothing sent"), std::string::npos) << log2;
  EXPECT_NE(log2.find("--ignore-pause"), std::string::npos) << log2;
  EXPECT_EQ(model_requests(sim, "gpt-4o-mini"), mini_before) << "a remembered pause must send nothing";
  EXPECT_EQ(model_requests(sim, "gpt-4.1-nano"), nano_before + 30);
  lines = read_jsonl(out);
  EXPECT_EQ(count_prefix(lines, 'm'), 20u);
  EXPECT_EQ(count_prefix(lines, 'n'), 30u);

  // Run 3 with --ignore-pause: it does send (and the sim, still over its daily limit, pauses
  // it again).
  ASSERT_EQ(run_to_end(sim, in, out, {"--max-in-flight", "2", "--ignore-pause"}, dir.path / "log3"), 6) << slurp(dir.path / "log3");
  EXPECT_GT(model_requests(sim, "gpt-4o-mini"), mini_before);
  EXPECT_EQ(read_jsonl(out).size(), 50u);
}

// ---- 2. --ordered across an interrupted run ---------------------------------------------------

// The key each input line is written under: its custom_id, or "@line:N" for a line without
// a usable one (a bad line, a duplicate id).
std::string output_key(const json& l) {
  if (l["custom_id"].is_string()) return l["custom_id"].get<std::string>();
  return "@line:" + std::to_string(l["error"]["line"].get<std::uint64_t>());
}

TEST(RunControl, OrderedOutputIsInInputOrderAfterSigintAndKillThenResume) {
  TempDir dir("ctl");
  SimProcess sim({"--rpm", "60000", "--latency", "random:1ms-30ms"});
  const int n = 300;
  const fs::path in = dir.path / "in.jsonl";
  std::vector<std::string> expected;
  {
    std::ofstream f(in);
    for (int i = 0; i < n; ++i) {
      const std::string id = "q" + std::to_string(i);
      f << chat_request(id, i, "gpt-4o-mini").dump() << "\n";
      expected.push_back(id);
      if (i == 40) {  // line 42: not JSON
        f << "not json\n";
        expected.push_back("@line:42");
      }
      if (i == 200) {  // line 203: a duplicate custom_id
        f << chat_request("q7", 7, "gpt-4o-mini").dump() << "\n";
        expected.push_back("@line:203");
      }
    }
  }
  const fs::path out = dir.path / "out.jsonl";
  const std::vector<std::string> flags = {"--ordered", "--max-in-flight", "16"};
  auto wait_for_lines = [&](std::size_t count) {
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline && complete_lines(out) < count) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  };
  {  // Run 1: Ctrl-C part way.
    RunProcess p(run_args(sim, in, out, flags), sim.api_key(), dir.path / "log1");
    wait_for_lines(60);
    p.signal(SIGINT);
    ASSERT_EQ(p.wait(std::chrono::seconds(20)), 5) << slurp(dir.path / "log1");
  }
  const std::size_t after_first = read_jsonl(out).size();
  ASSERT_LT(after_first, expected.size());
  {  // Run 2: a resume killed -9 part way.
    RunProcess p(run_args(sim, in, out, flags), sim.api_key(), dir.path / "log2");
    wait_for_lines(after_first + 60);
    p.signal(SIGKILL);
    ASSERT_EQ(p.wait(std::chrono::seconds(10)), 128 + SIGKILL);
  }
  ASSERT_LT(read_jsonl(out).size(), expected.size());
  // Run 3 finishes the job: every key once, in input order.
  const int rc = run_to_end(sim, in, out, flags, dir.path / "log3");  // 1 when it wrote an invalid line
  ASSERT_TRUE(rc == 0 || rc == 1) << rc << slurp(dir.path / "log3");
  const auto lines = read_jsonl(out);
  std::vector<std::string> got;
  for (const auto& l : lines) got.push_back(output_key(l));
  EXPECT_EQ(got, expected);
  // The journal still agrees with the rewritten output: a further run finds nothing to do
  // (exit 1 while the output holds the invalid line's error line, as it describes OUTPUT).
  const bool has_error_line = std::any_of(lines.begin(), lines.end(), [](const json& l) { return !l["error"].is_null(); });
  ASSERT_EQ(run_to_end(sim, in, out, flags, dir.path / "log4"), has_error_line ? 1 : 0) << slurp(dir.path / "log4");
  EXPECT_EQ(read_jsonl(out).size(), expected.size());
}

// ---- 3. --max-wait and --limits FILE ----------------------------------------------------------

TEST(RunControl, MaxWaitFailsRequestsThatCannotBeAdmittedInTimeAndTheJobGoesOn) {
  TempDir dir("ctl");
  SimProcess sim;
  const int n = 8;
  const fs::path in = write_chat_input(dir.path / "in.jsonl", "q", n);
  const fs::path out = dir.path / "out.jsonl";
  // 60/min paced evenly (--burst) admits one request a second; a head of the lane gives up
  // after 300 ms.
  ASSERT_EQ(run_to_end(sim, in, out, {"--rpm", "60", "--burst", "1s", "--max-wait", "300ms"}, dir.path / "log"), 1)
      << slurp(dir.path / "log");
  const auto lines = read_jsonl(out);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(n));
  std::map<std::string, int> seen;
  int ok = 0;
  int waited = 0;
  for (const auto& l : lines) {
    ++seen[l["custom_id"].get<std::string>()];
    if (l["error"].is_null()) {
      ++ok;
      continue;
    }
    EXPECT_EQ(l["error"]["code"], "max_wait") << l.dump();
    EXPECT_NE(l["error"]["message"].get<std::string>().find("--max-wait"), std::string::npos) << l.dump();
    ++waited;
  }
  for (int i = 0; i < n; ++i) EXPECT_EQ(seen["q" + std::to_string(i)], 1);
  EXPECT_GE(ok, 2) << "requests after a max_wait failure still go";
  EXPECT_GE(waited, 3);
  // A request that gave up waiting was never sent.
  EXPECT_EQ(sim.stats()["requests"].get<int>(), ok);
}

// ---- --retry-failed ---------------------------------------------------------------------------

// Lines that failed count as done: a plain re-run sends nothing. --retry-failed sends exactly
// the failed lines again (a second server sees only them), and the output then holds each
// custom_id once, the earlier error lines gone.
TEST(RunControl, RetryFailedSendsOnlyTheFailedLinesAgainAndKeepsEachIdOnce) {
  TempDir dir("ctl");
  const int n = 20;
  const fs::path in = write_chat_input(dir.path / "in.jsonl", "r", n);
  const fs::path out = dir.path / "out.jsonl";
  std::size_t failed_first = 0;
  {
    SimProcess flaky({"--fault-rate", "0.5", "--faults", "500", "--seed", "7"});
    ASSERT_EQ(run_to_end(flaky, in, out, {"--max-attempts", "1"}, dir.path / "log1"), 1) << slurp(dir.path / "log1");
    const auto lines = read_jsonl(out);
    ASSERT_EQ(lines.size(), static_cast<std::size_t>(n));
    for (const auto& l : lines) failed_first += l["error"].is_null() ? 0 : 1;
    ASSERT_GT(failed_first, 0u);
    ASSERT_LT(failed_first, static_cast<std::size_t>(n));
  }
  SimProcess healthy;
  // A plain re-run: everything is done, nothing is sent, the errors stay (so exit 1 again).
  EXPECT_EQ(run_to_end(healthy, in, out, {}, dir.path / "log2"), 1) << slurp(dir.path / "log2");
  EXPECT_EQ(healthy.stats()["requests"].get<int>(), 0);
  EXPECT_EQ(read_jsonl(out).size(), static_cast<std::size_t>(n));

  // --retry-failed: exactly the failed lines go out, and all succeed.
  ASSERT_EQ(run_to_end(healthy, in, out, {"--retry-failed"}, dir.path / "log3"), 0) << slurp(dir.path / "log3");
  EXPECT_EQ(healthy.stats()["requests"].get<std::size_t>(), failed_first);
  const auto lines = read_jsonl(out);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(n));
  std::map<std::string, int> seen;
  for (const auto& l : lines) {
    ++seen[l["custom_id"].get<std::string>()];
    EXPECT_TRUE(l["error"].is_null()) << l.dump();
  }
  for (int i = 0; i < n; ++i) EXPECT_EQ(seen["r" + std::to_string(i)], 1) << "r" << i;
  EXPECT_FALSE(fs::exists(out.string() + ".retry.tmp"));

  // Nothing failed any more: a second --retry-failed sends nothing and keeps the file.
  ASSERT_EQ(run_to_end(healthy, in, out, {"--retry-failed"}, dir.path / "log4"), 0) << slurp(dir.path / "log4");
  EXPECT_EQ(healthy.stats()["requests"].get<std::size_t>(), failed_first);
  EXPECT_EQ(read_jsonl(out).size(), static_cast<std::size_t>(n));

  // The output deleted: every line runs again, --retry-failed or not (no error about the file).
  fs::remove(out);
  ASSERT_EQ(run_to_end(healthy, in, out, {"--retry-failed"}, dir.path / "log5"), 0) << slurp(dir.path / "log5");
  EXPECT_EQ(healthy.stats()["requests"].get<std::size_t>(), failed_first + n);
  EXPECT_EQ(read_jsonl(out).size(), static_cast<std::size_t>(n));
}

// ---- an API that never answers ----------------------------------------------------------------

// A port nothing listens on (bound, read, closed): connecting to it is refused.
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ADD_FAILURE() << "cannot bind a loopback socket";
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// A wrong base URL: the run stops with exit 7 once connecting has failed for
// --unreachable-after, records nothing (no line is failed, although some used up their
// attempts), and the same command against a live server then sends every line once.
TEST(RunControl, UnreachableApiStopsWithExit7AndRecordsNothing) {
  TempDir dir("ctl");
  const int n = 12;
  const fs::path in = write_chat_input(dir.path / "in.jsonl", "u", n);
  const fs::path out = dir.path / "out.jsonl";
  const std::string dead = "http://127.0.0.1:" + std::to_string(closed_port()) + "/v1";
  {
    RunProcess p({in.string(), "-o", out.string(), "--base-url", dead, "--unreachable-after", "1s", "--max-attempts", "2"},
                 "sk-test-floodgate", dir.path / "log1");
    ASSERT_EQ(p.wait(std::chrono::seconds(60)), 7) << slurp(dir.path / "log1");
  }
  const std::string log = slurp(dir.path / "log1");
  EXPECT_NE(log.find("cannot reach " + dead), std::string::npos) << log;
  EXPECT_NE(log.find("not done      12"), std::string::npos) << log;
  EXPECT_EQ(log.find("sk-test-floodgate"), std::string::npos);  // the cause, never the key
  EXPECT_TRUE(read_jsonl(out).empty()) << slurp(out);

  SimProcess sim;
  ASSERT_EQ(run_to_end(sim, in, out, {}, dir.path / "log2"), 0) << slurp(dir.path / "log2");
  EXPECT_EQ(sim.stats()["requests"].get<int>(), n);
  const auto lines = read_jsonl(out);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(n));
  std::map<std::string, int> seen;
  for (const auto& l : lines) {
    ++seen[l["custom_id"].get<std::string>()];
    EXPECT_TRUE(l["error"].is_null()) << l.dump();
  }
  for (int i = 0; i < n; ++i) EXPECT_EQ(seen["u" + std::to_string(i)], 1) << "u" << i;
}

// With --ordered, one sendable line followed by more unsendable ones than the look-ahead
// holds: the parked line's hole stops the reading, which must not stop the verdict.
TEST(RunControl, UnreachableVerdictComesWhenOrderedReadingIsBlocked) {
  TempDir dir("ctl");
  const fs::path in = dir.path / "in.jsonl";
  {
    std::ofstream f(in);
    f << chat_request("v0", 0, "gpt-4o-mini").dump() << "\n";
    // Lines that are JSON but no request (no body): each an invalid_input line at once. (A
    // file of lines that are not JSON at all is refused at start as not JSONL.)
    for (int i = 0; i < 1100; ++i) f << R"({"custom_id":"bad)" << i << R"("})" << "\n";
  }
  const fs::path out = dir.path / "out.jsonl";
  const std::string dead = "http://127.0.0.1:" + std::to_string(closed_port()) + "/v1";
  RunProcess p({in.string(), "-o", out.string(), "--base-url", dead, "--ordered", "--unreachable-after", "1s", "--quiet"},
               "sk-test-floodgate", dir.path / "log");
  ASSERT_EQ(p.wait(std::chrono::seconds(60)), 7) << slurp(dir.path / "log");
  for (const auto& l : read_jsonl(out)) EXPECT_NE(l["custom_id"], "v0") << "the parked line is not recorded";
}

// A server that accepts connections but never answers: attempts time out, which is no
// answer either; the stop names --timeout (the server took the requests), not "cannot reach".
TEST(RunControl, UnreachableCountsAttemptsThatTimeOut) {
  TempDir dir("ctl");
  SimProcess stalled({"--fault-rate", "1", "--faults", "stall", "--stall-seconds", "30s"});
  const fs::path in = write_chat_input(dir.path / "in.jsonl", "t", 10);
  const fs::path out = dir.path / "out.jsonl";
  ASSERT_EQ(run_to_end(stalled, in, out, {"--timeout", "200ms", "--unreachable-after", "1s"}, dir.path / "log"), 7) << slurp(dir.path / "log");
  EXPECT_TRUE(read_jsonl(out).empty()) << slurp(out);
  EXPECT_NE(slurp(dir.path / "log").find("raise --timeout"), std::string::npos) << slurp(dir.path / "log");
}

TEST(RunControl, LimitsFilePacesEachModelUnderItsOwnLimit) {
  TempDir dir("ctl");
  const fs::path sim_cfg = dir.path / "sim.json";
  std::ofstream(sim_cfg) << R"({"models":{"gpt-4o-mini":{"rpm":6000},"gpt-4.1-nano":{"rpm":1200}}})";
  SimProcess sim({"--config", sim_cfg.string()});
  const fs::path limits = dir.path / "limits.json";
  std::ofstream(limits) << R"({"models":{"gpt-4o-mini":{"rpm":6000},"gpt-4.1-nano":{"rpm":1200}}})";
  const fs::path in = dir.path / "in.jsonl";
  const int mini = 300;
  const int nano = 60;
  {
    std::ofstream f(in);
    for (int i = 0; i < mini; ++i) {
      f << chat_request("m" + std::to_string(i), i, "gpt-4o-mini").dump() << "\n";
      if (i % 5 == 0) f << chat_request("n" + std::to_string(i / 5), i, "gpt-4.1-nano").dump() << "\n";
    }
  }
  const fs::path out = dir.path / "out.jsonl";
  // Even pacing (--burst) shows each model's own pace; the default whole-window pacing
  // would send both quotas at once (tests/integration/charge_pacing_test.cpp).
  ASSERT_EQ(run_to_end(sim, in, out, {"--limits", limits.string(), "--burst", "1s"}, dir.path / "log"), 0) << slurp(dir.path / "log");
  EXPECT_EQ(read_jsonl(out).size(), static_cast<std::size_t>(mini + nano));

  std::map<std::string, std::vector<std::int64_t>> ts;
  for (const auto& e : sim.ledger()) {
    if (e["status"] != 200) continue;
    ts[e["model"].get<std::string>()].push_back(ledger_ms(e["ts"].get<std::string>()));
  }
  for (auto& [model, v] : ts) std::sort(v.begin(), v.end());
  ASSERT_EQ(ts["gpt-4o-mini"].size(), static_cast<std::size_t>(mini));
  ASSERT_EQ(ts["gpt-4.1-nano"].size(), static_cast<std::size_t>(nano));
  // Each model at its own pace: a 1 s burst plus 1 s of pace is 2 x limit/60 in any second,
  // and n requests span at least (n - burst) / rate. The sim stamps a request when it
  // answers, so a loaded machine (CI runs tests side by side on 2 cores) bunches stamps
  // up: 30% slack on both bounds, still far from unpaced (300 requests in ~50 ms).
  const auto& m = ts["gpt-4o-mini"];
  const auto& nn = ts["gpt-4.1-nano"];
  EXPECT_LE(max_in_window(nn, 1000), 52u);
  EXPECT_GE(nn.back() - nn.front(), 1400) << "gpt-4.1-nano: 60 requests at 20/s (burst 20) take about 2 s";
  EXPECT_LE(max_in_window(m, 1000), 260u);
  EXPECT_GE(m.back() - m.front(), 1400) << "gpt-4o-mini: 300 requests at 100/s (burst 100) take about 2 s";
  // Not held to the slower model's pace: some second holds more than nano's ceiling.
  EXPECT_GT(max_in_window(m, 1000), 60u);
  const json stats = sim.stats();
  EXPECT_EQ(stats["by_status"].value("429", 0), 0) << stats.dump();
}

}  // namespace
