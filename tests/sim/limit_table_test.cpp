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
