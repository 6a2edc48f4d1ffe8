#include "floodgate/limit/backoff.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using floodgate::Duration;
using namespace floodgate::limit;

TEST(Backoff, CeilingDoublesUpToTheCap) {
  Backoff b(RetryPolicy{10, 500ms, 5s, 15min});
  EXPECT_EQ(b.ceiling(1), Duration{500ms});
  EXPECT_EQ(b.ceiling(2), Duration{1s});
  EXPECT_EQ(b.ceiling(3), Duration{2s});
  EXPECT_EQ(b.ceiling(4), Duration{4s});
  EXPECT_EQ(b.ceiling(5), Duration{5s});
  EXPECT_EQ(b.ceiling(1000), Duration{5s});
}

TEST(Backoff, FullJitterStaysInBoundsAndSpreads) {
  Backoff b(RetryPolicy{100, 1s, 60s, 15min}, 42);
  Duration lo = 1h, hi{0};
  for (int i = 0; i < 2000; ++i) {
    const auto d = b.next(3, std::nullopt);  // ceiling 4 s
    ASSERT_EQ(d.verdict, RetryVerdict::retry);
    ASSERT_GE(d.delay, Duration{0});
    ASSERT_LE(d.delay, Duration{4s});
    lo = std::min(lo, d.delay);
    hi = std::max(hi, d.delay);
  }
  EXPECT_LT(lo, 200ms);  // full jitter reaches near zero ...
  EXPECT_GT(hi, 3800ms);  // ... and near the ceiling
}

TEST(Backoff, SameSeedSameDelays) {
  Backoff a(RetryPolicy{}, 7), b(RetryPolicy{}, 7), c(RetryPolicy{}, 8);
  bool differs = false;
  for (int i = 1; i < 6; ++i) {
    const auto x = a.next(i, std::nullopt).delay;
    EXPECT_EQ(x, b.next(i, std::nullopt).delay);
    differs |= x != c.next(i, std::nullopt).delay;
  }
  EXPECT_TRUE(differs);
}

TEST(Backoff, NeverEarlierThanTheServerSays) {
  Backoff b(RetryPolicy{10, 100ms, 1s, 15min}, 1);
  for (int i = 0; i < 200; ++i) {
    const auto d = b.next(1 + i % 5, Duration{3s});  // beyond max_delay: still honoured
    ASSERT_EQ(d.verdict, RetryVerdict::retry);
    ASSERT_GE(d.delay, Duration{3s});
    ASSERT_LE(d.delay, Duration{3s});
  }
  const auto small_hint = b.next(1, Duration{1ms});
  EXPECT_GE(small_hint.delay, Duration{1ms});
  EXPECT_LE(small_hint.delay, Duration{100ms});
}

TEST(Backoff, MaxAttemptsOnBothSides) {
  Backoff b(RetryPolicy{3, 100ms, 1s, 15min});
  EXPECT_EQ(b.next(1, std::nullopt).verdict, RetryVerdict::retry);
  EXPECT_EQ(b.next(2, std::nullopt).verdict, RetryVerdict::retry);
  EXPECT_EQ(b.next(3, std::nullopt).verdict, RetryVerdict::give_up);
  EXPECT_EQ(b.next(3, Duration{1s}).verdict, RetryVerdict::give_up);
}

TEST(Backoff, LongServerWaitSuspends) {
  Backoff b(RetryPolicy{6, 100ms, 1s, 15min});
  EXPECT_EQ(b.next(1, Duration{15min}).verdict, RetryVerdict::retry);
  const auto d = b.next(1, Duration{15min + 1ns});
  EXPECT_EQ(d.verdict, RetryVerdict::suspend);
  EXPECT_EQ(d.delay, Duration{15min + 1ns});
}
