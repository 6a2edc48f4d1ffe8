// `floodgate run` told the truth about its result, and bad input caught before it costs
// (issue 13): the exit code and summary of a re-run describe the output as it stands;
// token totals count every answered attempt. Each test runs against `floodgate sim`,
// whose stats and ledger are the judge of what was sent.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/files.hpp"
#include "support/run_process.hpp"
#include "support/sim_process.hpp"

namespace {

namespace fs = std::filesystem;
using floodgate::test::read_jsonl;
using floodgate::test::run_to_end;
using floodgate::test::RunProcess;
using floodgate::test::SimProcess;
using floodgate::test::slurp;
using floodgate::test::TempDir;
using floodgate::test::chat_request;
using floodgate::test::write_chat_input;
using nlohmann::json;

// The JSON summary a run printed with --log-format json (the last "event":"summary" line).
json summary_of(const fs::path& log) {
  json found;
  std::ifstream f(log);
  std::string line;
  while (std::getline(f, line)) {
    if (line.find("\"event\":\"summary\"") == std::string::npos) continue;
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.contains("exit_code")) found = j;
  }
  return found;
}

// Runs `floodgate run ARGS` with the sim's key (not quiet, so the summary is printed).
int run_cmd(const SimProcess& sim, const std::vector<std::string>& args, const fs::path& log) {
  RunProcess p(args, sim.api_key(), log);
  return p.wait(std::chrono::seconds(60));
}

// ---- 1. a re-run describes the output as it stands ---------------------------------------------

// Four broken lines out of ten: the first run exits 1. A plain re-run sends nothing, but the
// output still holds four error lines, so it exits 1 again and says so (it used to exit 0
// with "succeeded 0 failed 0"); --retry-failed after fixing them clears them, exit 0.
TEST(RunInputs, ReRunExitsOneWhileTheOutputHoldsErrorLines) {
  TempDir dir("inputs");
  SimProcess sim;
  const fs::path in = dir.path / "in.jsonl";
  auto write_input = [&](bool fixed) {
    std::ofstream f(in, std::ios::trunc);
    for (int i = 0; i < 10; ++i) {
      if ((i == 1 || i == 4 || i == 6 || i == 8) && !fixed) {
        f << R"({"custom_id":"q)" << i << R"(","method":"POST","url":"/v1/nope","body":{"model":"gpt-4o-mini"}})" << "\n";
      } else {
        f << chat_request("q" + std::to_string(i), i).dump() << "\n";
      }
    }
  };
  write_input(false);
  const fs::path out = dir.path / "out.jsonl";
  const std::vector<std::string> args = {in.string(), "-o", out.string(), "--base-url", sim.base_url(), "--log-format", "json"};
  ASSERT_EQ(run_cmd(sim, args, dir.path / "log1"), 1) << slurp(dir.path / "log1");
  EXPECT_EQ(sim.stats()["requests"].get<int>(), 6);

  ASSERT_EQ(run_cmd(sim, args, dir.path / "log2"), 1) << slurp(dir.path / "log2");
  EXPECT_EQ(sim.stats()["requests"].get<int>(), 6) << "a plain re-run sends nothing";
  const json s2 = summary_of(dir.path / "log2");
  ASSERT_FALSE(s2.is_null()) << slurp(dir.path / "log2");
  EXPECT_EQ(s2["exit_code"], 1);
  EXPECT_EQ(s2["skipped_done"], 10);
  EXPECT_EQ(s2["earlier_succeeded"], 6);
  EXPECT_EQ(s2["earlier_failed"], 4);
  EXPECT_EQ(s2["error_lines_in_output"], 4);

  // The text summary counts the earlier lines by outcome and says how to send them again.
  const std::vector<std::string> text_args = {in.string(), "-o", out.string(), "--base-url", sim.base_url()};
  ASSERT_EQ(run_cmd(sim, text_args, dir.path / "log3"), 1) << slurp(dir.path / "log3");
  const std::string log3 = slurp(dir.path / "log3");
  EXPECT_NE(log3.find("6 succeeded, 4 failed"), std::string::npos) << log3;
  EXPECT_NE(log3.find("4 in the output"), std::string::npos) << log3;
  EXPECT_NE(log3.find("--retry-failed"), std::string::npos) << log3;

  // Fixed and sent again: the output holds no error line, exit 0.
  write_input(true);
  std::vector<std::string> retry = args;
  retry.push_back("--retry-failed");
  ASSERT_EQ(run_cmd(sim, retry, dir.path / "log4"), 0) << slurp(dir.path / "log4");
  EXPECT_EQ(sim.stats()["requests"].get<int>(), 10);
  const auto lines = read_jsonl(out);
  ASSERT_EQ(lines.size(), 10u);
  for (const auto& l : lines) EXPECT_TRUE(l["error"].is_null()) << l.dump();
  ASSERT_EQ(run_cmd(sim, args, dir.path / "log5"), 0) << slurp(dir.path / "log5");
}

// ---- 2. tokens of re-asked attempts ------------------------------------------------------------

// --retry-invalid re-asks answers that violate the schema; each re-asked answer was billed.
// The summary's tokens are the simulator's (it adds up the usage of every answer it gave),
// and its attempts the requests the simulator received.
TEST(RunInputs, TokenTotalsCountEveryAnsweredAttempt) {
  TempDir dir("inputs");
  SimProcess sim({"--invalid-content-rate", "0.4", "--seed", "3"});
  const fs::path table = dir.path / "in.csv";
  {
    std::ofstream f(table);
    f << "id,text\n";
    for (int i = 0; i < 40; ++i) f << "r" << i << ",review number " << i << "\n";
  }
  std::ofstream(dir.path / "prompt.txt") << "Classify: {{text}}";
  std::ofstream(dir.path / "schema.json")
      << R"({"type":"object","properties":{"label":{"type":"string","enum":["a","b"]}},"required":["label"],"additionalProperties":false})";
  const std::vector<std::string> args = {table.string(), "-o", (dir.path / "out.jsonl").string(), "--base-url", sim.base_url(),
                                         "--template", (dir.path / "prompt.txt").string(), "--model", "gpt-4o-mini",
                                         "--schema", (dir.path / "schema.json").string(), "--retry-invalid", "3",
                                         "--log-format", "json"};
  const int rc = run_cmd(sim, args, dir.path / "log");
  ASSERT_TRUE(rc == 0 || rc == 1) << slurp(dir.path / "log");
  const json s = summary_of(dir.path / "log");
  ASSERT_FALSE(s.is_null()) << slurp(dir.path / "log");
  const json stats = sim.stats();
  ASSERT_GT(stats["requests"].get<int>(), 40) << "some answers must have been re-asked";
  EXPECT_EQ(s["attempts"], stats["requests"]);
  EXPECT_EQ(s["tokens"]["total"], stats["spent_tokens"]);
  EXPECT_EQ(s["tokens"]["prompt"].get<std::uint64_t>() + s["tokens"]["completion"].get<std::uint64_t>(),
            stats["spent_tokens"].get<std::uint64_t>());
}

// ---- 3. hopeless jobs stop at once -------------------------------------------------------------

std::size_t output_lines(const fs::path& out) { return fs::exists(out) ? read_jsonl(out).size() : 0; }

// A wrong API key: the first answers are all 401. The run stops with exit 9 after a few
// requests (the ledger), says to check the key, and records nothing: the same command with
// the right key then sends every line once. It used to send and write off all 50 lines.
TEST(RunInputs, WrongApiKeyStopsAtOnceWithExit9AndRecordsNothing) {
  TempDir dir("inputs");
  SimProcess sim;
  const fs::path in = write_chat_input(dir.path / "in.jsonl", "h", 50);
  const fs::path out = dir.path / "out.jsonl";
  const std::vector<std::string> args = {in.string(), "-o", out.string(), "--base-url", sim.base_url(), "--max-in-flight", "2"};
  {
    RunProcess p(args, "sk-wrong-key", dir.path / "log1");
    ASSERT_EQ(p.wait(std::chrono::seconds(60)), 9) << slurp(dir.path / "log1");
  }
  const std::string log1 = slurp(dir.path / "log1");
  EXPECT_NE(log1.find("OPENAI_API_KEY"), std::string::npos) << log1;
  EXPECT_EQ(log1.find("sk-wrong-key"), std::string::npos) << "the key is never printed";
  EXPECT_LE(sim.stats()["requests"].get<int>(), 8) << "stopped after the first answers";
  EXPECT_EQ(output_lines(out), 0u);

  ASSERT_EQ(run_cmd(sim, args, dir.path / "log2"), 0) << slurp(dir.path / "log2");
  const auto lines = read_jsonl(out);
  ASSERT_EQ(lines.size(), 50u);
  for (const auto& l : lines) EXPECT_TRUE(l["error"].is_null()) << l.dump();
}

// A base URL with a wrong path (every call 404 "Invalid URL") and a model that does not
// exist (404 model_not_found): exit 9, a message that says what to fix, nothing recorded.
TEST(RunInputs, WrongUrlPathOrUnknownModelStopsWithExit9) {
  TempDir dir("inputs");
  SimProcess sim;
  {
    const fs::path in = write_chat_input(dir.path / "in.jsonl", "h", 30);
    const fs::path out = dir.path / "url.jsonl";
    const std::vector<std::string> args = {in.string(), "-o", out.string(), "--base-url", sim.root_url() + "/api/v2", "--max-in-flight", "2"};
    ASSERT_EQ(run_cmd(sim, args, dir.path / "log1"), 9) << slurp(dir.path / "log1");
    EXPECT_NE(slurp(dir.path / "log1").find("--base-url"), std::string::npos) << slurp(dir.path / "log1");
    EXPECT_EQ(output_lines(out), 0u);
  }
  const int after_url = sim.stats()["requests"].get<int>();
  EXPECT_LE(after_url, 8) << "stopped after the first answers";
  {
    const fs::path in = write_chat_input(dir.path / "in.jsonl", "h", 30, "gpt-does-not-exist");
    const fs::path out = dir.path / "model.jsonl";
    const std::vector<std::string> args = {in.string(), "-o", out.string(), "--base-url", sim.base_url(), "--max-in-flight", "1"};
    ASSERT_EQ(run_cmd(sim, args, dir.path / "log2"), 9) << slurp(dir.path / "log2");
    const std::string log2 = slurp(dir.path / "log2");
    EXPECT_NE(log2.find("model \"gpt-does-not-exist\" does not exist"), std::string::npos) << log2;
    EXPECT_EQ(output_lines(out), 0u);
    EXPECT_EQ(sim.stats()["requests"].get<int>() - after_url, 5) << "one at a time: stopped after the fifth refusal";
  }
}

// A per-line 400 (a bad body) stays a per-line error; and refusals followed by a success
// were about those lines only: they are written as errors and the job goes on.
TEST(RunInputs, PerLineErrorsAreNotHopeless) {
  TempDir dir("inputs");
  SimProcess sim;
  const fs::path in = dir.path / "in.jsonl";
  {
    std::ofstream f(in);
    for (int i = 0; i < 8; ++i) {
      f << json{{"custom_id", "b" + std::to_string(i)}, {"url", "/v1/chat/completions"}, {"body", {{"model", "gpt-4o-mini"}}}}.dump() << "\n";
    }
  }
  const fs::path out = dir.path / "out.jsonl";
  ASSERT_EQ(run_to_end(sim, in, out, {}, dir.path / "log1"), 1) << slurp(dir.path / "log1");
  const auto bad = read_jsonl(out);
  ASSERT_EQ(bad.size(), 8u);
  for (const auto& l : bad) EXPECT_EQ(l["response"]["status_code"], 400) << l.dump();

  // Three lines for a model that does not exist, then good ones, one at a time.
  const fs::path in2 = dir.path / "in2.jsonl";
  {
    std::ofstream f(in2);
    for (int i = 0; i < 10; ++i) {
      json l = chat_request("m" + std::to_string(i), i);
      if (i < 3) l["body"]["model"] = "gpt-nope";
      f << l.dump() << "\n";
    }
  }
  const fs::path out2 = dir.path / "out2.jsonl";
  ASSERT_EQ(run_to_end(sim, in2, out2, {"--max-in-flight", "1"}, dir.path / "log2"), 1) << slurp(dir.path / "log2");
  const auto lines = read_jsonl(out2);
  ASSERT_EQ(lines.size(), 10u);
  int not_found = 0;
  for (const auto& l : lines) not_found += l["error"].is_null() ? 0 : (l["error"]["code"] == "not_found" ? 1 : 100);
  EXPECT_EQ(not_found, 3);
}

// ---- 4. configuration errors before anything is sent --------------------------------------------

TEST(RunInputs, ConfigurationErrorsExitTwoBeforeAnythingIsSent) {
  TempDir dir("inputs");
  SimProcess sim;
  const fs::path in = write_chat_input(dir.path / "in.jsonl", "h", 5);
  auto expect_usage = [&](const std::vector<std::string>& args, const std::string& want, const std::string& tag) {
    const fs::path log = dir.path / ("log_" + tag);
    EXPECT_EQ(run_cmd(sim, args, log), 2) << tag << ": " << slurp(log);
    EXPECT_NE(slurp(log).find(want), std::string::npos) << tag << ": " << slurp(log);
    EXPECT_EQ(slurp(log).find("unable to open database file"), std::string::npos) << slurp(log);
  };
  // A base URL with an unknown scheme (it was retried as a connection error on every line).
  const std::string htp = "htp://127.0.0.1:" + std::to_string(sim.port()) + "/v1";
  expect_usage({in.string(), "-o", dir.file("a.jsonl"), "--base-url", htp}, "unknown scheme \"htp\"", "scheme");
  // A missing output folder, and a "folder" that is a file: named, with the reason.
  expect_usage({in.string(), "-o", dir.file("no/such/out.jsonl"), "--base-url", sim.base_url()},
               "the folder \"" + dir.file("no/such") + "\" does not exist", "missing");
  std::ofstream(dir.path / "plain") << "x";
  expect_usage({in.string(), "-o", dir.file("plain/out.jsonl"), "--base-url", sim.base_url()}, "is not a folder", "notdir");
  // Bare request bodies without --endpoint: one error up front, with the endpoint they imply.
  const fs::path bare = dir.path / "bare.jsonl";
  {
    std::ofstream f(bare);
    for (int i = 0; i < 5; ++i) f << R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]})" << "\n";
  }
  expect_usage({bare.string(), "-o", dir.file("b.jsonl"), "--base-url", sim.base_url()}, "--endpoint /v1/chat/completions", "bare");
  EXPECT_FALSE(fs::exists(dir.path / "b.jsonl"));
  // An empty input (blank lines only) says so.
  std::ofstream(dir.path / "empty.jsonl") << "\n  \n";
  expect_usage({dir.file("empty.jsonl"), "-o", dir.file("c.jsonl"), "--base-url", sim.base_url()}, "is empty", "empty");
  EXPECT_EQ(sim.stats()["requests"].get<int>(), 0);
}

// ---- 5. bodies that are not JSON never reach the API ---------------------------------------------

TEST(RunInputs, LinesWhoseBodyIsNotJsonAreInvalidInputAndNotSent) {
  TempDir dir("inputs");
  SimProcess sim;
  const fs::path in = dir.path / "in.jsonl";
  {
    std::ofstream f(in);
    f << chat_request("g0", 0).dump() << "\n";
    f << R"({"custom_id":"x1","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],}})" << "\n";
    f << chat_request("g1", 1).dump() << "\n";
    f << R"({"custom_id":"x2","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini",...}})" << "\n";
    f << chat_request("g2", 2).dump() << "}\n";  // trailing garbage
    f << chat_request("g3", 3).dump() << "\n";
  }
  const fs::path out = dir.path / "out.jsonl";
  ASSERT_EQ(run_to_end(sim, in, out, {}, dir.path / "log"), 1) << slurp(dir.path / "log");
  EXPECT_EQ(sim.ledger().size(), 3u) << "only the valid lines are sent";
  int invalid = 0;
  for (const auto& l : read_jsonl(out)) {
    if (l["error"].is_null()) continue;
    ++invalid;
    EXPECT_EQ(l["error"]["code"], "invalid_input") << l.dump();
    EXPECT_TRUE(l["response"].is_null()) << l.dump();
    EXPECT_NE(l["error"]["message"].get<std::string>().find("column"), std::string::npos) << l.dump();
  }
  EXPECT_EQ(invalid, 3);
}

// ---- 6. a file that is not JSONL stops at once ------------------------------------------------------

TEST(RunInputs, BinaryOrNonJsonlInputStopsWithExit2) {
  TempDir dir("inputs");
  SimProcess sim;
  const fs::path bin = dir.path / "photo.png";
  {
    std::ofstream f(bin, std::ios::binary);
    std::uint32_t x = 12345;
    f << "\x89PNG\r\n\x1a\n";
    for (int i = 0; i < 300000; ++i) {
      x = x * 1664525u + 1013904223u;
      f.put(static_cast<char>(x >> 24));
    }
  }
  EXPECT_EQ(run_cmd(sim, {bin.string(), "-o", dir.file("a.jsonl"), "--base-url", sim.base_url()}, dir.path / "log1"), 2)
      << slurp(dir.path / "log1");
  EXPECT_NE(slurp(dir.path / "log1").find("is not JSONL"), std::string::npos) << slurp(dir.path / "log1");
  EXPECT_EQ(output_lines(dir.path / "a.jsonl"), 0u);
  // A text file whose first line is JSON but most of the following are not.
  const fs::path text = dir.path / "notes.jsonl";
  {
    std::ofstream f(text);
    f << chat_request("t0", 0).dump() << "\n";
    for (int i = 0; i < 40; ++i) f << "note " << i << ": call back tomorrow\n";
  }
  EXPECT_EQ(run_cmd(sim, {text.string(), "-o", dir.file("b.jsonl"), "--base-url", sim.base_url()}, dir.path / "log2"), 2)
      << slurp(dir.path / "log2");
  EXPECT_NE(slurp(dir.path / "log2").find("is not JSONL"), std::string::npos) << slurp(dir.path / "log2");
  EXPECT_EQ(output_lines(dir.path / "b.jsonl"), 0u);
  EXPECT_EQ(sim.stats()["requests"].get<int>(), 0);
}

// ---- 8. fixing a broken line does not lock the user out --------------------------------------------

// Line 6 of ten is broken; after fixing it, --retry-failed resumes and sends exactly that line
// (it was refused: the identity covered the first 64 KiB). A different file, or a changed
// line whose success is recorded, is still refused.
TEST(RunInputs, EditingFailedLinesThenRetryFailedResumesButADifferentFileIsRefused) {
  TempDir dir("inputs");
  SimProcess sim;
  const fs::path in = dir.path / "in.jsonl";
  auto write_input = [&](const std::string& prefix, bool broken) {
    std::ofstream f(in, std::ios::trunc);
    for (int i = 1; i <= 10; ++i) {
      std::string l = chat_request(prefix + std::to_string(i), i).dump();
      if (i == 6 && broken) l.insert(l.size() - 3, ",");  // "...}],}}": not JSON
      f << l << "\n";
    }
  };
  write_input("f", true);
  const fs::path out = dir.path / "out.jsonl";
  ASSERT_EQ(run_to_end(sim, in, out, {}, dir.path / "log1"), 1) << slurp(dir.path / "log1");
  EXPECT_EQ(sim.stats()["requests"].get<int>(), 9);

  write_input("f", false);
  ASSERT_EQ(run_to_end(sim, in, out, {"--retry-failed"}, dir.path / "log2"), 0) << slurp(dir.path / "log2");
  EXPECT_EQ(sim.stats()["requests"].get<int>(), 10) << "exactly the fixed line was sent";
  const auto lines = read_jsonl(out);
  ASSERT_EQ(lines.size(), 10u);
  for (const auto& l : lines) EXPECT_TRUE(l["error"].is_null()) << l.dump();
  // The rule follows the input as it is now: the next re-run accepts it and sends nothing.
  ASSERT_EQ(run_to_end(sim, in, out, {}, dir.path / "log3"), 0) << slurp(dir.path / "log3");
  EXPECT_EQ(sim.stats()["requests"].get<int>(), 10);

  // A different file (other ids), and the same file with a line that succeeded changed.
  write_input("g", false);
  EXPECT_EQ(run_to_end(sim, in, out, {}, dir.path / "log4"), 2) << slurp(dir.path / "log4");
  EXPECT_NE(slurp(dir.path / "log4").find("belongs to a different input"), std::string::npos) << slurp(dir.path / "log4");
  write_input("f", false);
  {
    std::string text = slurp(in);
    text.replace(text.find("about 3"), 7, "about X");
    std::ofstream(in, std::ios::trunc) << text;
  }
  EXPECT_EQ(run_to_end(sim, in, out, {}, dir.path / "log5"), 2) << slurp(dir.path / "log5");
  EXPECT_NE(slurp(dir.path / "log5").find("\"f3\" has changed"), std::string::npos) << slurp(dir.path / "log5");
  EXPECT_EQ(sim.stats()["requests"].get<int>(), 10);
  EXPECT_EQ(read_jsonl(out).size(), 10u);
}

// ---- 7. a line over the API's request size is an error line at once --------------------------------

// A 50 MB line between two good ones: written at once as too_large (its line number named),
// never sent (the ledger), and the process's peak memory stays far below the line's size
// times the copies it used to hold (it peaked at 350 MB).
TEST(RunInputs, OversizedLineIsAnErrorAtOnceAndNeverHeldWhole) {
  TempDir dir("inputs");
  SimProcess sim;
  const fs::path in = dir.path / "in.jsonl";
  {
    std::ofstream f(in, std::ios::binary);
    f << chat_request("s1", 1).dump() << "\n";
    json big = chat_request("big", 2);
    big["body"]["messages"][0]["content"] = std::string(50u << 20, 'a');
    f << big.dump() << "\n";
    f << chat_request("s3", 3).dump() << "\n";
  }
  const fs::path out = dir.path / "out.jsonl";
  const std::vector<std::string> args = {FLOODGATE_BIN, "run", in.string(), "-o", out.string(), "--base-url", sim.base_url(), "--quiet"};
  const fs::path log = dir.path / "log";
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::FILE* f = std::freopen(log.c_str(), "w", stderr);
    (void)f;
    ::setenv("OPENAI_API_KEY", sim.api_key().c_str(), 1);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  rusage usage{};
  ASSERT_EQ(::wait4(pid, &status, 0, &usage), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 1) << slurp(log);
  EXPECT_EQ(sim.ledger().size(), 2u) << "the long line is never sent";
  const auto lines = read_jsonl(out);
  ASSERT_EQ(lines.size(), 3u);
  int too_large = 0;
  for (const auto& l : lines) {
    if (l["error"].is_null()) continue;
    ++too_large;
    EXPECT_EQ(l["error"]["code"], "too_large") << l.dump();
    EXPECT_EQ(l["error"]["line"], 2) << l.dump();
    EXPECT_NE(l["error"]["message"].get<std::string>().find("26214400"), std::string::npos) << l.dump();
  }
  EXPECT_EQ(too_large, 1);
  // ru_maxrss is in KiB: at most the 25 MiB read limit once, plus the program. Not under
  // AddressSanitizer, whose shadow memory and quarantine of freed blocks (256 MB by default)
  // are in the RSS; the regular build checks the bound.
#if !defined(__SANITIZE_ADDRESS__)
  EXPECT_LT(usage.ru_maxrss, 100 * 1024) << "peak RSS " << usage.ru_maxrss << " KiB";
#endif
}

// ---- 13. messages and summaries that read right --------------------------------------------------

// A fully resumed run (every line done): no rate from lines this run did not send (it showed
// "3999.4 req/s" and "0/min if sustained"), and the limits it was given (they read "-/min").
TEST(RunInputs, AFullyResumedRunShowsTheGivenLimitsAndNoRate) {
  TempDir dir("inputs");
  SimProcess sim;
  const fs::path in = write_chat_input(dir.path / "in.jsonl", "r", 20);
  const fs::path out = dir.path / "out.jsonl";
  ASSERT_EQ(run_to_end(sim, in, out, {"--rpm", "6000", "--tpm", "100000"}, dir.path / "log1"), 0) << slurp(dir.path / "log1");
  const std::vector<std::string> again = {in.string(), "-o", out.string(), "--base-url", sim.base_url(), "--rpm", "6000", "--tpm", "100000"};
  auto json_args = again;
  json_args.insert(json_args.end(), {"--log-format", "json"});
  ASSERT_EQ(run_cmd(sim, json_args, dir.path / "log2"), 0) << slurp(dir.path / "log2");
  std::istringstream lines(slurp(dir.path / "log2"));
  std::string line;
  int progress_lines = 0;
  while (std::getline(lines, line)) {
    const json j = json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    if (j.value("event", "") != "progress") continue;
    ++progress_lines;
    EXPECT_TRUE(j["rate_per_s"].is_null()) << line;
    EXPECT_EQ(j["rpm_limit"], 6000) << line;
    EXPECT_EQ(j["tpm_limit"], 100000) << line;
  }
  EXPECT_GT(progress_lines, 0) << slurp(dir.path / "log2");
  const json summary = summary_of(dir.path / "log2");
  EXPECT_EQ(summary["limits"]["rpm"], 6000) << summary.dump();
  EXPECT_EQ(summary["attempts"], 0) << summary.dump();

  ASSERT_EQ(run_cmd(sim, again, dir.path / "log3"), 0) << slurp(dir.path / "log3");
  const std::string text = slurp(dir.path / "log3");
  EXPECT_NE(text.find("] - req/s ETA"), std::string::npos) << text;
  EXPECT_NE(text.find("rpm 0/6000 tpm 0/100.0k"), std::string::npos) << text;
  EXPECT_NE(text.find("requests      none sent in this run (limit 6,000/min)"), std::string::npos) << text;
  EXPECT_NE(text.find("tokens/min    none used in this run (limit 100,000/min)"), std::string::npos) << text;
  EXPECT_EQ(text.find("sustained"), std::string::npos) << text;
  EXPECT_EQ(sim.ledger().size(), 20u) << "the re-runs sent nothing";
}

// An unknown flag points to the help of the subcommand it was given to, nested ones too
// (`batch submit --nope` pointed to `floodgate batch --help`).
TEST(RunInputs, AnUnknownFlagPointsToItsSubcommandsHelp) {
  TempDir dir("inputs");
  const fs::path in = write_chat_input(dir.path / "in.jsonl", "u", 1);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"run", in.string(), "-o", (dir.path / "o.jsonl").string(), "--nope"}, "floodgate run --help"},
      {{"estimate", in.string(), "--nope"}, "floodgate estimate --help"},
      {{"batch", "submit", in.string(), "-o", (dir.path / "b.jsonl").string(), "--nope"}, "floodgate batch submit --help"},
      {{"batch", "status", "-o", (dir.path / "b.jsonl").string(), "--nope"}, "floodgate batch status --help"},
      {{"tokens", "count", "--nope"}, "floodgate tokens count --help"},
      {{"sim", "--nope"}, "floodgate sim --help"},
      {{"transcribe", in.string(), "--nope"}, "floodgate transcribe --help"},
  };
  RunProcess::Options no_subcommand;
  no_subcommand.command = "";
  for (const auto& [args, help] : cases) {
    const fs::path log = dir.path / "log";
    RunProcess p(args, "sk-test", log, no_subcommand);
    EXPECT_EQ(p.wait(std::chrono::seconds(30)), 2) << args[0] << ": " << slurp(log);
    EXPECT_NE(slurp(log).find("Run '" + help + "' for usage."), std::string::npos) << args[0] << " " << args[1] << ": " << slurp(log);
  }
}

// -q does what its help says: no progress, notices or cost line; warnings and errors; the
// summary only when the exit code is not 0. The help said "no summary (errors only)".
TEST(RunInputs, QuietDoesWhatItsHelpSays) {
  TempDir dir("inputs");
  const fs::path help_log = dir.path / "help";
  RunProcess help({"--help"}, "sk-test", help_log);
  ASSERT_EQ(help.wait(std::chrono::seconds(30)), 0);
  EXPECT_NE(slurp(help_log).find("no progress line, notices or cost line: only warnings and errors, and the summary when the exit code is not 0"),
            std::string::npos)
      << slurp(help_log);

  SimProcess sim;
  const fs::path in = write_chat_input(dir.path / "in.jsonl", "q", 5);
  ASSERT_EQ(run_to_end(sim, in, dir.path / "ok.jsonl", {}, dir.path / "ok.log"), 0);
  EXPECT_EQ(slurp(dir.path / "ok.log"), "") << "exit 0: nothing at all";
  {
    std::ofstream f(in, std::ios::app);
    f << R"({"custom_id":"bad","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[],}})" << "\n";
  }
  ASSERT_EQ(run_to_end(sim, in, dir.path / "bad.jsonl", {}, dir.path / "bad.log"), 1);
  const std::string text = slurp(dir.path / "bad.log");
  EXPECT_NE(text.find("floodgate run summary"), std::string::npos) << text;
  EXPECT_EQ(text.find("cost:"), std::string::npos) << text;
  EXPECT_EQ(text.find("req/s"), std::string::npos) << text;
}

}  // namespace
