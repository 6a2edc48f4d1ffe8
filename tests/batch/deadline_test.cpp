// The deadline's reserve: what the real-time finish of the unfinished lines needs at the
// known limits (batch::realtime_finish_time), under whole-window pacing.
#include <gtest/gtest.h>

#include <chrono>

#include "floodgate/batch/job.hpp"

namespace floodgate::batch {
namespace {

using std::chrono::seconds;

limit::LimitsConfig limits(double rpm, double tpm, double rpd = 0, double tpd = 0) {
  limit::LimitsConfig c;
  c.defaults.requests_per_minute = rpm;
  c.defaults.tokens_per_minute = tpm;
  c.defaults.requests_per_day = rpd;
  c.defaults.tokens_per_day = tpd;
  return c;
}

TEST(DeadlineReserve, OneWindowHoldsItAllNeedsNoWait) {
  const auto t = realtime_finish_time({{"gpt-4o-mini", {40, 4'000}}}, limits(1000, 1'000'000));
  EXPECT_TRUE(t.known);
  EXPECT_EQ(t.needed, seconds(0));
}

TEST(DeadlineReserve, TheLastRequestWaitsForEveryWindowAfterTheFirst) {
  // 150 requests at 60/min: 60 now, 60 after a minute, 30 after two.
  const auto t = realtime_finish_time({{"gpt-4o-mini", {150, 1'500}}}, limits(60, 1'000'000));
  EXPECT_EQ(t.needed, seconds(120));
  EXPECT_EQ(t.bound_by, "gpt-4o-mini rpm");
  // Exactly two windows' worth: the second window holds the rest.
  EXPECT_EQ(realtime_finish_time({{"m", {120, 0}}}, limits(60, 0)).needed, seconds(60));
}

TEST(DeadlineReserve, TheChargedTokensCountAgainstTokensPerMinute) {
  const auto t = realtime_finish_time({{"gpt-4o", {10, 30'001}}}, limits(1000, 10'000));
  EXPECT_EQ(t.needed, seconds(180));
  EXPECT_EQ(t.bound_by, "gpt-4o tpm");
}

TEST(DeadlineReserve, DailyLimitsCountInDays) {
  const auto t = realtime_finish_time({{"m", {250, 0}}}, limits(1000, 0, 100));
  EXPECT_EQ(t.needed, seconds(2 * 86'400));
  EXPECT_EQ(t.bound_by, "m rpd");
}

TEST(DeadlineReserve, TheSlowestModelDecidesWithItsOwnLimits) {
  limit::LimitsConfig c = limits(100, 0);
  c.models["gpt-4o"].requests_per_minute = 10;  // per-model override
  const auto t = realtime_finish_time({{"gpt-4o-mini", {150, 0}}, {"gpt-4o", {35, 0}}}, c);
  EXPECT_EQ(t.needed, seconds(180));  // gpt-4o: ceil(35/10) - 1 = 3 windows; gpt-4o-mini: 1
  EXPECT_EQ(t.bound_by, "gpt-4o rpm");
}

TEST(DeadlineReserve, AModelWithoutKnownLimitsIsSaidToBeUnknown) {
  EXPECT_FALSE(realtime_finish_time({{"m", {10, 100}}}, limit::LimitsConfig{}).known);
  EXPECT_TRUE(realtime_finish_time({}, limit::LimitsConfig{}).known);  // nothing left: nothing to wait for
}

}  // namespace
}  // namespace floodgate::batch
