// Request estimates: the cookbook's chat formula, embeddings shapes, allowances.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "floodgate/tokens/estimate.hpp"

namespace floodgate::tokens {
namespace {

const Encoding& o200k() { return Encoding::get(EncodingId::o200k_base); }

TEST(Estimate, ChatFollowsTheCookbook) {
  const char* body = R"({"model":"gpt-4o-mini","messages":[
    {"role":"system","content":"You are helpful."},
    {"role":"user","content":"Hello there, how are you?","name":"bob"}],"max_tokens":100,"n":2})";
  ASSERT_EQ(o200k().count("You are helpful."), 4u);
  ASSERT_EQ(o200k().count("Hello there, how are you?"), 7u);
  // (3 + system 1 + 4) + (3 + user 1 + 7 + name 1 + bob 1) + 3 priming
  EXPECT_EQ(prompt_tokens(Endpoint::chat_completions, body, o200k()), 24u);
  const auto e = estimate_request(Endpoint::chat_completions, body);
  EXPECT_EQ(e.prompt_tokens, 24u);
  EXPECT_EQ(e.completion_allowance_tokens, 200u);
  EXPECT_EQ(e.total_tokens, 224u);
  EXPECT_TRUE(e.body_parsed);
}

TEST(Estimate, ChatFastPathMatchesTheGeneralPath) {
  // estimate_request reads plain chat bodies with simdjson; prompt_tokens() always builds
  // the nlohmann DOM. Both must agree on plain bodies and on the ones that fall back.
  const std::vector<std::string> bodies = {
      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello to number 1."}]})",
      R"({"messages":[{"role":"system","content":"Be brief.\n\u00e9t\u00e9"},{"role":"user","content":"x","name":"ann"}]})",
      R"({"messages":[{"type":"message","role":"user","content":"hi"}]})",
      R"({"messages":[]})",
      R"({"model":"gpt-4o"})",
      R"({"messages":[{"role":"user","content":"a","content":"bbbb bbbb"}]})",   // repeated key: last wins
      R"({"messages":[{"role":"user","content":"a"}],"messages":[{"role":"user","content":"two words"}]})",
      R"({"messages":[{"role":"user","content":[{"type":"text","text":"parts"}]}]})",
      R"({"messages":[{"role":"user","content":null,"tool_calls":[{"id":"c1"}]}]})",
      R"({"messages":"not a list"})",
      R"({"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function"}]})",
      R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}})",
      R"([{"role":"user","content":"hi"}])",
  };
  EstimateOptions fixed;
  fixed.encoding = &o200k();
  for (const auto& body : bodies) {
    EXPECT_EQ(estimate_request(Endpoint::chat_completions, body, fixed).prompt_tokens,
              prompt_tokens(Endpoint::chat_completions, body, o200k()))
        << body;
  }
  EXPECT_EQ(estimate_request(Endpoint::chat_completions, bodies[5], fixed).prompt_tokens, 3 + 3 + 1 + o200k().count("bbbb bbbb"));
}

TEST(Estimate, ChatFastPathAllowance) {
  EstimateOptions o;
  o.default_completion_tokens = 77;
  const auto allowance = [&](const char* body) { return estimate_request(Endpoint::chat_completions, body, o).completion_allowance_tokens; };
  EXPECT_EQ(allowance(R"({"messages":[]})"), 77u);
  EXPECT_EQ(allowance(R"({"messages":[],"max_tokens":10,"max_completion_tokens":20})"), 20u);
  EXPECT_EQ(allowance(R"({"messages":[],"max_completion_tokens":"x","max_tokens":10})"), 10u);
  EXPECT_EQ(allowance(R"({"messages":[],"max_tokens":-5})"), 0u);
  EXPECT_EQ(allowance(R"({"messages":[],"max_tokens":12.7})"), 12u);
  EXPECT_EQ(allowance(R"({"messages":[],"max_tokens":10,"n":3,"best_of":2})"), 30u);
  EXPECT_EQ(allowance(R"({"messages":[],"max_tokens":10,"n":"3"})"), 10u);
  EXPECT_EQ(allowance(R"({"messages":[],"max_tokens":10,"max_tokens":4})"), 4u);  // repeated: last wins
}

TEST(Estimate, ModelPicksTheEncoding) {
  // A CJK sentence costs differently in the two encodings: the estimate uses the model's.
  const std::string text = "人工智能正在改变世界，每分钟的请求数量有限制。";
  const std::string body4 = R"({"model":"gpt-4","messages":[{"role":"user","content":")" + text + R"("}]})";
  const std::string body4o = R"({"model":"gpt-4o","messages":[{"role":"user","content":")" + text + R"("}]})";
  const auto& cl = Encoding::get(EncodingId::cl100k_base);
  ASSERT_NE(cl.count(text), o200k().count(text));
  EXPECT_EQ(estimate_request(Endpoint::chat_completions, body4).prompt_tokens, 3 + 1 + cl.count(text) + 3);
  EXPECT_EQ(estimate_request(Endpoint::chat_completions, body4o).prompt_tokens, 3 + 1 + o200k().count(text) + 3);
}

TEST(Estimate, ContentPartsImagesAndTools) {
  const char* body = R"({"model":"gpt-4o","max_completion_tokens":50,"messages":[{"role":"user","content":[
    {"type":"text","text":"What is in this image?"},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}],
    "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]})";
  const std::uint64_t tools = o200k().count(R"([{"function":{"name":"get_weather","parameters":{"type":"object"}},"type":"function"}])");
  const auto e = estimate_request(Endpoint::chat_completions, body);
  EXPECT_EQ(e.prompt_tokens, 3 + 1 + o200k().count("What is in this image?") + kImageTokens + 3 + tools);
  EXPECT_EQ(e.completion_allowance_tokens, 50u);
}

TEST(Estimate, EmbeddingsInputShapes) {
  EXPECT_EQ(estimate_request(Endpoint::embeddings, R"({"model":"text-embedding-3-small","input":"hello world"})").total_tokens, 2u);
  EXPECT_EQ(estimate_request(Endpoint::embeddings, R"({"model":"text-embedding-3-small","input":["hello world","hello"]})").total_tokens, 3u);
  EXPECT_EQ(estimate_request(Endpoint::embeddings, R"({"model":"text-embedding-3-small","input":[1,2,3,4]})").total_tokens, 4u);
  EXPECT_EQ(estimate_request(Endpoint::embeddings, R"({"model":"text-embedding-3-small","input":[[1,2],[3,4,5]]})").total_tokens, 5u);
}

TEST(Estimate, AllowanceDefaultsAndChoices) {
  EstimateOptions o;
  o.default_completion_tokens = 1000;
  EXPECT_EQ(estimate_request(Endpoint::chat_completions, R"({"model":"gpt-4o","messages":[]})", o).completion_allowance_tokens, 1000u);
  EXPECT_EQ(estimate_request(Endpoint::chat_completions, R"({"model":"gpt-4o","messages":[],"n":3})", o).completion_allowance_tokens, 3000u);
  EXPECT_EQ(estimate_request(Endpoint::completions, R"({"model":"davinci-002","prompt":"hi","best_of":4})", o).completion_allowance_tokens, 64u);
  EXPECT_EQ(estimate_request(Endpoint::responses, R"({"model":"gpt-4o","input":"hi","max_output_tokens":7})", o).completion_allowance_tokens, 7u);
  EXPECT_EQ(estimate_request(Endpoint::audio_transcriptions, "--multipart--", o).completion_allowance_tokens, 0u);
}

TEST(Estimate, UnparsableBodyCostsItsText) {
  const auto e = estimate_request(Endpoint::chat_completions, "not json at all");
  EXPECT_FALSE(e.body_parsed);
  EXPECT_EQ(e.prompt_tokens, o200k().count("not json at all"));
  EXPECT_GT(e.total_tokens, e.prompt_tokens);
}

TEST(Estimate, FixedEncodingOverridesTheModel) {
  EstimateOptions o;
  o.encoding = &Encoding::get(EncodingId::cl100k_base);
  const std::string text = "人工智能正在改变世界";
  const auto e = estimate_request(Endpoint::embeddings, R"({"model":"gpt-4o","input":")" + text + R"("})", o);
  EXPECT_EQ(e.prompt_tokens, o.encoding->count(text));
}

}  // namespace
}  // namespace floodgate::tokens
