#include "floodgate/core/duration.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using floodgate::Duration;
using floodgate::format_duration;
using floodgate::parse_duration;

TEST(ParseDuration, OpenAiForms) {
  EXPECT_EQ(parse_duration("1s"), Duration{1s});
  EXPECT_EQ(parse_duration("6m0s"), Duration{6min});
  EXPECT_EQ(parse_duration("60ms"), Duration{60ms});
  EXPECT_EQ(parse_duration("120ms"), Duration{120ms});
  EXPECT_EQ(parse_duration("1m30.5s"), Duration{90500ms});
  EXPECT_EQ(parse_duration("2h"), Duration{2h});
  EXPECT_EQ(parse_duration("2m59.56s"), Duration{179560ms});
  EXPECT_EQ(parse_duration("0s"), Duration{0});
  EXPECT_EQ(parse_duration("1h2m3s"), Duration{3723s});
  EXPECT_EQ(parse_duration("17.352s"), Duration{17352ms});
  EXPECT_EQ(parse_duration("250us"), Duration{250us});
  EXPECT_EQ(parse_duration("5ns"), Duration{5ns});
}

TEST(ParseDuration, BareSecondsAsInRetryAfter) {
  EXPECT_EQ(parse_duration("20"), Duration{20s});
  EXPECT_EQ(parse_duration("0.5"), Duration{500ms});
  EXPECT_EQ(parse_duration(" 3 "), Duration{3s});
}

TEST(ParseDuration, RejectsMalformed) {
  EXPECT_FALSE(parse_duration(""));
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration("-1s"));
  EXPECT_FALSE(parse_duration("-1"));
  EXPECT_FALSE(parse_duration("1x"));
  EXPECT_FALSE(parse_duration("1s2"));
  EXPECT_FALSE(parse_duration("abc"));
  EXPECT_FALSE(parse_duration("."));
  EXPECT_FALSE(parse_duration("99999999999999h"));
}

TEST(FormatDuration, LikeOpenAi) {
  EXPECT_EQ(format_duration(0ms), "0ms");
  EXPECT_EQ(format_duration(120ms), "120ms");
  EXPECT_EQ(format_duration(999ms), "999ms");
  EXPECT_EQ(format_duration(1s), "1s");
  EXPECT_EQ(format_duration(1500ms), "1.5s");
  EXPECT_EQ(format_duration(17352ms), "17.352s");
  EXPECT_EQ(format_duration(6min), "6m0s");
  EXPECT_EQ(format_duration(90500ms), "1m30.5s");
  EXPECT_EQ(format_duration(2h), "2h0m0s");
  EXPECT_EQ(format_duration(-5s), "0ms");
}

TEST(FormatDuration, RoundsUpSoClientsNeverRetryEarly) {
  EXPECT_EQ(format_duration(Duration{1}), "1ms");
  EXPECT_EQ(format_duration(Duration{999'000'001}), "1s");
  EXPECT_EQ(format_duration(Duration{1'000'000'001}), "1.001s");
}

TEST(FormatDuration, RoundTripsThroughParse) {
  for (long ms : {0L, 1L, 59L, 999L, 1000L, 1001L, 59'999L, 60'000L, 61'500L, 3'599'999L, 3'600'000L, 86'399'999L}) {
    const Duration d = std::chrono::milliseconds{ms};
    EXPECT_EQ(parse_duration(format_duration(d)), d) << ms << "ms -> " << format_duration(d);
  }
}
