#include <gtest/gtest.h>

#include "floodgate/core/error.hpp"
#include "floodgate/tokens/model_map.hpp"

namespace floodgate::tokens {
namespace {

TEST(ModelMap, BuiltinFamilies) {
  using E = EncodingId;
  const std::pair<const char*, E> cases[] = {
      {"gpt-4o", E::o200k_base},          {"gpt-4o-mini-2024-07-18", E::o200k_base}, {"chatgpt-4o-latest", E::o200k_base},
      {"gpt-4.1-nano", E::o200k_base},    {"gpt-4.5-preview", E::o200k_base},        {"gpt-5", E::o200k_base},
      {"gpt-5-mini", E::o200k_base},      {"o1", E::o200k_base},                     {"o1-mini", E::o200k_base},
      {"o3-mini", E::o200k_base},         {"o4-mini", E::o200k_base},                {"gpt-4", E::cl100k_base},
      {"gpt-4-turbo", E::cl100k_base},    {"gpt-4-0613", E::cl100k_base},            {"gpt-3.5-turbo", E::cl100k_base},
      {"gpt-35-turbo", E::cl100k_base},   {"text-embedding-3-small", E::cl100k_base},
      {"text-embedding-3-large", E::cl100k_base}, {"text-embedding-ada-002", E::cl100k_base},
      {"ft:gpt-4o-mini:acme::abc123", E::o200k_base}, {"ft:gpt-3.5-turbo-0125:acme::x", E::cl100k_base},
      {"openai/gpt-4o", E::o200k_base},
  };
  for (const auto& [model, enc] : cases) {
    EXPECT_EQ(builtin_encoding_for_model(model), enc) << model;
  }
  EXPECT_FALSE(builtin_encoding_for_model("llama-3-70b").has_value());
  EXPECT_FALSE(builtin_encoding_for_model("gpt4").has_value());
}

TEST(ModelMap, UserRulesWinAndLaterRulesWinOverEarlier) {
  ModelMap m;
  EXPECT_EQ(m.lookup_or("my-model", EncodingId::cl100k_base), EncodingId::cl100k_base);
  m.add_rule("my-*=o200k_base");
  EXPECT_EQ(m.lookup("my-model"), EncodingId::o200k_base);
  m.add("gpt-4o", EncodingId::cl100k_base);
  EXPECT_EQ(m.lookup("gpt-4o"), EncodingId::cl100k_base);
  EXPECT_EQ(m.lookup("gpt-4o-mini"), EncodingId::o200k_base);
  m.add_rule("my-model=cl100k_base");
  EXPECT_EQ(m.lookup("my-model"), EncodingId::cl100k_base);
  EXPECT_THROW(m.add_rule("x=p50k_base"), Error);
  EXPECT_THROW(m.add_rule("no-equals"), Error);
}

}  // namespace
}  // namespace floodgate::tokens
