#include "floodgate/limit/charge_model.hpp"

#include <gtest/gtest.h>

#include "floodgate/core/error.hpp"
#include "floodgate/limit/limits.hpp"

using namespace floodgate::limit;
using floodgate::Provider;

namespace {
ChargeInputs chat(std::uint64_t input, std::optional<std::uint64_t> max = std::nullopt, std::uint64_t n = 1) {
  return ChargeInputs{input, max, n, true};
}
}  // namespace

// OpenAI: input + (max_completion_tokens | max_tokens | 16) x n; embeddings the input only.
TEST(ChargeModel, OpenAIChargesSixteenWhenMaxTokensIsAbsent) {
  const ChargeModel openai = default_charge_model(Provider::openai);
  EXPECT_EQ(openai.charge(chat(60)), 76u);
  EXPECT_EQ(openai.charge(chat(60, 100)), 160u);
  EXPECT_EQ(openai.charge(chat(60, 100, 3)), 360u);
  EXPECT_EQ(openai.charge(chat(60, std::nullopt, 2)), 92u);
  EXPECT_EQ(openai.charge(ChargeInputs{500, std::nullopt, 1, false}), 500u);  // embeddings
  // The worst case keeps 4,096 for budgets.
  EXPECT_EQ(worst_case_tokens(chat(60), 4096), 4156u);
  EXPECT_EQ(worst_case_tokens(chat(60, 100, 2), 4096), 260u);
  EXPECT_EQ(worst_case_tokens(ChargeInputs{500, std::nullopt, 1, false}, 4096), 500u);
}

TEST(ChargeModel, OtherRules) {
  EXPECT_EQ(parse_charge_model("flat:16").charge(chat(900, 300)), 16u);
  EXPECT_EQ(parse_charge_model("flat:648").charge(chat(10)), 648u);
  EXPECT_EQ(parse_charge_model("max(input,16)").charge(chat(60)), 60u);
  EXPECT_EQ(parse_charge_model("max(input,16)").charge(chat(10, 100)), 100u);
  EXPECT_EQ(parse_charge_model("context:8192").charge(chat(60)), 8192u);
  EXPECT_EQ(parse_charge_model("context:8192").charge(chat(60, 100)), 160u);
  EXPECT_EQ(parse_charge_model("input+4096").charge(chat(60)), 4156u);
  EXPECT_EQ(parse_charge_model("flat:16").charge(ChargeInputs{500, std::nullopt, 1, false}), 500u);
}

TEST(ChargeModel, ParsesAndDescribes) {
  for (const char* text : {"input+16", "flat:648", "max(input,16)", "context:8192", "input+16,refund", "max(input,16),refund"}) {
    EXPECT_EQ(parse_charge_model(text).describe(), text);
  }
  EXPECT_EQ(parse_charge_model("openai"), ChargeModel{});
  EXPECT_TRUE(parse_charge_model("flat:16,refund").refunds_unused);
  // Whitespace around the rule and its parts is core's trim(): spaces as before, and tabs.
  EXPECT_EQ(parse_charge_model(" input+16 , refund ").describe(), "input+16,refund");
  EXPECT_EQ(parse_charge_model("\tmax(input, 16 )\t").describe(), "max(input,16)");
  for (const char* bad : {"", "flat", "flat:x", "input+", "input+16,refunds", "max(input)", "usage"}) {
    EXPECT_THROW((void)parse_charge_model(bad), floodgate::Error) << bad;
  }
}

TEST(ChargeModel, PerModelInTheLimitsFile) {
  const auto c = parse_limits_config(R"({"default": {"rpm": 500, "charge": "input+16"},
    "models": {"gpt-35-turbo": {"provider": "azure", "charge": "flat:16"}, "gpt-4o": {"tpm": 30000}}})");
  EXPECT_EQ(c.charge_for("gpt-35-turbo"), parse_charge_model("flat:16"));
  EXPECT_EQ(c.charge_for("gpt-4o"), parse_charge_model("input+16"));
  EXPECT_EQ(c.provider_for("gpt-35-turbo"), Provider::azure);
  EXPECT_EQ(c.provider_for("gpt-4o"), Provider::openai);
  EXPECT_THROW((void)parse_limits_config(R"({"models": {"m": {"charge": "lots"}}})"), floodgate::Error);
  EXPECT_THROW((void)parse_limits_config(R"({"models": {"m": {"provider": "anthropic"}}})"), floodgate::Error);
}
