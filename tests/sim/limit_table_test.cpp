#include <gtest/gtest.h>

#include <chrono>

#include "sim/limit_table.hpp"

namespace floodgate::sim {
namespace {

using namespace std::chrono_literals;

TEST(LimitTable, RequestsPerMinuteBothSidesOfTheBoundary) {
  LimitTable table;
  ModelLimits limits;
  limits.requests_per_minute = 60;  // one per second
  const TimePoint t0 = TimePoint{} + 1000h;
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(table.admit("k", "m", limits, 0, t0).admitted) << i;
  const Admission refused = table.admit("k", "m", limits, 0, t0);
  ASSERT_FALSE(refused.admitted);
  EXPECT_EQ(refused.dimension, LimitDimension::requests_per_minute);
  EXPECT_EQ(refused.limit, 60);
  EXPECT_EQ(refused.used, 60);
  EXPECT_EQ(refused.requested, 1);
  EXPECT_EQ(refused.retry_after, 1s);
  EXPECT_FALSE(table.admit("k", "m", limits, 0, t0 + 999ms).admitted);
  EXPECT_TRUE(table.admit("k", "m", limits, 0, t0 + 1000ms).admitted);
}

TEST(LimitTable, TokensPerMinuteAndHeaders) {
  LimitTable table;
  ModelLimits limits;
  limits.requests_per_minute = 1000;
  limits.tokens_per_minute = 6000;  // 100 per second
  const TimePoint t0 = TimePoint{} + 1000h;
  const Admission a = table.admit("k", "m", limits, 5000, t0);
  ASSERT_TRUE(a.admitted);
  EXPECT_EQ(a.headers.limit_tokens, 6000);
  EXPECT_EQ(a.headers.remaining_tokens, 1000);
  EXPECT_EQ(a.headers.reset_tokens, 50s);
  EXPECT_EQ(a.headers.limit_requests, 1000);
  EXPECT_EQ(a.headers.remaining_requests, 999);
  EXPECT_EQ(a.headers.reset_requests, 60ms);
  const Admission b = table.admit("k", "m", limits, 1500, t0);
  ASSERT_FALSE(b.admitted);
  EXPECT_EQ(b.dimension, LimitDimension::tokens_per_minute);
  EXPECT_STREQ(error_type(b.dimension), "tokens");
  EXPECT_EQ(b.retry_after, 5s);
  EXPECT_EQ(b.used, 5000);
  EXPECT_FALSE(table.admit("k", "m", limits, 1500, t0 + 4999ms).admitted);
  EXPECT_TRUE(table.admit("k", "m", limits, 1500, t0 + 5s).admitted);
}

TEST(LimitTable, KeptPerKeyAndPerModel) {
  LimitTable table;
  ModelLimits limits;
  limits.requests_per_minute = 1;
  const TimePoint t0 = TimePoint{} + 1000h;
  EXPECT_TRUE(table.admit("k1", "m1", limits, 0, t0).admitted);
  EXPECT_FALSE(table.admit("k1", "m1", limits, 0, t0).admitted);
  EXPECT_TRUE(table.admit("k1", "m2", limits, 0, t0).admitted);
  EXPECT_TRUE(table.admit("k2", "m1", limits, 0, t0).admitted);
}

TEST(LimitTable, DailyLimitsAndNeverFits) {
  LimitTable table;
  ModelLimits limits;
  limits.requests_per_day = 2;
  limits.tokens_per_minute = 100;
  const TimePoint t0 = TimePoint{} + 1000h;
  EXPECT_TRUE(table.admit("k", "m", limits, 1, t0).admitted);
  EXPECT_TRUE(table.admit("k", "m", limits, 1, t0).admitted);
  const Admission day = table.admit("k", "m", limits, 1, t0 + 1min);
  ASSERT_FALSE(day.admitted);
  EXPECT_EQ(day.dimension, LimitDimension::requests_per_day);
  EXPECT_EQ(day.retry_after, 12h - 1min);  // one request back after half a day, minus the minute passed
  const Admission big = table.admit("k", "m2", limits, 101, t0);
  ASSERT_FALSE(big.admitted);
  EXPECT_TRUE(big.never_fits);
  EXPECT_EQ(big.dimension, LimitDimension::tokens_per_minute);
}

TEST(LimitTable, UnlimitedDimensionsReportAHugeLimit) {
  LimitTable table;
  const Admission a = table.admit("k", "m", ModelLimits{}, 1'000'000, TimePoint{} + 1h);
  EXPECT_TRUE(a.admitted);
  EXPECT_EQ(a.headers.limit_requests, RateHeaders::kUnlimited);
  EXPECT_EQ(a.headers.reset_tokens, 0s);
}

TEST(LimitTable, TimeGoingBackwardsCreatesNothing) {
  LimitTable table;
  ModelLimits limits;
  limits.requests_per_minute = 1;
  const TimePoint t0 = TimePoint{} + 1000h;
  EXPECT_TRUE(table.admit("k", "m", limits, 0, t0).admitted);
  EXPECT_FALSE(table.admit("k", "m", limits, 0, t0 - 10min).admitted);
  EXPECT_FALSE(table.admit("k", "m", limits, 0, t0 + 59s).admitted);
}

}  // namespace
}  // namespace floodgate::sim

namespace floodgate::sim {
namespace {

using namespace std::chrono_literals;

TEST(LimitTableWindow, RollingHoldsEverySixtySecondWindowWhereTheBucketRefills) {
  ModelLimits limits;
  limits.requests_per_minute = 3;
  const TimePoint t0 = TimePoint{} + 1000h;
  LimitTable bucket;
  LimitTable rolling;
  limits.window = WindowMode::bucket;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(bucket.admit("k", "m", limits, 0, t0).admitted);
  EXPECT_TRUE(bucket.admit("k", "m", limits, 0, t0 + 20s).admitted);  // refilled one

  limits.window = WindowMode::rolling;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(rolling.admit("k", "m", limits, 0, t0).admitted);
  const Admission refused = rolling.admit("k", "m", limits, 0, t0 + 20s);
  ASSERT_FALSE(refused.admitted);
  EXPECT_EQ(refused.retry_after, 40s);  // when the three of t0 leave the window
  EXPECT_EQ(refused.used, 3);
  EXPECT_EQ(refused.headers.remaining_requests, 0);
  EXPECT_EQ(refused.headers.reset_requests, 40s);
  EXPECT_FALSE(rolling.admit("k", "m", limits, 0, t0 + 60s - 1ms).admitted);
  const Admission back = rolling.admit("k", "m", limits, 0, t0 + 60s);
  ASSERT_TRUE(back.admitted);
  EXPECT_EQ(back.headers.remaining_requests, 2);
  EXPECT_EQ(back.headers.reset_requests, 60s);
}

TEST(LimitTableWindow, RollingTokenHeadersAreTheWindowsSum) {
  LimitTable table;
  ModelLimits limits;
  limits.tokens_per_minute = 6000;
  limits.window = WindowMode::rolling;
  const TimePoint t0 = TimePoint{} + 1000h;
  const Admission a = table.admit("k", "m", limits, 5000, t0);
  ASSERT_TRUE(a.admitted);
  EXPECT_EQ(a.headers.remaining_tokens, 1000);
  EXPECT_EQ(a.headers.reset_tokens, 60s);
  const Admission b = table.admit("k", "m", limits, 500, t0 + 10s);
  ASSERT_TRUE(b.admitted);
  EXPECT_EQ(b.headers.remaining_tokens, 500);  // the bucket would show 500 + 1000 refilled
  EXPECT_EQ(b.headers.reset_tokens, 60s);
  const Admission c = table.admit("k", "m", limits, 1000, t0 + 30s);
  ASSERT_FALSE(c.admitted);
  EXPECT_EQ(c.retry_after, 30s);  // 5000 leave at t0 + 60 s
  EXPECT_EQ(table.peek("k", "m", limits, t0 + 60s).remaining_tokens, 5500);
  EXPECT_TRUE(table.admit("k", "m", limits, 1000, t0 + 60s).admitted);
}

TEST(LimitTableWindow, RollingPerDayIsTwentyFourHours) {
  LimitTable table;
  ModelLimits limits;
  limits.requests_per_day = 2;
  limits.window = WindowMode::rolling;
  const TimePoint t0 = TimePoint{} + 1000h;
  ASSERT_TRUE(table.admit("k", "m", limits, 0, t0).admitted);
  ASSERT_TRUE(table.admit("k", "m", limits, 0, t0 + 1h).admitted);
  const Admission day = table.admit("k", "m", limits, 0, t0 + 12h);
  ASSERT_FALSE(day.admitted);
  EXPECT_EQ(day.dimension, LimitDimension::requests_per_day);
  EXPECT_EQ(day.retry_after, 12h);
  EXPECT_EQ(day.headers.limit_requests_day, 2);
  EXPECT_EQ(day.headers.remaining_requests_day, 0);
  EXPECT_TRUE(table.admit("k", "m", limits, 0, t0 + 24h).admitted);
}

TEST(LimitTableWindow, QuantizedEnforcesThePerSecondShareButReportsTheMinute) {
  LimitTable table;
  ModelLimits limits;
  limits.requests_per_minute = 600;  // 10 per second
  limits.tokens_per_minute = 6000;   // 100 per second
  limits.window = WindowMode::quantized;
  const TimePoint t0 = TimePoint{} + 1000h;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(table.admit("k", "m", limits, 1, t0).admitted) << i;
  const Admission burst = table.admit("k", "m", limits, 1, t0 + 500ms);
  ASSERT_FALSE(burst.admitted);
  EXPECT_EQ(burst.dimension, LimitDimension::requests_per_minute);
  EXPECT_EQ(burst.retry_after, 500ms);
  EXPECT_EQ(burst.headers.remaining_requests, 590);  // the minute says there is room
  EXPECT_TRUE(table.admit("k", "m", limits, 1, t0 + 1s).admitted);
  // A charge above the second's share (100) fits an empty second, not a used one.
  EXPECT_FALSE(table.admit("k", "m", limits, 150, t0 + 1500ms).admitted);
  EXPECT_TRUE(table.admit("k", "m", limits, 150, t0 + 2s).admitted);
  // Asking 12 a second for the rest of the minute: the second's share (10) binds.
  TimePoint t = t0 + 3s;
  int admitted = 0;
  for (int s = 0; s < 57; ++s, t += 1s) {
    for (int i = 0; i < 12; ++i) admitted += table.admit("k", "m", limits, 1, t).admitted ? 1 : 0;
  }
  EXPECT_EQ(admitted, 570);
}

TEST(LimitTableWindow, SettleRefundsInEachMode) {
  for (const WindowMode mode : {WindowMode::bucket, WindowMode::rolling, WindowMode::quantized}) {
    LimitTable table;
    ModelLimits limits;
    limits.tokens_per_minute = 1000;
    limits.window = mode;
    const TimePoint t0 = TimePoint{} + 1000h;
    ASSERT_TRUE(table.admit("k", "m", limits, 800, t0).admitted) << to_string(mode);
    EXPECT_FALSE(table.admit("k", "m", limits, 800, t0).admitted) << to_string(mode);
    table.settle("k", "m", limits, t0, -700, t0);  // real usage 100
    EXPECT_EQ(table.peek("k", "m", limits, t0).remaining_tokens, 900) << to_string(mode);
    EXPECT_TRUE(table.admit("k", "m", limits, 800, t0 + (mode == WindowMode::quantized ? 1s : 0s)).admitted)
        << to_string(mode);
  }
}

}  // namespace
}  // namespace floodgate::sim
