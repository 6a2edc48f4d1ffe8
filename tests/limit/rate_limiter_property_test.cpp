// Property test: under random sequences of acquire / advance / reconcile / observe (seeded,
// bounded), no window of the dimension's length ever holds more admitted cost than the
// limit, and no second holds more than the burst plus a second's pace. Checked against an
// independent log of what was admitted, as Envoy checks its fuzzed token bucket.
#include <algorithm>
#include <deque>
#include <optional>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "floodgate/limit/rate_limiter.hpp"

using namespace std::chrono_literals;
using floodgate::Duration;
using floodgate::ManualClock;
using floodgate::TimePoint;
using namespace floodgate::limit;

namespace {

struct Entry {
  TimePoint at;
  double requests;
  double tokens;
};

TimePoint latest_seen(const std::vector<Entry>& log) {
  TimePoint t = TimePoint::min();
  for (const auto& e : log) t = std::max(t, e.at);
  return t;
}

// Sum of entries with at in (t - window, t].
std::pair<double, double> in_window(const std::vector<Entry>& log, TimePoint t, Duration window) {
  double r = 0, k = 0;
  for (const auto& e : log) {
    if (e.at > t - window && e.at <= t) {
      r += e.requests;
      k += e.tokens;
    }
  }
  return {r, k};
}

struct Scenario {
  Limits limits;
  Duration max_step;
  int steps;
};

void run(const Scenario& s, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  ManualClock clock;
  LimiterOptions options;
  // Whole-window pacing for a third of the seeds (no per-second bound then, until a 429
  // with room left makes it fall back), even pacing with a random burst for the rest.
  options.pacing = seed % 3 == 0 ? LimiterOptions::Pacing::whole_window : LimiterOptions::Pacing::even;
  options.burst = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 3000)(rng));
  options.refund = seed % 2 ? LimiterOptions::Refund::unused : LimiterOptions::Refund::refused_only;
  RateLimiter limiter(s.limits, /*learn_from_headers=*/false, options);
  std::vector<Entry> log;
  std::vector<std::pair<Grant, std::size_t>> pending;  // grant, index in log
  std::uniform_int_distribution<int> action(0, 99);
  std::uniform_int_distribution<std::int64_t> step_ns(0, s.max_step.count());
  const double max_tokens = s.limits.tokens_per_minute > 0 ? s.limits.tokens_per_minute / 4 : 1000;
  std::uniform_int_distribution<std::uint64_t> tokens(0, static_cast<std::uint64_t>(max_tokens));
  int admitted = 0, waited = 0;
  std::optional<TimePoint> even_since;  // when pacing became even (whole-window runs)
  if (options.pacing == LimiterOptions::Pacing::even) even_since = TimePoint::min();
  for (int i = 0; i < s.steps; ++i) {
    const int a = action(rng);
    if (a < 50) {
      const Cost cost{1, tokens(rng)};
      const Decision d = limiter.try_acquire(cost, clock.now());
      if (d.admitted()) {
        ++admitted;
        log.push_back({d.grant.admitted_at, 1.0, static_cast<double>(d.grant.cost.tokens)});
        pending.emplace_back(d.grant, log.size() - 1);
        // The invariant, at every admission (the right end of the worst windows).
        const auto [r_min, t_min] = in_window(log, d.grant.admitted_at, 60s);
        if (s.limits.requests_per_minute > 0) {
          ASSERT_LE(r_min, s.limits.requests_per_minute) << "seed " << seed << " step " << i;
        }
        if (s.limits.tokens_per_minute > 0) {
          ASSERT_LE(t_min, s.limits.tokens_per_minute) << "seed " << seed << " step " << i;
        }
        const auto [r_day, t_day] = in_window(log, d.grant.admitted_at, 24h);
        if (s.limits.requests_per_day > 0) {
          ASSERT_LE(r_day, s.limits.requests_per_day) << "seed " << seed;
        }
        if (s.limits.tokens_per_day > 0) {
          ASSERT_LE(t_day, s.limits.tokens_per_day) << "seed " << seed;
        }
        // Even pacing: one second holds at most (1 s + burst) of pace, plus one request.
        if (s.limits.requests_per_minute > 0 && even_since && d.grant.admitted_at - 1s >= *even_since) {
          const auto [r_sec, t_sec] = in_window(log, d.grant.admitted_at, 1s);
          const double per_s = s.limits.requests_per_minute / 60.0;
          ASSERT_LE(r_sec, per_s * (1.0 + std::chrono::duration<double>(options.burst).count()) + 1.0) << "seed " << seed;
        }
      } else if (d.verdict == Decision::Verdict::wait) {
        ++waited;
        ASSERT_GT(d.not_before, clock.now());
        if (action(rng) < 50) clock.set(d.not_before);  // often jump exactly to the boundary
      }
    } else if (a < 80) {
      clock.advance(Duration{step_ns(rng)});
    } else if (a < 83) {
      clock.advance(-Duration{step_ns(rng)});  // time going backwards
    } else if (a < 95 && !pending.empty()) {
      const std::size_t k = std::uniform_int_distribution<std::size_t>(0, pending.size() - 1)(rng);
      const auto [grant, index] = pending[k];
      pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(k));
      const Cost actual{1, grant.cost.tokens == 0 ? 0 : tokens(rng) % (grant.cost.tokens + 1)};
      limiter.reconcile(grant, actual, clock.now());
      const bool refunded = actual.tokens == 0 || options.refund == LimiterOptions::Refund::unused;
      if (refunded) log[index].tokens = static_cast<double>(actual.tokens);
    } else {
      RateLimitHeaders h;
      h.remaining_requests = std::uniform_int_distribution<std::int64_t>(0, 100)(rng);
      h.reset_requests = Duration{step_ns(rng)};
      if (s.limits.tokens_per_minute > 0 && action(rng) < 50) {
        h.remaining_tokens = std::uniform_int_distribution<std::int64_t>(0, static_cast<std::int64_t>(s.limits.tokens_per_minute))(rng);
      }
      if (!pending.empty() && action(rng) < 50) {
        limiter.observe(h, clock.now(), pending.back().first);  // may learn a higher charge
      } else {
        limiter.observe(h, clock.now());
      }
      if (action(rng) < 10 && limiter.on_rate_limited(h, clock.now())) even_since = std::max(clock.now(), latest_seen(log));
    }
  }
  // The run must have exercised both sides of the limit.
  EXPECT_GT(admitted, s.steps / 20) << "seed " << seed;
  EXPECT_GT(waited, s.steps / 20) << "seed " << seed;
}

}  // namespace

TEST(RateLimiterProperty, NeverOverTheLimitPerMinute) {
  for (std::uint64_t seed = 1; seed <= 12; ++seed) run({Limits{120, 20000, 0, 0}, 2s, 1500}, seed);
}

TEST(RateLimiterProperty, NeverOverTheLimitPerDay) {
  for (std::uint64_t seed = 100; seed <= 104; ++seed) run({Limits{0, 0, 40, 20000}, 20min, 600}, seed);
}

TEST(RateLimiterProperty, AllDimensionsTogether) {
  for (std::uint64_t seed = 200; seed <= 205; ++seed) run({Limits{600, 100000, 2000, 2000000}, 500ms, 1500}, seed);
}

TEST(RateLimiterProperty, TimeBackwardsAdmitsNoMoreThanStandingStill) {
  // Two limiters see the same admissions; one is also asked at earlier times. The earlier
  // asks never get an admission the other would not get at the latest time seen.
  ManualClock clock;
  LimiterOptions even;
  even.pacing = LimiterOptions::Pacing::even;
  RateLimiter a(Limits{60, 0, 0, 0}, false, even);
  int admitted_backwards = 0;
  for (int i = 0; i < 200; ++i) {
    (void)a.try_acquire({1, 0}, clock.now());
    if (a.try_acquire({1, 0}, clock.now() - 30s).admitted()) ++admitted_backwards;
    clock.advance(200ms);
  }
  // 200 * 200 ms = 40 s at one per second, after a 1-request burst: at most 41 in all.
  const auto snap = a.snapshot(clock.now());
  EXPECT_LE(snap.requests_last_minute, 41);
  EXPECT_GE(snap.requests_last_minute, 39);
  EXPECT_LE(admitted_backwards, 1);
}
