// Integration: the client's prompt-token estimate (floodgate::tokens::estimate_request, what
// `floodgate estimate` and the limiter use) against what `floodgate sim` charges and reports
// with its default --token-charge exact. The sim counts with its own chat-accounting formula
// (src/sim/token_estimate.cpp), so agreement here checks the client's formula, not a copy.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "floodgate/core/request.hpp"
#include "floodgate/tokens/estimate.hpp"
#include "support/sim_process.hpp"

namespace floodgate::test {
namespace {

struct Charged {
  std::int64_t prompt_tokens = -1;   // usage.prompt_tokens of the answer
  std::int64_t tokens_charged = -1;  // the ledger's admission charge
};

// Posts every body, then reads the charges back from the answers and the ledger (in order).
std::vector<Charged> send_all(SimProcess& sim, const std::vector<std::string>& bodies) {
  std::vector<Charged> out;
  for (const auto& body : bodies) {
    const HttpResult r = sim.post("/v1/chat/completions", body);
    EXPECT_EQ(r.status, 200) << r.error << r.body;
    Charged c;
    const auto j = r.json();
    if (j.is_object() && j.contains("usage")) c.prompt_tokens = j["usage"]["prompt_tokens"].get<std::int64_t>();
    out.push_back(c);
  }
  const auto ledger = sim.ledger();
  EXPECT_EQ(ledger.size(), bodies.size());
  for (std::size_t i = 0; i < ledger.size() && i < out.size(); ++i) {
    out[i].tokens_charged = ledger[i]["tokens_charged"].get<std::int64_t>();
  }
  return out;
}

TEST(EstimateVsSim, ExampleChatJsonlIsExact) {
  std::ifstream in(std::string(FLOODGATE_SOURCE_DIR) + "/examples/chat.jsonl");
  ASSERT_TRUE(in) << "examples/chat.jsonl";
  std::vector<std::string> bodies;
  for (std::string line; std::getline(in, line) && bodies.size() < 300;) {
    if (!line.empty()) bodies.push_back(nlohmann::json::parse(line)["body"].dump());
  }
  ASSERT_GE(bodies.size(), 100u);
  SimProcess sim;
  const auto charged = send_all(sim, bodies);
  ASSERT_EQ(charged.size(), bodies.size());
  std::uint64_t estimated_total = 0, charged_total = 0;
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    const auto e = tokens::estimate_request(Endpoint::chat_completions, bodies[i]);
    EXPECT_EQ(charged[i].prompt_tokens, static_cast<std::int64_t>(e.prompt_tokens)) << bodies[i];
    EXPECT_EQ(charged[i].tokens_charged, static_cast<std::int64_t>(e.total_tokens)) << bodies[i];
    estimated_total += e.total_tokens;
    charged_total += static_cast<std::uint64_t>(charged[i].tokens_charged);
  }
  EXPECT_EQ(estimated_total, charged_total);

  // The CLI says the same: `floodgate estimate` prints "total  REQUESTS  PROMPT  COMPLETION".
  std::int64_t prompt_charged = 0;
  for (const auto& c : charged) prompt_charged += c.prompt_tokens;
  const std::string command = std::string(FLOODGATE_BIN) + " estimate " + FLOODGATE_SOURCE_DIR + "/examples/chat.jsonl";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
  ASSERT_EQ(::pclose(pipe), 0) << output;
  std::istringstream lines(output);
  bool found = false;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string label;
    std::int64_t requests = 0, prompt = 0;
    if (fields >> label >> requests >> prompt && label == "total") {
      found = true;
      EXPECT_EQ(requests, static_cast<std::int64_t>(bodies.size()));
      EXPECT_EQ(prompt, prompt_charged) << output;
    }
  }
  EXPECT_TRUE(found) << output;
}

TEST(EstimateVsSim, MultilingualNamesToolsAndToolCallsAreExact) {
  const std::vector<std::string> bodies = {
      R"({"model":"gpt-4o-mini","max_tokens":50,"messages":[{"role":"system","content":"Réponds en français."},)"
      R"({"role":"user","name":"ana","content":"Wie spät ist es in 東京? Привет, мир! 🙂 مرحبا"}]})",
      R"({"model":"gpt-3.5-turbo","max_tokens":7,"n":2,"messages":[{"role":"user","content":[{"type":"text","text":"naïve café"},)"
      R"({"type":"text","text":"  spaces\n\ttabs 12345678"}]}]})",
      R"({"model":"gpt-4o","max_completion_tokens":30,"messages":[{"role":"user","content":"weather in Paris?"},)"
      R"({"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},)"
      R"({"role":"tool","tool_call_id":"call_1","content":"{\"temp_c\":21}"}],)"
      R"("tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]})",
  };
  SimProcess sim;
  const auto charged = send_all(sim, bodies);
  ASSERT_EQ(charged.size(), bodies.size());
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    const auto e = tokens::estimate_request(Endpoint::chat_completions, bodies[i]);
    EXPECT_EQ(charged[i].prompt_tokens, static_cast<std::int64_t>(e.prompt_tokens)) << bodies[i];
    EXPECT_EQ(charged[i].tokens_charged, static_cast<std::int64_t>(e.total_tokens)) << bodies[i];
  }
}

// Where the client is conservative on purpose (docs/tokens.md): an image costs the client
// kImageTokens (1105) and the sim 85; a json_schema response_format costs the client the
// JSON of the whole response_format and the sim only that of its json_schema.
TEST(EstimateVsSim, ImagesAndSchemasAreOverEstimatedNeverUnder) {
  const std::vector<std::string> bodies = {
      R"({"model":"gpt-4o-mini","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},)"
      R"({"type":"image_url","image_url":{"url":"https://example.invalid/cat.png"}}]}]})",
      R"({"model":"gpt-4o-mini","max_tokens":10,"messages":[{"role":"user","content":"name a city"}],)"
      R"("response_format":{"type":"json_schema","json_schema":{"name":"city","strict":true,"schema":{"type":"object",)"
      R"("properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}}}})",
  };
  SimProcess sim;
  const auto charged = send_all(sim, bodies);
  ASSERT_EQ(charged.size(), bodies.size());
  const auto image = tokens::estimate_request(Endpoint::chat_completions, bodies[0]);
  EXPECT_EQ(static_cast<std::int64_t>(image.prompt_tokens) - charged[0].prompt_tokens,
            static_cast<std::int64_t>(tokens::kImageTokens) - 85);
  const auto schema = tokens::estimate_request(Endpoint::chat_completions, bodies[1]);
  EXPECT_GT(static_cast<std::int64_t>(schema.prompt_tokens), charged[1].prompt_tokens);
  EXPECT_LT(static_cast<std::int64_t>(schema.prompt_tokens), charged[1].prompt_tokens + 20);
}

TEST(EstimateVsSim, TokenChargeBytesKeepsTheOldApproximation) {
  const std::string body =
      R"({"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":"Привет, мир! 東京は今何時ですか?"}]})";
  SimProcess sim({"--token-charge", "bytes"});
  const auto charged = send_all(sim, {body});
  ASSERT_EQ(charged.size(), 1u);
  const std::string text = nlohmann::json::parse(body)["messages"][0]["content"].get<std::string>();
  const auto bytes_charge = static_cast<std::int64_t>(3 + 4 + (text.size() + 3) / 4);
  EXPECT_EQ(charged[0].prompt_tokens, bytes_charge);
  EXPECT_EQ(charged[0].tokens_charged, bytes_charge + 5);
}

}  // namespace
}  // namespace floodgate::test
