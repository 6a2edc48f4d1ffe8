#include "floodgate/limit/rate_limiter.hpp"

#include <gtest/gtest.h>

#include "floodgate/limit/limiter_set.hpp"

using namespace std::chrono_literals;
using floodgate::Duration;
using floodgate::ManualClock;
using floodgate::TimePoint;
using namespace floodgate::limit;

namespace {

Limits rpm(double v) { return Limits{v, 0, 0, 0}; }
Limits tpm(double v) { return Limits{0, v, 0, 0}; }
constexpr Cost one{1, 0};

RateLimiter make(Limits limits, Duration burst = 1s, LimiterOptions::Refund refund = LimiterOptions::Refund::refused_only) {
  LimiterOptions options;
  options.pacing = LimiterOptions::Pacing::even;  // --burst
  options.burst = burst;
  options.refund = refund;
  return RateLimiter(limits, /*learn_from_headers=*/false, options);
}

// The same, pacing within the window (LimiterOptions::pace_within_window: the gateway's).
RateLimiter make_within_window(Limits limits, Duration burst) {
  LimiterOptions options;
  options.pacing = LimiterOptions::Pacing::even;
  options.burst = burst;
  options.pace_within_window = true;
  return RateLimiter(limits, /*learn_from_headers=*/false, options);
}

}  // namespace

TEST(RateLimiter, UnlimitedAdmitsEverything) {
  ManualClock clock;
  auto limiter = make(Limits{});
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(limiter.try_acquire({1, 100000}, clock.now()).admitted());
}

TEST(RateLimiter, BurstIsOneSecondWorthThenEvenPace) {
  ManualClock clock;
  auto limiter = make(rpm(600));  // one request every 100 ms, burst 1 s = 10 requests
  const TimePoint t0 = clock.now();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(limiter.try_acquire(one, t0).admitted()) << i;
  const Decision d = limiter.try_acquire(one, t0);
  ASSERT_EQ(d.verdict, Decision::Verdict::wait);
  EXPECT_EQ(d.blocked_by, Dimension::requests_per_minute);
  EXPECT_EQ(d.not_before, t0 + 100ms);
  EXPECT_FALSE(limiter.try_acquire(one, t0 + 100ms - 1ns).admitted());
  EXPECT_TRUE(limiter.try_acquire(one, t0 + 100ms).admitted());
  // Then one per 100 ms.
  EXPECT_FALSE(limiter.try_acquire(one, t0 + 200ms - 1ns).admitted());
  EXPECT_TRUE(limiter.try_acquire(one, t0 + 200ms).admitted());
}

TEST(RateLimiter, DecisionDoesNotReserveWhenWaiting) {
  ManualClock clock;
  auto limiter = make(rpm(60));
  const TimePoint t0 = clock.now();
  ASSERT_TRUE(limiter.try_acquire(one, t0).admitted());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(limiter.try_acquire(one, t0 + 500ms).not_before, t0 + 1s);
  EXPECT_TRUE(limiter.try_acquire(one, t0 + 1s).admitted());
}

TEST(RateLimiter, PeekNeverReserves) {
  ManualClock clock;
  auto limiter = make(rpm(60));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.peek(one, clock.now()).admitted());
  EXPECT_TRUE(limiter.try_acquire(one, clock.now()).admitted());
  EXPECT_FALSE(limiter.peek(one, clock.now()).admitted());
}

TEST(RateLimiter, WindowCapsAMinuteEvenWithAHugeBurst) {
  ManualClock clock;
  auto limiter = make(rpm(60), 120s);  // pacing would allow two minutes' worth at once
  const TimePoint t0 = clock.now();
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(limiter.try_acquire(one, t0).admitted()) << i;
  const Decision d = limiter.try_acquire(one, t0);
  ASSERT_EQ(d.verdict, Decision::Verdict::wait);
  EXPECT_EQ(d.blocked_by, Dimension::requests_per_minute);
  // Not before a full minute plus the margin; at most one 100 ms slot later.
  EXPECT_GE(d.not_before - t0, 60s + 500ms);
  EXPECT_LE(d.not_before - t0, 60s + 600ms);
  EXPECT_FALSE(limiter.try_acquire(one, d.not_before - 1ns).admitted());
  EXPECT_TRUE(limiter.try_acquire(one, d.not_before).admitted());
}

TEST(RateLimiter, TokensPerMinuteLargeRequestPaysForItself) {
  ManualClock clock;
  auto limiter = make(tpm(6000));  // 10 ms per token, burst 1 s = 100 tokens
  const TimePoint t0 = clock.now();
  ASSERT_TRUE(limiter.try_acquire({1, 500}, t0).admitted());  // bigger than the burst: admitted when caught up
  const Decision d = limiter.try_acquire({1, 500}, t0);
  EXPECT_EQ(d.blocked_by, Dimension::tokens_per_minute);
  EXPECT_EQ(d.not_before, t0 + 5s);
  // A small one may run up to the burst ahead of the pace: 100 tokens at t0 + 5 s.
  EXPECT_EQ(limiter.peek({1, 100}, t0).not_before, t0 + 5s);
  EXPECT_EQ(limiter.peek({1, 50}, t0).not_before, t0 + 4500ms);
}

TEST(RateLimiter, CannotFitOnBothSidesOfTheLimit) {
  ManualClock clock;
  auto limiter = make(tpm(6000));
  const Decision too_big = limiter.try_acquire({1, 6001}, clock.now());
  EXPECT_EQ(too_big.verdict, Decision::Verdict::cannot_fit);
  EXPECT_EQ(too_big.blocked_by, Dimension::tokens_per_minute);
  EXPECT_EQ(too_big.not_before, TimePoint::max());
  EXPECT_TRUE(limiter.try_acquire({1, 6000}, clock.now()).admitted());
  auto day = make(Limits{0, 0, 3, 0});
  EXPECT_EQ(day.try_acquire({4, 0}, clock.now()).verdict, Decision::Verdict::cannot_fit);
  EXPECT_EQ(day.try_acquire({4, 0}, clock.now()).blocked_by, Dimension::requests_per_day);
}

TEST(RateLimiter, DayDimensionsAreBudgetsNotPaces) {
  ManualClock clock;
  auto limiter = make(Limits{0, 0, 3, 1000});
  const TimePoint t0 = clock.now();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(limiter.try_acquire({1, 10}, t0).admitted());  // no pacing
  Decision d = limiter.try_acquire({1, 10}, t0);
  EXPECT_EQ(d.blocked_by, Dimension::requests_per_day);
  EXPECT_GE(d.not_before - t0, 24h);
  EXPECT_LE(d.not_before - t0, 24h + 288s);  // the margin rounds up to a whole 144 s slot
  EXPECT_FALSE(limiter.try_acquire({1, 10}, t0 + 23h).admitted());
  EXPECT_TRUE(limiter.try_acquire({1, 10}, d.not_before).admitted());

  auto tokens = make(Limits{0, 0, 0, 1000});
  ASSERT_TRUE(tokens.try_acquire({1, 600}, t0).admitted());
  d = tokens.try_acquire({1, 401}, t0 + 1h);
  EXPECT_EQ(d.blocked_by, Dimension::tokens_per_day);
  EXPECT_TRUE(tokens.try_acquire({1, 400}, t0 + 1h).admitted());
}

TEST(RateLimiter, AllFourDimensionsReserveAtomically) {
  ManualClock clock;
  auto limiter = make(Limits{600, 6000, 100000, 1000000});
  const TimePoint t0 = clock.now();
  ASSERT_TRUE(limiter.try_acquire({1, 5000}, t0).admitted());
  // Tokens block; the request dimension must not have been charged by the refusal.
  const Decision d = limiter.try_acquire({1, 5000}, t0 + 1s);
  EXPECT_EQ(d.blocked_by, Dimension::tokens_per_minute);
  const auto snap = limiter.snapshot(t0 + 1s);
  EXPECT_EQ(snap.requests_last_minute, 1);
  EXPECT_EQ(snap.tokens_last_minute, 5000);
  EXPECT_EQ(snap.requests_last_day, 1);
  EXPECT_EQ(snap.tokens_last_day, 5000);
}

TEST(RateLimiter, ReconcileRefundsPaceAndWindow) {
  ManualClock clock;
  auto limiter = make(tpm(6000));
  const TimePoint t0 = clock.now();
  const Decision a = limiter.try_acquire({1, 6000}, t0);  // the whole minute, estimated
  ASSERT_TRUE(a.admitted());
  EXPECT_FALSE(limiter.peek({1, 10}, t0 + 1s).admitted());
  limiter.reconcile(a.grant, {1, 0}, t0 + 1s);  // used nothing after all
  EXPECT_TRUE(limiter.try_acquire({1, 6000}, t0 + 1s).admitted());
}

TEST(RateLimiter, ReconcilePartialRefundWhenAskedFor) {
  ManualClock clock;
  auto limiter = make(tpm(6000), 1s, LimiterOptions::Refund::unused);
  const TimePoint t0 = clock.now();
  const Decision a = limiter.try_acquire({1, 3000}, t0);  // pace ahead by 30 s
  limiter.reconcile(a.grant, {1, 1000}, t0);            // back to 10 s
  EXPECT_EQ(limiter.peek({1, 100}, t0).not_before, t0 + 10s);
  EXPECT_EQ(limiter.snapshot(t0).tokens_last_minute, 1000);
}

TEST(RateLimiter, ByDefaultUnusedAllowanceOfACompletedRequestStaysCharged) {
  ManualClock clock;
  auto limiter = make(tpm(6000));
  const TimePoint t0 = clock.now();
  const Decision a = limiter.try_acquire({1, 3000}, t0);
  limiter.reconcile(a.grant, {1, 1000}, t0);  // completed, used less: the server counted 3000
  EXPECT_EQ(limiter.peek({1, 100}, t0).not_before, t0 + 30s);
  EXPECT_EQ(limiter.snapshot(t0).tokens_last_minute, 3000);
  limiter.reconcile(a.grant, {1, 0}, t0);  // refused (e.g. a 429): given back
  EXPECT_EQ(limiter.snapshot(t0).tokens_last_minute, 0);
}

TEST(RateLimiter, RequestNeverSentGivesItsRequestBack) {
  ManualClock clock;
  auto limiter = make(rpm(60));
  const TimePoint t0 = clock.now();
  const Decision a = limiter.try_acquire(one, t0);
  limiter.reconcile(a.grant, {0, 0}, t0);
  EXPECT_TRUE(limiter.try_acquire(one, t0).admitted());
  const Decision b = limiter.try_acquire(one, t0 + 1s);
  limiter.reconcile(b.grant, {1, 0}, t0 + 1s);  // sent and failed: still counts
  EXPECT_FALSE(limiter.try_acquire(one, t0 + 1s).admitted());
}

TEST(RateLimiter, ReconcileChargesExtraUsage) {
  ManualClock clock;
  auto limiter = make(tpm(6000));
  const TimePoint t0 = clock.now();
  const Decision a = limiter.try_acquire({1, 100}, t0);
  limiter.reconcile(a.grant, {1, 1100}, t0);
  EXPECT_EQ(limiter.snapshot(t0).tokens_last_minute, 1100);
  EXPECT_GT(limiter.peek({1, 100}, t0).not_before, t0 + 9s);
}

TEST(RateLimiter, TimeGoingBackwardsCreatesNoRoom) {
  ManualClock clock;
  auto limiter = make(rpm(60));
  const TimePoint t0 = clock.now();
  ASSERT_TRUE(limiter.try_acquire(one, t0).admitted());
  for (Duration back : {Duration{1ns}, Duration{1s}, Duration{1h}}) {
    const Decision d = limiter.try_acquire(one, t0 - back);
    EXPECT_FALSE(d.admitted());
    EXPECT_EQ(d.not_before, t0 + 1s);
  }
  EXPECT_TRUE(limiter.try_acquire(one, t0 + 1s).admitted());
  EXPECT_FALSE(limiter.try_acquire(one, t0).admitted());
}

TEST(RateLimiter, PauseUntil) {
  ManualClock clock;
  auto limiter = make(Limits{});
  const TimePoint t0 = clock.now();
  limiter.pause_until(t0 + 5s);
  limiter.pause_until(t0 + 2s);  // cannot shorten
  const Decision d = limiter.try_acquire(one, t0);
  EXPECT_EQ(d.blocked_by, Dimension::paused);
  EXPECT_EQ(d.not_before, t0 + 5s);
  EXPECT_FALSE(limiter.try_acquire(one, t0 + 5s - 1ns).admitted());
  EXPECT_TRUE(limiter.try_acquire(one, t0 + 5s).admitted());
}

TEST(RateLimiter, AutoModeProbesThenLearnsFromHeaders) {
  ManualClock clock;
  RateLimiter limiter(Limits{}, /*learn_from_headers=*/true);
  const TimePoint t0 = clock.now();
  ASSERT_TRUE(limiter.try_acquire(one, t0).admitted());  // the probe
  Decision d = limiter.try_acquire(one, t0);
  EXPECT_EQ(d.blocked_by, Dimension::learning);
  EXPECT_EQ(d.not_before, t0 + 5s);  // probe_timeout
  EXPECT_TRUE(limiter.snapshot(t0).learning);

  RateLimitHeaders h;
  h.limit_requests = 600;
  h.limit_tokens = 60000;
  h.remaining_requests = 599;
  h.remaining_tokens = 60000;
  limiter.observe(h, t0 + 50ms);
  EXPECT_EQ(limiter.limits().requests_per_minute, 600);
  EXPECT_EQ(limiter.limits().tokens_per_minute, 60000);
  EXPECT_FALSE(limiter.snapshot(t0).learning);
  EXPECT_TRUE(limiter.try_acquire(one, t0 + 50ms).admitted());
}

TEST(RateLimiter, AutoModeProbeTimesOut) {
  ManualClock clock;
  RateLimiter limiter(Limits{}, true);
  const TimePoint t0 = clock.now();
  ASSERT_TRUE(limiter.try_acquire(one, t0).admitted());
  EXPECT_FALSE(limiter.try_acquire(one, t0 + 5s - 1ns).admitted());
  EXPECT_TRUE(limiter.try_acquire(one, t0 + 5s).admitted());
  EXPECT_FALSE(limiter.try_acquire(one, t0 + 6s).admitted());
}

TEST(RateLimiter, AnswersWithoutHeadersReleaseTheNextProbeThenEndLearning) {
  ManualClock clock;
  RateLimiter limiter(Limits{}, true);
  for (int probe = 0; probe < 3; ++probe) {
    ASSERT_TRUE(limiter.try_acquire(one, clock.now()).admitted()) << probe;
    EXPECT_EQ(limiter.try_acquire(one, clock.now()).blocked_by, Dimension::learning) << probe;
    limiter.observe(RateLimitHeaders{}, clock.now());  // e.g. a connection error
  }
  EXPECT_FALSE(limiter.snapshot(clock.now()).learning);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(limiter.try_acquire(one, clock.now()).admitted());
}

TEST(RateLimiter, ConfiguredLimitsAreKeptOrLowered) {
  ManualClock clock;
  RateLimitHeaders h;
  h.limit_requests = 600;
  RateLimiter higher(rpm(1000), true);
  higher.observe(h, clock.now());
  EXPECT_EQ(higher.limits().requests_per_minute, 600);
  RateLimiter lower(rpm(500), true);
  lower.observe(h, clock.now());
  EXPECT_EQ(lower.limits().requests_per_minute, 500);
  RateLimiter fixed(rpm(1000), false);
  fixed.observe(h, clock.now());
  EXPECT_EQ(fixed.limits().requests_per_minute, 1000);
}

TEST(RateLimiter, ResyncConsumesWhatTheServerSaysIsGone) {
  ManualClock clock;
  auto limiter = make(rpm(600));
  const TimePoint t0 = clock.now();
  ASSERT_TRUE(limiter.try_acquire(one, t0).admitted());
  RateLimitHeaders h;
  h.remaining_requests = 0;  // someone else used the rest
  h.reset_requests = 2s;
  limiter.observe(h, t0);
  EXPECT_EQ(limiter.snapshot(t0).requests_last_minute, 600);
  const Decision d = limiter.try_acquire(one, t0 + 100ms);
  EXPECT_EQ(d.blocked_by, Dimension::requests_per_minute);
  EXPECT_GE(d.not_before - t0, 2s);
  EXPECT_LE(d.not_before - t0, 2s + 300ms);
  EXPECT_TRUE(limiter.try_acquire(one, d.not_before).admitted());
}

TEST(RateLimiter, ResyncNeverAddsRoom) {
  ManualClock clock;
  auto limiter = make(rpm(60));
  const TimePoint t0 = clock.now();
  ASSERT_TRUE(limiter.try_acquire(one, t0).admitted());
  RateLimitHeaders h;
  h.remaining_requests = 60;  // the server has not seen ours yet
  h.reset_requests = 0s;
  limiter.observe(h, t0);
  EXPECT_EQ(limiter.snapshot(t0).requests_last_minute, 1);
  EXPECT_EQ(limiter.try_acquire(one, t0).not_before, t0 + 1s);
}

TEST(RateLimiter, DimensionNames) {
  EXPECT_EQ(to_string(Dimension::requests_per_minute), "requests/min");
  EXPECT_EQ(to_string(Dimension::tokens_per_minute), "tokens/min");
  EXPECT_EQ(to_string(Dimension::requests_per_day), "requests/day");
  EXPECT_EQ(to_string(Dimension::tokens_per_day), "tokens/day");
}

TEST(LimiterSet, PerModelOverridesCompletedByDefaults) {
  LimitsConfig config;
  config.defaults = Limits{100, 1000, 0, 0};
  config.models["gpt-4o-mini"] = Limits{500, 0, 10000, 0};
  config.learn_from_headers = false;
  LimiterSet set(config);
  EXPECT_EQ(set.for_model("gpt-4o-mini").limits(), (Limits{500, 1000, 10000, 0}));
  EXPECT_EQ(set.for_model("other").limits(), (Limits{100, 1000, 0, 0}));
  EXPECT_EQ(&set.for_model("other"), &set.for_model("other"));
  int n = 0;
  set.for_each([&](const std::string&, RateLimiter&) { ++n; });
  EXPECT_EQ(n, 2);
}

TEST(LimiterSet, ModelsAreIndependent) {
  ManualClock clock;
  LimitsConfig config;
  config.defaults = rpm(1);
  LimiterSet set(config);
  EXPECT_TRUE(set.for_model("a").try_acquire(one, clock.now()).admitted());
  EXPECT_FALSE(set.for_model("a").try_acquire(one, clock.now()).admitted());
  EXPECT_TRUE(set.for_model("b").try_acquire(one, clock.now()).admitted());
}

namespace {

// A client that always has a request waiting: asks at every not_before for `span`, and
// returns the admission times.
std::vector<TimePoint> saturate(RateLimiter& limiter, TimePoint t0, Duration span) {
  std::vector<TimePoint> admitted;
  TimePoint now = t0;
  for (int guard = 0; guard < 100'000 && now < t0 + span; ++guard) {
    const Decision d = limiter.try_acquire(one, now);
    if (d.admitted()) {
      admitted.push_back(now);
    } else {
      now = d.not_before;
    }
  }
  return admitted;
}

Duration longest_gap(const std::vector<TimePoint>& at) {
  Duration gap{0};
  for (std::size_t i = 1; i < at.size(); ++i) gap = std::max(gap, at[i] - at[i - 1]);
  return gap;
}

std::size_t most_in_any_minute(const std::vector<TimePoint>& at) {
  std::size_t most = 0;
  for (std::size_t i = 0, j = 0; i < at.size(); ++i) {
    while (at[i] - at[j] >= 60s) ++j;
    most = std::max(most, i - j + 1);
  }
  return most;
}

}  // namespace

// At L per minute, a saturating client's burst plus a minute of pace overfill the window
// (60 s + margin + a slot) and every admission waits for the burst to leave it, once a
// minute: the stall an interactive call behind a batch flood waited out.
TEST(RateLimiter, EvenPaceAtTheLimitMeetsTheWindowOnceAMinute) {
  ManualClock clock;
  auto limiter = make(rpm(600));
  const auto at = saturate(limiter, clock.now(), 300s);
  EXPECT_GT(longest_gap(at), 1s);
  EXPECT_LE(most_in_any_minute(at), 600u);
}

// pace_within_window: the pace leaves the window room for its burst; after the first
// second's burst no admission waits more than one interval, and no minute holds more than L.
TEST(RateLimiter, PaceWithinWindowNeverStalls) {
  ManualClock clock;
  auto limiter = make_within_window(rpm(600), 1s);
  const auto at = saturate(limiter, clock.now(), 300s);
  // T = (60.6 s + 1 s) / 600 = 102.67 ms: the window is 606 slots of 100 ms.
  EXPECT_LE(longest_gap(at), 103ms);
  EXPECT_GE(longest_gap(at), 102ms);
  EXPECT_LE(most_in_any_minute(at), 600u);
  // 10 at once, then one per 102.67 ms for the rest of the 300 s: 1.7% under the limit.
  EXPECT_GE(at.size(), 10u + 2900u);
  EXPECT_LE(at.size(), 10u + 2925u);
}

// Without a burst the pace gives the window only its own slack: W / L per request.
TEST(RateLimiter, PaceWithinWindowWithoutBurst) {
  ManualClock clock;
  auto limiter = make_within_window(rpm(60), Duration{0});
  const auto at = saturate(limiter, clock.now(), 600s);
  // T = (60.6 s + 60.6 s / 60) / 60 = 1.0268 s.
  EXPECT_LE(longest_gap(at), 1027ms);
  EXPECT_GE(longest_gap(at), 1026ms);
  EXPECT_LE(most_in_any_minute(at), 60u);
}
