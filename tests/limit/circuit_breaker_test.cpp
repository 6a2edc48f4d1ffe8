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

// A server that stops answering: 8 attempts in a row without any answer open the breaker
// for an outage; probes go one at a time, each failed one doubling the wait (1 s, 2 s,
// 4 s ... up to 15 s); attempts sent before the pause do not extend it.
TEST(CircuitBreaker, AnOutageOpensItAndProbesWithGrowingWaits) {
  ManualClock clock;
  CircuitBreaker b;
  const TimePoint t0 = clock.now();
  for (int i = 0; i < 7; ++i) b.on_no_contact(t0 + std::chrono::milliseconds(i));
  EXPECT_EQ(b.state(t0 + 7ms), BreakerState::closed);
  EXPECT_FALSE(b.in_outage());
  b.on_no_contact(t0 + 7ms);
  EXPECT_TRUE(b.in_outage());
  EXPECT_EQ(b.outages(), 1u);
  EXPECT_EQ(b.outage_since(), t0);
  EXPECT_EQ(b.blocked_until(), t0 + 7ms + 1s);
  b.on_no_contact(t0 + 8ms);  // sent before the pause: the pause stands
  EXPECT_EQ(b.blocked_until(), t0 + 7ms + 1s);
  EXPECT_EQ(b.times_opened(), 0u) << "an outage is not a 429 opening";

  TimePoint t = t0 + 7ms + 1s;
  for (auto wait : {2s, 4s, 8s, 15s, 15s}) {
    EXPECT_TRUE(b.try_pass(t));   // the probe
    EXPECT_FALSE(b.try_pass(t));  // only one
    b.on_no_contact(t);           // fails
    EXPECT_EQ(b.blocked_until(), t + wait);
    t += wait;
  }
  EXPECT_TRUE(b.in_outage());
  EXPECT_EQ(b.outage_since(), t0);
}

// Any answer ends the outage at once, whatever its status.
TEST(CircuitBreaker, AnyAnswerEndsAnOutage) {
  ManualClock clock;
  const TimePoint t0 = clock.now();
  for (int kind = 0; kind < 3; ++kind) {
    CircuitBreaker b;
    for (int i = 0; i < 8; ++i) b.on_no_contact(t0);
    ASSERT_TRUE(b.in_outage());
    ASSERT_TRUE(b.try_pass(t0 + 1s));
    if (kind == 0) b.on_success(t0 + 1s);
    if (kind == 1) b.on_other_failure(t0 + 1s);  // a 500 is an answer too
    if (kind == 2) b.on_rate_limited(t0 + 1s, std::nullopt);
    EXPECT_FALSE(b.in_outage()) << kind;
    EXPECT_EQ(b.state(t0 + 1s), BreakerState::closed) << kind;
    EXPECT_EQ(b.consecutive_no_contact(), 0) << kind;
  }
}

// Failures with answers in between are single bad attempts, not an outage.
TEST(CircuitBreaker, AnswersBetweenFailuresAreNoOutage) {
  ManualClock clock;
  CircuitBreaker b;
  const TimePoint t0 = clock.now();
  for (int i = 0; i < 50; ++i) {
    b.on_no_contact(t0);
    if (i % 7 == 6) b.on_success(t0);
  }
  EXPECT_FALSE(b.in_outage());
  EXPECT_EQ(b.state(t0), BreakerState::closed);
}

// An outage during a 429 pause does not shorten it.
TEST(CircuitBreaker, AnOutageNeverShortensA429Pause) {
  ManualClock clock;
  CircuitBreaker b;
  const TimePoint t0 = clock.now();
  for (int i = 0; i < 3; ++i) b.on_rate_limited(t0, 30s);
  for (int i = 0; i < 8; ++i) b.on_no_contact(t0 + 1s);
  EXPECT_TRUE(b.in_outage());
  EXPECT_EQ(b.blocked_until(), t0 + 30s);
}
