// `floodgate run` against `floodgate sim`: pacing at the limit, learned limits, faults,
// crash and resume, insufficient_quota, bad input lines, SIGINT. Jobs are short (high
// per-minute limits, a few hundred requests); the sim's stats and ledger are the judge.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
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
using floodgate::test::read_jsonl;
using floodgate::test::run_args;
using floodgate::test::run_to_end;
using floodgate::test::RunProcess;
using floodgate::test::slurp;
using floodgate::test::TempDir;
using floodgate::test::SimProcess;
using Clock = std::chrono::steady_clock;

// Writes `n` chat requests (distinct bodies) and returns the path.
fs::path write_input(const fs::path& dir, int n, int max_tokens = 16, const std::string& name = "in.jsonl") {
  const fs::path p = dir / name;
  std::ofstream f(p);
  for (int i = 0; i < n; ++i) {
    nlohmann::json line = {{"custom_id", "q" + std::to_string(i)},
                           {"method", "POST"},
                           {"url", "/v1/chat/completions"},
                           {"body",
                            {{"model", "gpt-4o-mini"},
                             {"messages", {{{"role", "user"}, {"content", "Write a short line about item " + std::to_string(i)}}}},
                             {"max_tokens", max_tokens}}}};
    f << line.dump() << "\n";
  }
  return p;
}

// Every q0..q(n-1) exactly once, and nothing else.
void expect_each_id_once(const std::vector<nlohmann::json>& lines, int n, bool all_ok) {
  std::map<std::string, int> seen;
  for (const auto& l : lines) {
    ASSERT_TRUE(l["custom_id"].is_string()) << l.dump();
    ++seen[l["custom_id"].get<std::string>()];
    if (all_ok) {
      EXPECT_TRUE(l["error"].is_null()) << l.dump();
    }
  }
  EXPECT_EQ(lines.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) EXPECT_EQ(seen["q" + std::to_string(i)], 1) << "q" << i;
}

std::int64_t count_429(const nlohmann::json& stats) {
  const auto& by = stats["by_status"];
  return by.contains("429") ? by["429"].get<std::int64_t>() : 0;
}

TEST(RunIntegration, RpmBoundJobStaysUnderTheLimitWithNo429s) {
  TempDir dir("run");
  SimProcess sim({"--rpm", "6000"});
  const auto in = write_input(dir.path, 300);
  const auto out = dir.path / "out.jsonl";
  const auto t0 = Clock::now();
  // --burst asks for even pacing (the default uses the whole window: tests/integration/charge_pacing_test.cpp).
  ASSERT_EQ(run_to_end(sim, in, out, {"--rpm", "6000", "--burst", "1s"}, dir.path / "log"), 0) << slurp(dir.path / "log");
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  expect_each_id_once(read_jsonl(out), 300, true);
  const auto stats = sim.stats();
  EXPECT_EQ(count_429(stats), 0) << stats.dump();
  EXPECT_LE(stats["max_requests_60s"].get<std::int64_t>(), 6000);
  // Paced, not a burst: 300 requests at 100/s with a 1 s burst take at least ~2 s.
  EXPECT_GE(seconds, 1.8);
}

TEST(RunIntegration, TpmBoundJobStaysUnderTheLimitWithNo429s) {
  TempDir dir("run");
  SimProcess sim({"--tpm", "60000"});
  const auto in = write_input(dir.path, 120, 16);
  const auto out = dir.path / "out.jsonl";
  ASSERT_EQ(run_to_end(sim, in, out, {"--tpm", "60000"}, dir.path / "log"), 0) << slurp(dir.path / "log");
  expect_each_id_once(read_jsonl(out), 120, true);
  const auto stats = sim.stats();
  EXPECT_EQ(count_429(stats), 0) << stats.dump();
  EXPECT_LE(stats["max_tokens_60s"].get<std::int64_t>(), 60000);
  EXPECT_GT(stats["tokens_charged"].get<std::int64_t>(), 0);
}

TEST(RunIntegration, LearnedLimitsKeep429sUnderOnePercent) {
  TempDir dir("run");
  SimProcess sim({"--rpm", "6000", "--tpm", "10000000"});
  const auto in = write_input(dir.path, 300);
  const auto out = dir.path / "out.jsonl";
  ASSERT_EQ(run_to_end(sim, in, out, {"--limits", "auto"}, dir.path / "log"), 0) << slurp(dir.path / "log");
  expect_each_id_once(read_jsonl(out), 300, true);
  const auto stats = sim.stats();
  EXPECT_LT(static_cast<double>(count_429(stats)), 0.01 * 300) << stats.dump();
  EXPECT_LE(stats["max_requests_60s"].get<std::int64_t>(), 6000);
}

TEST(RunIntegration, InjectedFaultsEveryIdOnceAndNoResendAfterSuccess) {
  TempDir dir("run");
  SimProcess sim({"--rpm", "60000", "--fault-rate", "0.05", "--faults", "500,502,503,reset,truncated", "--seed", "7"});
  const auto in = write_input(dir.path, 300);
  const auto out = dir.path / "out.jsonl";
  ASSERT_EQ(run_to_end(sim, in, out, {"--rpm", "60000", "--max-attempts", "10"}, dir.path / "log"), 0) << slurp(dir.path / "log");
  expect_each_id_once(read_jsonl(out), 300, true);
  // The ledger, in order: once a body got a clean 200, it is never sent again.
  std::set<std::string> succeeded;
  int faults = 0;
  for (const auto& e : sim.ledger()) {
    if (e.value("path", "") != "/v1/chat/completions") continue;
    const std::string body = e["body_sha256"].get<std::string>();
    EXPECT_EQ(succeeded.count(body), 0u) << "re-sent after success: " << e.dump();
    if (!e["fault"].is_null()) ++faults;
    if (e["status"] == 200 && e["fault"].is_null()) succeeded.insert(body);
  }
  EXPECT_GT(faults, 0);  // the test did inject faults
  EXPECT_EQ(succeeded.size(), 300u);
}

TEST(RunIntegration, KillNineThenResumeIsExactlyOnce) {
  TempDir dir("run");
  SimProcess sim({"--rpm", "60000", "--latency", "fixed:40ms"});
  const int n = 400;
  const int in_flight = 8;
  const auto in = write_input(dir.path, n);
  const auto out = dir.path / "out.jsonl";
  {
    RunProcess p(run_args(sim, in, out, {"--max-in-flight", std::to_string(in_flight)}), sim.api_key(), dir.path / "log1");
    // Wait until part of the job is done, then kill -9.
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline && complete_lines(out) < 60) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    p.signal(SIGKILL);
    EXPECT_EQ(p.wait(std::chrono::seconds(10)), 128 + SIGKILL);
  }
  // Simulate a torn last line as a crash mid-write would leave it.
  { std::ofstream(out, std::ios::app) << R"({"id":"batch_req_torn","custom_id":"q)"; }
  ASSERT_EQ(run_to_end(sim, in, out, {"--max-in-flight", std::to_string(in_flight)}, dir.path / "log2"), 0) << slurp(dir.path / "log2");
  expect_each_id_once(read_jsonl(out), n, true);
  std::map<std::string, int> sent;
  for (const auto& e : sim.ledger()) ++sent[e["body_sha256"].get<std::string>()];
  int resent = 0;
  for (const auto& [body, count] : sent) resent += count - 1;
  EXPECT_LE(resent, in_flight) << "only requests in flight at the crash may be sent twice";
}

TEST(RunIntegration, InsufficientQuotaStopsWithExit3AndResumes) {
  TempDir dir("run");
  const int n = 200;
  const auto in = write_input(dir.path, n);
  const auto out = dir.path / "out.jsonl";
  {
    SimProcess sim({"--rpm", "60000", "--quota-tokens", "2000"});
    ASSERT_EQ(run_to_end(sim, in, out, {"--max-in-flight", "4"}, dir.path / "log1"), 3) << slurp(dir.path / "log1");
    const auto partial = read_jsonl(out);
    EXPECT_LT(partial.size(), static_cast<std::size_t>(n));
    for (const auto& l : partial) EXPECT_TRUE(l["error"].is_null()) << "quota refusals are not written: " << l.dump();
    const auto stats = sim.stats();
    EXPECT_GT(stats["insufficient_quota"].get<std::int64_t>(), 0);
    // Stopped at once: only what was in flight met the refusal.
    EXPECT_LE(stats["insufficient_quota"].get<std::int64_t>(), 4);
  }
  SimProcess sim2({"--rpm", "60000"});  // the quota was raised
  ASSERT_EQ(run_to_end(sim2, in, out, {"--max-in-flight", "4"}, dir.path / "log2"), 0) << slurp(dir.path / "log2");
  expect_each_id_once(read_jsonl(out), n, true);
}

TEST(RunIntegration, BadInputLinesBecomeErrorLinesAndTheJobGoesOn) {
  TempDir dir("run");
  SimProcess sim({"--rpm", "60000"});
  const fs::path in = dir.path / "in.jsonl";
  {
    std::ofstream f(in);
    f << R"({"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5}})" << "\n";
    f << "this is not json\n";
    f << R"({"custom_id":"b","url":"/v1/chat/completions"})" << "\n";
    f << R"({"custom_id":"c","url":"/v1/nope","body":{"model":"gpt-4o-mini"}})" << "\n";
    f << R"({"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[],"max_tokens":5}})" << "\n";
    f << "\n";
    f << R"({"custom_id":"d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"yo"}],"max_tokens":5}})" << "\n";
  }
  const auto out = dir.path / "out.jsonl";
  ASSERT_EQ(run_to_end(sim, in, out, {}, dir.path / "log"), 1) << slurp(dir.path / "log");
  const auto lines = read_jsonl(out);
  ASSERT_EQ(lines.size(), 6u);
  std::map<std::uint64_t, nlohmann::json> errors_by_line;
  int ok = 0;
  for (const auto& l : lines) {
    if (l["error"].is_null()) {
      ++ok;
    } else {
      errors_by_line[l["error"]["line"].get<std::uint64_t>()] = l;
    }
  }
  EXPECT_EQ(ok, 2);
  ASSERT_EQ(errors_by_line.size(), 4u);
  EXPECT_NE(errors_by_line[2]["error"]["message"].get<std::string>().find("not JSON"), std::string::npos);
  EXPECT_NE(errors_by_line[3]["error"]["message"].get<std::string>().find("no body"), std::string::npos);
  EXPECT_NE(errors_by_line[4]["error"]["message"].get<std::string>().find("unknown endpoint"), std::string::npos);
  EXPECT_NE(errors_by_line[5]["error"]["message"].get<std::string>().find("duplicate custom_id"), std::string::npos);
  for (const auto& [line, l] : errors_by_line) EXPECT_EQ(l["error"]["code"], "invalid_input");
  // A re-run finds everything done and writes nothing twice; the output still holds its four
  // error lines, so it exits 1 again.
  ASSERT_EQ(run_to_end(sim, in, out, {}, dir.path / "log2"), 1) << slurp(dir.path / "log2");
  EXPECT_EQ(read_jsonl(out).size(), 6u);
}

TEST(RunIntegration, SigintDrainsInFlightThenResumes) {
  TempDir dir("run");
  SimProcess sim({"--rpm", "60000", "--latency", "fixed:300ms"});
  const int n = 160;
  const auto in = write_input(dir.path, n);
  const auto out = dir.path / "out.jsonl";
  {
    RunProcess p(run_args(sim, in, out, {"--max-in-flight", "16"}), sim.api_key(), dir.path / "log1");
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline && complete_lines(out) < 20) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    p.signal(SIGINT);
    EXPECT_EQ(p.wait(std::chrono::seconds(20)), 5) << slurp(dir.path / "log1");
  }
  // Drained: every request the sim answered is in the output.
  const auto partial = read_jsonl(out);
  EXPECT_LT(partial.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(static_cast<std::size_t>(sim.ledger().size()), partial.size());
  ASSERT_EQ(run_to_end(sim, in, out, {"--max-in-flight", "16"}, dir.path / "log2"), 0) << slurp(dir.path / "log2");
  expect_each_id_once(read_jsonl(out), n, true);
  EXPECT_EQ(sim.ledger().size(), static_cast<std::size_t>(n));  // nothing sent twice
}

TEST(RunIntegration, ApiKeyNeverAppearsInOutputsOrLogs) {
  TempDir dir("run");
  SimProcess sim({"--rpm", "60000"}, SimProcess::Options{.ledger = true, .api_key = "sk-very-secret-key-123"});
  const auto in = write_input(dir.path, 5);
  const auto out = dir.path / "out.jsonl";
  // --trace-http prints every header; the key must be redacted there too.
  std::vector<std::string> args = {in.string(), "-o", out.string(), "--base-url", sim.base_url(), "--trace-http"};
  RunProcess p(args, sim.api_key(), dir.path / "log");
  ASSERT_EQ(p.wait(std::chrono::seconds(30)), 0) << slurp(dir.path / "log");
  EXPECT_EQ(slurp(dir.path / "log").find("sk-very-secret-key-123"), std::string::npos);
  EXPECT_NE(slurp(dir.path / "log").find("[redacted]"), std::string::npos);
  EXPECT_EQ(slurp(out).find("sk-very-secret-key-123"), std::string::npos);
  // A failing run (connection refused) names the cause, not the key. (--unreachable-after 0:
  // record the failures instead of stopping with exit 7 and nothing recorded.)
  const auto out2 = dir.path / "out2.jsonl";
  std::vector<std::string> bad = {in.string(), "-o", out2.string(), "--base-url", "http://127.0.0.1:9/v1", "--max-attempts", "1",
                                  "--unreachable-after", "0"};
  RunProcess p2(bad, sim.api_key(), dir.path / "log2");
  EXPECT_EQ(p2.wait(std::chrono::seconds(30)), 1);
  EXPECT_EQ(slurp(dir.path / "log2").find("sk-very-secret-key-123"), std::string::npos);
  const std::string out2_text = slurp(out2);
  EXPECT_EQ(out2_text.find("sk-very-secret-key-123"), std::string::npos);
  EXPECT_NE(out2_text.find("connection"), std::string::npos);
}

TEST(RunIntegration, OrderedKeepsInputOrder) {
  TempDir dir("run");
  SimProcess sim({"--rpm", "60000", "--latency", "random:1ms-40ms"});
  const auto in = write_input(dir.path, 200);
  const auto out = dir.path / "out.jsonl";
  ASSERT_EQ(run_to_end(sim, in, out, {"--ordered", "--max-in-flight", "32"}, dir.path / "log"), 0) << slurp(dir.path / "log");
  const auto lines = read_jsonl(out);
  ASSERT_EQ(lines.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(lines[static_cast<std::size_t>(i)]["custom_id"], "q" + std::to_string(i));
}

// A 0.5 s mono 16-bit 8 kHz WAV of silence.
void write_wav(const fs::path& p) {
  const std::uint32_t rate = 8000;
  const std::uint32_t samples = rate / 2;
  const std::uint32_t data_bytes = samples * 2;
  std::ofstream f(p, std::ios::binary);
  auto u32 = [&](std::uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](std::uint16_t v) { f.write(reinterpret_cast<const char*>(&v), 2); };
  f << "RIFF";
  u32(36 + data_bytes);
  f << "WAVEfmt ";
  u32(16);
  u16(1);
  u16(1);
  u32(rate);
  u32(rate * 2);
  u16(2);
  u16(16);
  f << "data";
  u32(data_bytes);
  const std::string zeros(data_bytes, '\0');
  f.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
}

TEST(RunIntegration, TranscriptionLinesAreStreamedAsMultipart) {
  TempDir dir("run");
  SimProcess sim({"--rpm", "60000"});
  const fs::path wav = dir.path / "clip.wav";
  write_wav(wav);
  const fs::path in = dir.path / "in.jsonl";
  {
    std::ofstream f(in);
    for (int i = 0; i < 3; ++i) {
      nlohmann::json line = {{"custom_id", "a" + std::to_string(i)},
                             {"method", "POST"},
                             {"url", "/v1/audio/transcriptions"},
                             {"body", {{"model", "whisper-1"}, {"file", wav.string()}, {"response_format", "json"}}}};
      f << line.dump() << "\n";
    }
    nlohmann::json missing = {{"custom_id", "gone"},
                              {"url", "/v1/audio/transcriptions"},
                              {"body", {{"model", "whisper-1"}, {"file", (dir.path / "nope.wav").string()}}}};
    f << missing.dump() << "\n";
  }
  const auto out = dir.path / "out.jsonl";
  ASSERT_EQ(run_to_end(sim, in, out, {}, dir.path / "log"), 1) << slurp(dir.path / "log");
  int ok = 0;
  for (const auto& l : read_jsonl(out)) {
    if (l["custom_id"] == "gone") {
      EXPECT_EQ(l["error"]["code"], "invalid_input");
    } else {
      EXPECT_TRUE(l["error"].is_null()) << l.dump();
      EXPECT_TRUE(l["response"]["body"].contains("text")) << l.dump();
      ++ok;
    }
  }
  EXPECT_EQ(ok, 3);
  std::uint64_t uploaded = 0;
  for (const auto& e : sim.ledger()) uploaded += e.value("upload_bytes", std::uint64_t{0});
  EXPECT_GE(uploaded, 3 * fs::file_size(wav));
}

TEST(RunIntegration, DailyLimitBeyondTheHorizonPausesWithExit6AndStaysResumable) {
  TempDir dir("run");
  SimProcess sim({"--rpd", "20"});
  const auto in = write_input(dir.path, 40);
  const auto out = dir.path / "out.jsonl";
  ASSERT_EQ(run_to_end(sim, in, out, {"--max-in-flight", "2"}, dir.path / "log"), 6) << slurp(dir.path / "log");
  const auto lines = read_jsonl(out);
  EXPECT_EQ(lines.size(), 20u);
  for (const auto& l : lines) EXPECT_TRUE(l["error"].is_null()) << l.dump();
  const std::string log = slurp(dir.path / "log");
  EXPECT_NE(log.find("may resume after"), std::string::npos) << log;
  // Not slept on: only the requests in flight met the refusal.
  EXPECT_LE(sim.stats()["by_status"].value("429", 0), 2);
}

TEST(RunIntegration, RequestThatCanNeverFitFailsAtOnce) {
  TempDir dir("run");
  SimProcess sim;
  const auto in = write_input(dir.path, 5, 500);
  const auto out = dir.path / "out.jsonl";
  const auto t0 = Clock::now();
  ASSERT_EQ(run_to_end(sim, in, out, {"--tpm", "100"}, dir.path / "log"), 1) << slurp(dir.path / "log");
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(20));
  const auto lines = read_jsonl(out);
  ASSERT_EQ(lines.size(), 5u);
  for (const auto& l : lines) EXPECT_EQ(l["error"]["code"], "cannot_fit") << l.dump();
  EXPECT_EQ(sim.stats()["requests"].get<int>(), 0);
}

TEST(RunIntegration, SecondSigintStopsAtOnceAndResumeFinishes) {
  TempDir dir("run");
  SimProcess sim({"--rpm", "60000", "--latency", "fixed:2s"});
  const int n = 40;
  const auto in = write_input(dir.path, n);
  const auto out = dir.path / "out.jsonl";
  {
    RunProcess p(run_args(sim, in, out, {"--max-in-flight", "8"}), sim.api_key(), dir.path / "log1");
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline && sim.stats()["in_flight"].get<int>() < 8) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    p.signal(SIGINT);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto t0 = Clock::now();
    p.signal(SIGINT);
    EXPECT_EQ(p.wait(std::chrono::seconds(20)), 5) << slurp(dir.path / "log1");
    EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(1500));  // did not wait for the 2 s answers
  }
  // Whatever was written is whole lines (read_output parses every line); the aborted
  // requests were not written.
  EXPECT_LT(read_jsonl(out).size(), static_cast<std::size_t>(n));
  ASSERT_EQ(run_to_end(sim, in, out, {"--max-in-flight", "40"}, dir.path / "log2"), 0) << slurp(dir.path / "log2");
  expect_each_id_once(read_jsonl(out), n, true);
}

}  // namespace
