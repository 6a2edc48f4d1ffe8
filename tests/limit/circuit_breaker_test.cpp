#include "floodgate/limit/circuit_breaker.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using floodgate::ManualClock;
using floodgate::TimePoint;
using namespace floodgate::limit;

TEST(CircuitBreaker, OpensAfterThresholdConsecutive429s) {
  ManualClock clock;
  CircuitBreaker b;
  const TimePoint t0 = clock.now();
  b.on_rate_limited(t0, std::nullopt);
  b.on_rate_limited(t0, std::nullopt);
  EXPECT_EQ(b.state(t0), BreakerState::closed);  // 2 < 3
  EXPECT_TRUE(b.try_pass(t0));
  b.on_rate_limited(t0, 10s);
  EXPECT_EQ(b.state(t0), BreakerState::open);
  EXPECT_EQ(b.times_opened(), 1u);
  EXPECT_FALSE(b.try_pass(t0 + 10s - 1ns));
  EXPECT_EQ(b.blocked_until(), t0 + 10s);
  EXPECT_EQ(b.state(t0 + 10s), BreakerState::half_open);
}

TEST(CircuitBreaker, SuccessResetsTheCount) {
  ManualClock clock;
  CircuitBreaker b;
  const TimePoint t0 = clock.now();
  b.on_rate_limited(t0, std::nullopt);
  b.on_rate_limited(t0, std::nullopt);
  b.on_success(t0);
  b.on_rate_limited(t0, std::nullopt);
  b.on_rate_limited(t0, std::nullopt);
  EXPECT_EQ(b.state(t0), BreakerState::closed);
  EXPECT_EQ(b.consecutive_rate_limited(), 2);
}

TEST(CircuitBreaker, OtherFailuresDoNotCount) {
  ManualClock clock;
  CircuitBreaker b;
  const TimePoint t0 = clock.now();
  for (int i = 0; i < 10; ++i) b.on_other_failure(t0);
  EXPECT_EQ(b.state(t0), BreakerState::closed);
}

TEST(CircuitBreaker, HalfOpenLetsExactlyOneProbe) {
  ManualClock clock;
  CircuitBreaker b;
  const TimePoint t0 = clock.now();
  for (int i = 0; i < 3; ++i) b.on_rate_limited(t0, 2s);
  EXPECT_TRUE(b.try_pass(t0 + 2s));
  EXPECT_FALSE(b.try_pass(t0 + 2s));
  EXPECT_FALSE(b.try_pass(t0 + 30s));
  EXPECT_EQ(b.blocked_until(), TimePoint::max());
  b.on_success(t0 + 3s);
  EXPECT_EQ(b.state(t0 + 3s), BreakerState::closed);
  EXPECT_TRUE(b.try_pass(t0 + 3s));
  EXPECT_TRUE(b.try_pass(t0 + 3s));
}

TEST(CircuitBreaker, ProbeRateLimitedReopens) {
  ManualClock clock;
  CircuitBreaker b;
  const TimePoint t0 = clock.now();
  for (int i = 0; i < 3; ++i) b.on_rate_limited(t0, 2s);
  ASSERT_TRUE(b.try_pass(t0 + 2s));
  b.on_rate_limited(t0 + 2500ms, 4s);
  EXPECT_EQ(b.state(t0 + 2500ms), BreakerState::open);
  EXPECT_EQ(b.times_opened(), 2u);
  EXPECT_FALSE(b.try_pass(t0 + 6500ms - 1ns));
  EXPECT_TRUE(b.try_pass(t0 + 6500ms));
}

TEST(CircuitBreaker, ProbeOtherFailureFreesAnotherProbe) {
  ManualClock clock;
  CircuitBreaker b;
  const TimePoint t0 = clock.now();
  for (int i = 0; i < 3; ++i) b.on_rate_limited(t0, 1s);
  ASSERT_TRUE(b.try_pass(t0 + 1s));
  b.on_other_failure(t0 + 1100ms);
  EXPECT_EQ(b.state(t0 + 1100ms), BreakerState::half_open);
  EXPECT_TRUE(b.try_pass(t0 + 1100ms));
  EXPECT_FALSE(b.try_pass(t0 + 1100ms));
}

TEST(CircuitBreaker, OpenPeriodCappedAndDefaulted) {
  ManualClock clock;
  const TimePoint t0 = clock.now();
  CircuitBreaker capped;
  for (int i = 0; i < 3; ++i) capped.on_rate_limited(t0, 5h);
  EXPECT_EQ(capped.blocked_until(), t0 + 60s);
  CircuitBreaker defaulted(BreakerOptions{2, 30s, 7s});
  for (int i = 0; i < 2; ++i) defaulted.on_rate_limited(t0, std::nullopt);
  EXPECT_EQ(defaulted.blocked_until(), t0 + 7s);
}

TEST(CircuitBreaker, LaterRateLimitsOnlyExtend) {
  ManualClock clock;
  CircuitBreaker b;
  const TimePoint t0 = clock.now();
  for (int i = 0; i < 3; ++i) b.on_rate_limited(t0, 10s);
  b.on_rate_limited(t0 + 1s, 2s);  // an in-flight request's 429 with a shorter hint
  EXPECT_EQ(b.blocked_until(), t0 + 10s);
  b.on_rate_limited(t0 + 1s, 20s);
  EXPECT_EQ(b.blocked_until(), t0 + 21s);
  EXPECT_EQ(b.times_opened(), 1u);
}

TEST(CircuitBreaker, StateNames) {
  EXPECT_EQ(to_string(BreakerState::closed), "closed");
  EXPECT_EQ(to_string(BreakerState::open), "open");
  EXPECT_EQ(to_string(BreakerState::half_open), "half-open");
}
