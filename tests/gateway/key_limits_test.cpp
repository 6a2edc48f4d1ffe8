#include "floodgate/gateway/key_limits.hpp"

#include <gtest/gtest.h>

#include "floodgate/core/clock.hpp"

using floodgate::ManualClock;
using floodgate::gateway::ClientKey;
using floodgate::gateway::KeyLimiter;
using floodgate::limit::Cost;
using floodgate::limit::Limits;
using Kind = KeyLimiter::Verdict::Kind;
using namespace std::chrono_literals;

namespace {

ClientKey key(const std::string& name) {
  ClientKey k;
  k.name = name;
  k.log_id = name + "#00000000";
  return k;
}

}  // namespace

TEST(KeyLimiter, RequestsPerMinuteAdmitsNThenSaysWhenTheNextCanGo) {
  ManualClock clock;
  KeyLimiter limiter;
  ClientKey k = key("nightly");
  k.requests_per_minute = 3;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(limiter.acquire(k, "m", Cost{1, 10}, {}, clock.now()).kind, Kind::admitted) << i;
    clock.advance(1s);
  }
  const auto fourth = limiter.acquire(k, "m", Cost{1, 10}, {}, clock.now());
  EXPECT_EQ(fourth.kind, Kind::wait);
  EXPECT_EQ(fourth.limit, "requests_per_minute 3");
  // The first went at t0 and leaves the 60 s window at t0 + 60 s (its 100 ms slot's end):
  // 57 s after now, give or take the slot.
  const auto wait = fourth.not_before - clock.now();
  EXPECT_GE(wait, 57s);
  EXPECT_LE(wait, 57s + 100ms);
  clock.advance(wait - 1ms);
  EXPECT_EQ(limiter.acquire(k, "m", Cost{1, 10}, {}, clock.now()).kind, Kind::wait) << "not 1 ms before";
  clock.advance(1ms);
  EXPECT_EQ(limiter.acquire(k, "m", Cost{1, 10}, {}, clock.now()).kind, Kind::admitted);
}

TEST(KeyLimiter, AbsoluteLimitsCountOverEveryModelOfTheKeyAndKeysAreApart) {
  ManualClock clock;
  KeyLimiter limiter;
  ClientKey a = key("a");
  a.requests_per_minute = 1;
  ClientKey b = key("b");
  b.requests_per_minute = 1;
  EXPECT_EQ(limiter.acquire(a, "m1", Cost{1, 1}, {}, clock.now()).kind, Kind::admitted);
  EXPECT_EQ(limiter.acquire(a, "m2", Cost{1, 1}, {}, clock.now()).kind, Kind::wait);
  EXPECT_EQ(limiter.acquire(b, "m1", Cost{1, 1}, {}, clock.now()).kind, Kind::admitted);
}

TEST(KeyLimiter, TokensPerMinuteCountsUsageOnceSettled) {
  ManualClock clock;
  KeyLimiter limiter;
  ClientKey k = key("k");
  k.tokens_per_minute = 1000;
  const auto first = limiter.acquire(k, "m", Cost{1, 900}, {}, clock.now());
  ASSERT_EQ(first.kind, Kind::admitted);
  const auto second = limiter.acquire(k, "m", Cost{1, 200}, {}, clock.now());
  EXPECT_EQ(second.kind, Kind::wait);
  EXPECT_EQ(second.limit, "tokens_per_minute 1000");
  // The first used 300 of its 900: the rest is given back.
  limiter.settle(first.ticket, Cost{1, 300}, clock.now());
  EXPECT_EQ(limiter.acquire(k, "m", Cost{1, 700}, {}, clock.now()).kind, Kind::admitted);
  EXPECT_EQ(limiter.acquire(k, "m", Cost{1, 1}, {}, clock.now()).kind, Kind::wait);
  EXPECT_EQ(limiter.acquire(k, "m", Cost{1, 1001}, {}, clock.now()).kind, Kind::cannot_fit);
}

TEST(KeyLimiter, ACallThatNeverWentUpstreamGivesEverythingBack) {
  ManualClock clock;
  KeyLimiter limiter;
  ClientKey k = key("k");
  k.requests_per_minute = 1;
  const auto first = limiter.acquire(k, "m", Cost{1, 5}, {}, clock.now());
  ASSERT_EQ(first.kind, Kind::admitted);
  limiter.settle(first.ticket, Cost{0, 0}, clock.now());
  EXPECT_EQ(limiter.acquire(k, "m", Cost{1, 5}, {}, clock.now()).kind, Kind::admitted);
}

TEST(KeyLimiter, SharesAreOfTheModelsUpstreamLimitAndSkippedSayingSoOnceWhenUnknown) {
  ManualClock clock;
  KeyLimiter limiter;
  ClientKey k = key("k");
  k.share_of_requests_per_minute = 0.2;
  // Unknown upstream limit: nothing limits it, said once per model.
  auto v = limiter.acquire(k, "m", Cost{1, 1}, {}, clock.now());
  EXPECT_EQ(v.kind, Kind::admitted);
  EXPECT_TRUE(v.share_unknown);
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(limiter.acquire(k, "m", Cost{1, 1}, {}, clock.now()).share_unknown);
  EXPECT_TRUE(limiter.acquire(k, "other", Cost{1, 1}, {}, clock.now()).share_unknown);
  // Known: 20% of 10 requests/min is 2 for model x, and model y has its own.
  Limits upstream;
  upstream.requests_per_minute = 10;
  EXPECT_EQ(limiter.acquire(k, "x", Cost{1, 1}, upstream, clock.now()).kind, Kind::admitted);
  EXPECT_EQ(limiter.acquire(k, "x", Cost{1, 1}, upstream, clock.now()).kind, Kind::admitted);
  v = limiter.acquire(k, "x", Cost{1, 1}, upstream, clock.now());
  EXPECT_EQ(v.kind, Kind::wait);
  EXPECT_EQ(v.limit, "share_of_requests_per_minute 2");
  EXPECT_FALSE(v.share_unknown);
  EXPECT_EQ(limiter.acquire(k, "y", Cost{1, 1}, upstream, clock.now()).kind, Kind::admitted);
}

TEST(KeyLimiter, BothLimitsOrNeitherAreReserved) {
  ManualClock clock;
  KeyLimiter limiter;
  ClientKey k = key("k");
  k.requests_per_minute = 2;
  k.share_of_requests_per_minute = 0.1;  // of 10: 1
  Limits upstream;
  upstream.requests_per_minute = 10;
  EXPECT_EQ(limiter.acquire(k, "x", Cost{1, 1}, upstream, clock.now()).kind, Kind::admitted);
  // x's share is spent: refused, and the absolute limit keeps its second place for y.
  EXPECT_EQ(limiter.acquire(k, "x", Cost{1, 1}, upstream, clock.now()).kind, Kind::wait);
  EXPECT_EQ(limiter.acquire(k, "y", Cost{1, 1}, upstream, clock.now()).kind, Kind::admitted);
  EXPECT_EQ(limiter.acquire(k, "z", Cost{1, 1}, upstream, clock.now()).kind, Kind::wait);
}
