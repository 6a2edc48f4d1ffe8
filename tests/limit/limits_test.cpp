#include "floodgate/limit/limits.hpp"

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

#include "floodgate/core/error.hpp"

using namespace floodgate::limit;

TEST(LimitsConfig, ParsesShortAndLongKeys) {
  const auto c = parse_limits_config(R"({"default": {"rpm": 500, "tpm": 200000},
    "models": {"gpt-4o-mini": {"rpm": 5000, "tokens_per_minute": 4000000, "rpd": 10000, "tpd": 0},
               "text-embedding-3-small": {"tpm": 1000000}}})");
  EXPECT_EQ(c.defaults, (Limits{500, 200000, 0, 0}));
  EXPECT_EQ(c.for_model("gpt-4o-mini"), (Limits{5000, 4000000, 10000, 0}));
  EXPECT_EQ(c.for_model("text-embedding-3-small"), (Limits{500, 1000000, 0, 0}));
  EXPECT_EQ(c.for_model("unknown"), c.defaults);
  EXPECT_TRUE(c.learn_from_headers);
}

TEST(LimitsConfig, LearnFlag) {
  EXPECT_FALSE(parse_limits_config(R"({"learn": false})").learn_from_headers);
}

TEST(LimitsConfig, ErrorsNameTheProblem) {
  auto message = [](const char* text) {
    try {
      (void)parse_limits_config(text);
    } catch (const floodgate::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("{").find("not valid JSON"), std::string::npos);
  EXPECT_EQ(message("{\n \"default\": {\"rpm\": 5,}}"), "limits file: not valid JSON: parse error at line 2, column 23: syntax error while "
                                                         "parsing object key - unexpected '}'; expected string literal");
  EXPECT_NE(message(R"({"models": {"m": {"rpx": 1}}})").find("rpx"), std::string::npos);
  EXPECT_NE(message(R"({"models": {"m": {"rpm": -1}}})").find("non-negative"), std::string::npos);
  EXPECT_NE(message(R"({"models": {"m": {"rpm": "5"}}})").find("rpm"), std::string::npos);
  EXPECT_NE(message(R"({"model": {}})").find("unknown key"), std::string::npos);
  EXPECT_NE(message("[]").find("top level"), std::string::npos);
}

TEST(LimitsConfig, LoadsAFile) {
  const std::string path = ::testing::TempDir() + "/floodgate_limits_test.json";
  {
    std::ofstream out(path);
    out << R"({"models": {"m": {"rpm": 7}}})";
  }
  EXPECT_EQ(load_limits_config(path).for_model("m").requests_per_minute, 7);
  std::remove(path.c_str());
  EXPECT_THROW((void)load_limits_config(path), floodgate::Error);
}

TEST(Limits, OrElseFieldByField) {
  const Limits a{1, 0, 3, 0};
  const Limits b{10, 20, 30, 40};
  EXPECT_EQ(a.or_else(b), (Limits{1, 20, 3, 40}));
  EXPECT_FALSE(Limits{}.any());
  EXPECT_TRUE(a.any());
}
