#include "floodgate/cost/prices.hpp"

#include <gtest/gtest.h>

#include "floodgate/core/error.hpp"
#include "floodgate/cost/usage.hpp"

namespace floodgate::cost {
namespace {

TEST(PriceTable, BuiltinHasTheListedModelsAndADate) {
  const auto& t = PriceTable::builtin();
  EXPECT_FALSE(t.as_of().empty());
  for (const char* m : {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini",
                        "gpt-5-nano", "o3", "o4-mini", "text-embedding-3-small", "text-embedding-3-large",
                        "whisper-1"}) {
    EXPECT_NE(t.find(m), nullptr) << m;
  }
  const auto* mini = t.find("gpt-4o-mini");
  ASSERT_NE(mini, nullptr);
  EXPECT_DOUBLE_EQ(mini->input_usd_per_million, 0.15);
  EXPECT_DOUBLE_EQ(mini->output_usd_per_million, 0.60);
  EXPECT_DOUBLE_EQ(mini->batch_discount, 0.5);
  EXPECT_GT(t.find("whisper-1")->usd_per_minute, 0);
}

TEST(PriceTable, SnapshotSuffixFallsBackToTheBaseModelButPrefixesDoNot) {
  const auto& t = PriceTable::builtin();
  EXPECT_EQ(t.find("gpt-4o-mini-2024-07-18"), t.find("gpt-4o-mini"));
  EXPECT_EQ(t.find("gpt-4.1-2025-04-14"), t.find("gpt-4.1"));
  EXPECT_EQ(t.find("gpt-4o-mini-transcribe"), nullptr);
  EXPECT_EQ(t.find("gpt-4o-2024-13"), nullptr);
  EXPECT_EQ(t.find(""), nullptr);
}

TEST(PriceTable, UserFileReplacesAndCachedDefaultsToInput) {
  const auto t = PriceTable::from_json(R"({"as_of":"2030-01-01","models":{"m":{"input":1,"output":2}}})");
  ASSERT_NE(t.find("m"), nullptr);
  EXPECT_DOUBLE_EQ(t.find("m")->cached_input_usd_per_million, 1.0);
  EXPECT_EQ(t.find("gpt-4o"), nullptr);
  EXPECT_EQ(t.as_of(), "2030-01-01");
}

TEST(PriceTable, MalformedFilesNameTheProblem) {
  EXPECT_THROW((void)PriceTable::from_json("nope"), Error);
  EXPECT_THROW((void)PriceTable::from_json(R"({"x":1})"), Error);
  try {
    (void)PriceTable::from_json(R"({"models":{"m":{"input":"cheap"}}})", "my.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("my.json: model \"m\": \"input\""), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)PriceTable::from_json(R"({"models":{"m":{"batch_discount":2}}})"), Error);
  EXPECT_THROW((void)PriceTable::load("/nonexistent/prices.json"), Error);
}

// A syntax error in a --prices file names the file, line and column (it said only "my.json:
// not a JSON object").
TEST(PriceTable, ASyntaxErrorNamesTheFileLineAndColumn) {
  try {
    (void)PriceTable::from_json("{\"models\": {\n  \"m\": {\"input\": 1,}\n}}", "my.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("my.json: not valid JSON: parse error at line 2, column 20", 0), 0u) << what;
  }
  try {
    (void)PriceTable::from_json("[1]", "list.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "list.json: not a JSON object (it is array)");
  }
}

TEST(Cost, CachedTokensAreBilledAtTheCachedPrice) {
  ModelPrice p{.input_usd_per_million = 2.0, .cached_input_usd_per_million = 0.5, .output_usd_per_million = 8.0,
               .usd_per_minute = 0, .batch_discount = 0.5};
  Usage u;
  u.prompt_tokens = 1'000'000;
  u.cached_tokens = 400'000;
  u.completion_tokens = 100'000;
  // 600k * 2 + 400k * 0.5 + 100k * 8 = 1.2 + 0.2 + 0.8
  EXPECT_NEAR(cost_usd(p, u), 2.2, 1e-12);
  EXPECT_NEAR(cost_usd(p, u, Tier::batch), 1.1, 1e-12);
  u.cached_tokens = 5'000'000;  // nonsense from a server: clamp, never negative
  EXPECT_NEAR(cost_usd(p, u), 0.5 + 0.8, 1e-12);
}

TEST(Cost, WorstCaseAssumesNoCacheAndTheFullAllowance) {
  ModelPrice p{.input_usd_per_million = 0.15, .cached_input_usd_per_million = 0.075,
               .output_usd_per_million = 0.60, .usd_per_minute = 0, .batch_discount = 0.5};
  EXPECT_NEAR(worst_case_cost_usd(p, 1000, 500), (1000 * 0.15 + 500 * 0.60) / 1e6, 1e-15);
  EXPECT_NEAR(worst_case_cost_usd(p, 1000, 500, Tier::batch), (1000 * 0.15 + 500 * 0.60) / 2e6, 1e-15);
  Usage actual;
  actual.prompt_tokens = 1000;
  actual.cached_tokens = 200;
  actual.completion_tokens = 499;
  EXPECT_LT(cost_usd(p, actual), worst_case_cost_usd(p, 1000, 500));
}

TEST(Cost, RangeForEstimate) {
  const auto r = cost_range(PriceTable::builtin(), "gpt-4o-mini", 1'000'000, 500'000);
  EXPECT_TRUE(r.priced);
  EXPECT_NEAR(r.min_usd, 0.15, 1e-12);
  EXPECT_NEAR(r.max_usd, 0.15 + 0.30, 1e-12);
  const auto b = cost_range(PriceTable::builtin(), "gpt-4o-mini", 1'000'000, 500'000, Tier::batch);
  EXPECT_NEAR(b.max_usd, 0.225, 1e-12);
  EXPECT_FALSE(cost_range(PriceTable::builtin(), "mystery", 10, 10).priced);
}

TEST(Cost, AudioIsPerMinute) {
  ModelPrice p;
  p.usd_per_minute = 0.006;
  EXPECT_NEAR(audio_cost_usd(p, 90), 0.009, 1e-12);
}

TEST(Usage, ChatCompletionsShape) {
  const auto u = parse_usage(R"({"id":"x","usage":{"prompt_tokens":120,"completion_tokens":30,"total_tokens":150,
    "prompt_tokens_details":{"cached_tokens":64},"completion_tokens_details":{"reasoning_tokens":12}}})");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->prompt_tokens, 120u);
  EXPECT_EQ(u->completion_tokens, 30u);
  EXPECT_EQ(u->total_tokens, 150u);
  EXPECT_EQ(u->cached_tokens, 64u);
  EXPECT_EQ(u->reasoning_tokens, 12u);
}

TEST(Usage, ResponsesShapeEmbeddingsAndAbsence) {
  const auto r = parse_usage(R"({"usage":{"input_tokens":10,"output_tokens":5,
    "input_tokens_details":{"cached_tokens":3},"output_tokens_details":{"reasoning_tokens":2}}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->prompt_tokens, 10u);
  EXPECT_EQ(r->completion_tokens, 5u);
  EXPECT_EQ(r->total_tokens, 15u);
  EXPECT_EQ(r->cached_tokens, 3u);
  EXPECT_EQ(r->reasoning_tokens, 2u);
  const auto e = parse_usage(R"({"usage":{"prompt_tokens":8,"total_tokens":8}})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->prompt_tokens, 8u);
  EXPECT_EQ(e->completion_tokens, 0u);
  EXPECT_FALSE(parse_usage(R"({"id":"x"})"));
  EXPECT_FALSE(parse_usage("not json"));
  EXPECT_FALSE(parse_usage(R"({"usage":null})"));
}

TEST(Usage, CompletionAllowance) {
  EXPECT_EQ(completion_allowance(R"({"max_completion_tokens":100,"max_tokens":5})", 7), 100u);
  EXPECT_EQ(completion_allowance(R"({"max_tokens":50,"n":3})", 7), 150u);
  EXPECT_EQ(completion_allowance(R"({"model":"m"})", 7), 7u);
  EXPECT_EQ(completion_allowance("garbage", 9), 9u);
}

}  // namespace
}  // namespace floodgate::cost
