// Whole-window pacing, the fall-back to even pacing, and what the limiter learns from an
// answer's `remaining` (limits a server does not send, the server's charge), all with
// plain time points: nothing sleeps.
#include <algorithm>
#include <deque>
#include <vector>

#include <gtest/gtest.h>

#include "floodgate/limit/limiter_set.hpp"
#include "floodgate/limit/rate_limiter.hpp"

using namespace std::chrono_literals;
using floodgate::Duration;
using floodgate::ManualClock;
using floodgate::Provider;
using floodgate::TimePoint;
using namespace floodgate::limit;

namespace {

constexpr Cost one{1, 0};

RateLimiter whole_window(Limits limits, bool learn = false) { return RateLimiter(limits, learn, LimiterOptions{}); }

// Most entries of `log` in any 60 s window (t - 60 s, t].
std::size_t most_in_a_minute(const std::vector<TimePoint>& log) {
  std::size_t most = 0;
  std::size_t lo = 0;
  for (std::size_t hi = 0; hi < log.size(); ++hi) {
    while (log[hi] - log[lo] >= 60s) ++lo;
    most = std::max(most, hi - lo + 1);
  }
  return most;
}

// A job of `n` requests with `latency` per answer and at most `max_in_flight` at once,
// driven by the limiter's own answers (an event simulation on a manual clock). Returns the
// admission times.
std::vector<TimePoint> run_job(RateLimiter& limiter, int n, Duration latency, std::size_t max_in_flight, TimePoint t0) {
  std::vector<TimePoint> admitted;
  std::deque<TimePoint> answers;  // when each request in flight answers
  TimePoint now = t0;
  while (static_cast<int>(admitted.size()) < n) {
    while (!answers.empty() && answers.front() <= now) answers.pop_front();
    if (answers.size() >= max_in_flight) {
      now = answers.front();
      continue;
    }
    const Decision d = limiter.try_acquire(one, now);
    if (d.admitted()) {
      admitted.push_back(now);
      answers.push_back(now + latency);
      continue;
    }
    now = answers.empty() ? d.not_before : std::min(d.not_before, answers.front());
  }
  return admitted;
}

// An auto-mode limiter whose probe (1 request, 100 tokens) was admitted at `t0`.
struct Probed {
  RateLimiter limiter = whole_window(Limits{}, /*learn=*/true);
  Grant probe;
  explicit Probed(TimePoint t0) {
    const Decision d = limiter.try_acquire({1, 100}, t0);
    EXPECT_TRUE(d.admitted());
    probe = d.grant;
  }
};

// An answer's headers from a server at 600 requests and 100,000 tokens a minute that had
// counted `requests` and `tokens` when it admitted the request.
RateLimitHeaders counted(std::int64_t requests, std::int64_t tokens) {
  RateLimitHeaders h;
  h.limit_requests = 600;
  h.remaining_requests = 600 - requests;
  h.limit_tokens = 100000;
  h.remaining_tokens = 100000 - tokens;
  return h;
}

}  // namespace

TEST(WholeWindow, TheMinutesQuotaGoesAtOnce) {
  ManualClock clock;
  auto limiter = whole_window(Limits{600, 0, 0, 0});
  const TimePoint t0 = clock.now();
  for (int i = 0; i < 600; ++i) ASSERT_TRUE(limiter.try_acquire(one, t0).admitted()) << i;
  const Decision d = limiter.try_acquire(one, t0);
  ASSERT_EQ(d.verdict, Decision::Verdict::wait);
  EXPECT_EQ(d.blocked_by, Dimension::requests_per_minute);
  EXPECT_GE(d.not_before - t0, 60s + 500ms);  // the window (+ margin) decides, not a pace
  EXPECT_LE(d.not_before - t0, 60s + 600ms);
  EXPECT_FALSE(limiter.snapshot(t0).even_pacing);
}

// The job: 900 requests at 600/min, 40 ms latency, 64 in flight. The fastest
// schedule that keeps every 60 s window within 600 sends 600 at once and the rest when the
// first minute's entries leave the window: the last admission is just after 60 s (+ the
// margin and one slot), never more than 600 in any 60 s.
TEST(WholeWindow, NineHundredAtSixHundredPerMinuteTakesOneWindow) {
  ManualClock clock;
  auto limiter = whole_window(Limits{600, 0, 0, 0});
  const TimePoint t0 = clock.now();
  const auto log = run_job(limiter, 900, 40ms, 64, t0);
  ASSERT_EQ(log.size(), 900u);
  EXPECT_EQ(most_in_a_minute(log), 600u);
  EXPECT_LE(log[599] - t0, 1s);           // the first 600 within the first second
  EXPECT_LE(log.back() - t0, 62s);        // even pacing: ~89 s
  EXPECT_GE(log[600] - log[0], 60s);      // and not one of the rest inside the first window
}

TEST(WholeWindow, TokensPerMinuteToo) {
  ManualClock clock;
  auto limiter = whole_window(Limits{0, 60000, 0, 0});
  const TimePoint t0 = clock.now();
  for (int i = 0; i < 600; ++i) ASSERT_TRUE(limiter.try_acquire({1, 100}, t0).admitted()) << i;
  EXPECT_EQ(limiter.try_acquire({1, 100}, t0 + 30s).blocked_by, Dimension::tokens_per_minute);
}

TEST(WholeWindow, A429WithRoomLeftFallsBackToEvenPacing) {
  ManualClock clock;
  auto limiter = whole_window(Limits{600, 0, 0, 0});
  const TimePoint t0 = clock.now();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(limiter.try_acquire(one, t0).admitted());
  RateLimitHeaders h;
  h.remaining_requests = 580;  // the minute has room: a shorter period refused it
  h.retry_after = 900ms;       // when that period has room again
  EXPECT_TRUE(limiter.on_rate_limited(h, t0 + 40ms));
  EXPECT_TRUE(limiter.even_pacing());
  EXPECT_FALSE(limiter.on_rate_limited(h, t0 + 50ms));  // once
  // Nothing before the retry-after (and one interval), then one per 100 ms with a quarter
  // second of tolerance (2 at once at most), not the 1 s burst (10 at once after every
  // pause drew the 429s of a server counting 10 per rolling second).
  const TimePoint t1 = t0 + 1040ms;
  const Decision d = limiter.try_acquire(one, t0 + 40ms);
  EXPECT_EQ(d.blocked_by, Dimension::requests_per_minute);
  EXPECT_EQ(d.not_before, t1);
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(limiter.try_acquire(one, t1 + i * 100ms).admitted()) << i;
    EXPECT_FALSE(limiter.try_acquire(one, t1 + i * 100ms).admitted()) << i;
  }
  const TimePoint later = t1 + 10s;  // after a pause: 2 at once, not 10
  EXPECT_TRUE(limiter.try_acquire(one, later).admitted());
  EXPECT_TRUE(limiter.try_acquire(one, later).admitted());
  EXPECT_FALSE(limiter.try_acquire(one, later).admitted());
}

// The 429s of a server enforcing a shorter period (their remaining said the minute had
// room) did not count against its minute: their permits go back to the window, so the
// refused requests of the first burst do not take a minute's room from the rest of the
// job; not to the pace, which stands for the shorter period.
TEST(WholeWindow, RefusedWithRoomLeftGiveTheirPermitsBack) {
  ManualClock clock;
  auto limiter = whole_window(Limits{600, 0, 0, 0});
  const TimePoint t0 = clock.now();
  std::vector<Grant> burst;
  for (int i = 0; i < 64; ++i) burst.push_back(limiter.try_acquire(one, t0).grant);
  RateLimitHeaders h;
  h.remaining_requests = 590;  // the server admitted 10; the minute has room
  ASSERT_TRUE(limiter.minute_had_room(h, one));
  ASSERT_TRUE(limiter.on_rate_limited(h, t0 + 40ms));
  for (int i = 10; i < 64; ++i) limiter.reconcile_refused_by_shorter_period(burst[static_cast<std::size_t>(i)], t0 + 40ms);
  EXPECT_EQ(limiter.snapshot(t0 + 40ms).requests_last_minute, 10);
  // 590 more fit in the first minute (at the even pace): 600 in all, none refused among them.
  TimePoint t = t0 + 40ms;
  int admitted = 0;
  while (t < t0 + 60s) {
    const Decision d = limiter.try_acquire(one, t);
    if (d.admitted()) {
      ++admitted;
    } else {
      t = d.not_before;
    }
  }
  EXPECT_EQ(admitted, 590);
}

// A request admitted at the even pace and still refused by the shorter period: the pace
// sits on the server's edge (a few ms between our admission and its stamp), so each such
// refusal widens the interval by 0.5%, up to 5%. The burst's refusals say nothing about it.
TEST(WholeWindow, RefusalsAtTheEvenPaceWidenItsInterval) {
  ManualClock clock;
  auto limiter = whole_window(Limits{600, 0, 0, 0});
  const TimePoint t0 = clock.now();
  const Grant burst = limiter.try_acquire(one, t0).grant;
  RateLimitHeaders h;
  h.remaining_requests = 590;
  ASSERT_TRUE(limiter.on_rate_limited(h, t0 + 40ms));
  limiter.reconcile_refused_by_shorter_period(burst, t0 + 40ms);
  // Admits at the pace from t on; returns the grant and moves t to its admission.
  TimePoint t = t0 + 40ms;
  auto next = [&]() {
    for (;;) {
      const Decision x = limiter.try_acquire(one, t);
      if (x.admitted()) return x.grant;
      t = x.not_before;
    }
  };
  auto gap_ms = [&]() {
    next();
    const TimePoint a = t;
    next();
    return std::chrono::duration<double, std::milli>(t - a).count();
  };
  for (int i = 0; i < 5; ++i) next();  // past the tolerance
  EXPECT_NEAR(gap_ms(), 100, 1e-3);     // the burst's refusal: unchanged
  limiter.reconcile_refused_by_shorter_period(next(), t + 40ms);
  EXPECT_NEAR(gap_ms(), 100.5, 1e-3);
  for (int i = 0; i < 20; ++i) limiter.reconcile_refused_by_shorter_period(next(), t + 40ms);
  EXPECT_NEAR(gap_ms(), 105, 1e-3);  // at most 5%
}

TEST(WholeWindow, MinuteHadRoomNeedsRoomForTheRequest) {
  auto limiter = whole_window(Limits{600, 100000, 0, 0});
  RateLimitHeaders h;
  EXPECT_FALSE(limiter.minute_had_room(h, {1, 100}));  // nothing known
  h.remaining_requests = 5;
  h.remaining_tokens = 50;
  EXPECT_FALSE(limiter.minute_had_room(h, {1, 100}));  // the tokens bind: a minute limit
  EXPECT_TRUE(limiter.minute_had_room(h, {1, 50}));
  h.remaining_requests = 0;
  EXPECT_FALSE(limiter.minute_had_room(h, {1, 50}));
  // Without remaining in the 429, the last answer's count.
  RateLimitHeaders ok;
  ok.remaining_requests = 300;
  limiter.observe(ok, TimePoint{});
  EXPECT_TRUE(limiter.minute_had_room(RateLimitHeaders{}, {1, 0}));
}

// A bucket refilling on a TPM-bound job: a 429 with 100 tokens left for a request of 250
// is the minute spent, not a shorter period (it switched an embeddings job against a
// bucket server to even pacing: 87.7 s for 60 s of work).
TEST(WholeWindow, A429WithTooLittleRemainingForTheRequestKeepsTheWindow) {
  ManualClock clock;
  auto limiter = whole_window(Limits{600, 100000, 0, 0});
  const TimePoint t0 = clock.now();
  RateLimitHeaders h;
  h.remaining_requests = 200;
  h.remaining_tokens = 100;
  EXPECT_FALSE(limiter.on_rate_limited(h, t0, Cost{1, 250}));
  EXPECT_FALSE(limiter.even_pacing());
  EXPECT_TRUE(limiter.on_rate_limited(h, t0, Cost{1, 100}));
}

// A bucket refills between the admissions an answer's count covers and the answer: 67
// tokens in 40 ms at 100,000/min, while the requests count falls by less than one. That is
// no proof of a cheaper charge (an embeddings job learned 45 below a correct model and drew
// 22 429s from its bucket server): the refill the elapsed time allows is added back first.
TEST(LearnCharge, ABucketsRefillIsNoCheaperCharge) {
  ManualClock clock;
  const TimePoint t0 = clock.now();
  RateLimiter limiter(Limits{}, /*learn=*/true, LimiterOptions{});
  Grant probe = limiter.try_acquire({1, 250}, t0).grant;
  limiter.observe(counted(1, 250), t0 + 40ms, probe);
  limiter.reconcile(probe, {1, 250}, t0 + 40ms);
  Grant second = limiter.try_acquire({1, 250}, t0 + 40ms).grant;
  Grant third = limiter.try_acquire({1, 250}, t0 + 40ms).grant;
  // The server counted the probe and this one (the second had not reached it), less the
  // 67 tokens its bucket refilled in between: 433 for two requests the model charges 250.
  limiter.observe(counted(2, 500 - 67), t0 + 80ms, third);
  EXPECT_EQ(limiter.snapshot(t0).learned_extra_tokens, 0);
  (void)second;
}

TEST(WholeWindow, A429WithNothingRemainingKeepsTheWindow) {
  ManualClock clock;
  auto limiter = whole_window(Limits{600, 0, 0, 0});
  const TimePoint t0 = clock.now();
  ASSERT_TRUE(limiter.try_acquire(one, t0).admitted());
  RateLimitHeaders h;
  h.remaining_requests = 0;  // the minute is spent (another client): not a shorter period
  h.reset_requests = 10s;
  EXPECT_FALSE(limiter.on_rate_limited(h, t0 + 40ms));
  EXPECT_FALSE(limiter.even_pacing());
  // An earlier answer's remaining counts when the 429 carries none.
  RateLimitHeaders ok;
  ok.remaining_requests = 598;
  limiter.observe(ok, t0 + 50ms);
  EXPECT_TRUE(limiter.on_rate_limited(RateLimitHeaders{}, t0 + 60ms));
}

TEST(WholeWindow, BurstOptionPacesEvenlyFromTheStart) {
  ManualClock clock;
  LimiterOptions options;
  options.pacing = LimiterOptions::Pacing::even;
  RateLimiter limiter(Limits{600, 0, 0, 0}, false, options);
  const TimePoint t0 = clock.now();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(limiter.try_acquire(one, t0).admitted());
  EXPECT_FALSE(limiter.try_acquire(one, t0).admitted());
}

// Azure sends x-ratelimit-remaining-* but no limit headers: the probe's answer, sent from
// an empty window, gives the limit (remaining + what the probe was charged).
TEST(LearnFromRemaining, LimitWithoutALimitHeader) {
  ManualClock clock;
  const TimePoint t0 = clock.now();
  Probed p(t0);
  RateLimiter& limiter = p.limiter;
  RateLimitHeaders h;
  h.remaining_requests = 299;
  h.remaining_tokens = 49900;
  limiter.observe(h, t0 + 40ms, p.probe);
  EXPECT_EQ(limiter.limits().requests_per_minute, 300);
  EXPECT_EQ(limiter.limits().tokens_per_minute, 50000);
  EXPECT_TRUE(limiter.snapshot(t0).limits_from_remaining);
  // Then the window's room goes at once, and no more.
  int admitted = 0;
  while (limiter.try_acquire({1, 100}, t0 + 40ms).admitted()) ++admitted;
  EXPECT_EQ(admitted, 299);
}

TEST(LearnFromRemaining, OnlyFromAnEmptyWindow) {
  ManualClock clock;
  const TimePoint t0 = clock.now();
  Probed p(t0);
  RateLimiter& limiter = p.limiter;
  RateLimitHeaders h;
  h.remaining_requests = 299;
  limiter.observe(h, t0 + 40ms, p.probe);
  ASSERT_EQ(limiter.limits().requests_per_minute, 300);
  Decision d;
  for (int i = 0; i < 10; ++i) d = limiter.try_acquire({1, 100}, t0 + 40ms);
  ASSERT_TRUE(d.admitted());
  // An answer for a request admitted into a busy window does not raise it (others' requests
  // may be what made the server's count differ from ours).
  h.remaining_requests = 400;
  limiter.observe(h, t0 + 80ms, d.grant);
  EXPECT_EQ(limiter.limits().requests_per_minute, 300);
  // After a quiet spell (the window empty again) it may: the server's limit was raised.
  const Decision later = limiter.try_acquire({1, 100}, t0 + 70s);
  ASSERT_TRUE(later.admitted());
  h.remaining_requests = 399;
  limiter.observe(h, t0 + 70s, later.grant);
  EXPECT_EQ(limiter.limits().requests_per_minute, 400);
}

TEST(LearnFromRemaining, GroqsRequestHeadersArePerDay) {
  ManualClock clock;
  const TimePoint t0 = clock.now();
  Probed groq(t0);
  RateLimiter& limiter = groq.limiter;
  RateLimitHeaders h;
  h.limit_requests = 14400;
  h.remaining_requests = 14399;
  h.reset_requests = 2min;
  h.limit_tokens = 6000;
  h.remaining_tokens = 5900;
  limiter.observe(for_provider(h, Provider::groq), t0 + 40ms, groq.probe);
  EXPECT_EQ(limiter.limits().requests_per_minute, 0);  // not 14,400 a minute
  EXPECT_EQ(limiter.limits().requests_per_day, 14400);
  EXPECT_EQ(limiter.limits().tokens_per_minute, 6000);
  // OpenAI's reading of the same headers: per minute.
  Probed openai(t0);
  openai.limiter.observe(for_provider(h, Provider::openai), t0 + 40ms, openai.probe);
  EXPECT_EQ(openai.limiter.limits().requests_per_minute, 14400);
}

TEST(LearnFromRemaining, NoneDialectDropsEveryLimitHeader) {
  RateLimitHeaders h;
  h.limit_requests = 100;
  h.remaining_tokens = 5;
  h.retry_after = 2s;
  const RateLimitHeaders none = for_provider(h, Provider::none);
  EXPECT_FALSE(none.limit_requests);
  EXPECT_FALSE(none.remaining_tokens);
  EXPECT_EQ(none.retry_after, Duration{2s});
}

// A server that charges more than the model says (here 500 a request against our 100)
// shows it in remaining: later reservations carry the learned extra, so the window fills
// at the server's count before 429s pile up.
TEST(LearnCharge, AServerThatChargesMoreRaisesTheCharge) {
  ManualClock clock;
  auto limiter = whole_window(Limits{0, 10000, 0, 0});
  const TimePoint t0 = clock.now();
  std::vector<Grant> grants;
  for (int i = 0; i < 4; ++i) {
    const Decision d = limiter.try_acquire({1, 100}, t0);
    ASSERT_TRUE(d.admitted());
    grants.push_back(d.grant);
  }
  RateLimitHeaders h;
  h.limit_tokens = 10000;
  h.remaining_tokens = 10000 - 4 * 500;  // the server counted 500 for each of the four
  limiter.observe(h, t0 + 40ms, grants.back());
  EXPECT_NEAR(limiter.snapshot(t0).learned_extra_tokens, 400, 1);
  const Decision next = limiter.try_acquire({1, 100}, t0 + 40ms);
  ASSERT_TRUE(next.admitted());
  EXPECT_GE(next.grant.cost.tokens, 499u);
}

TEST(LearnCharge, FewerUsedIsNotTakenForACheaperCharge) {
  ManualClock clock;
  auto limiter = whole_window(Limits{0, 10000, 0, 0});
  const TimePoint t0 = clock.now();
  Decision d = limiter.try_acquire({1, 100}, t0);
  for (int i = 0; i < 3; ++i) d = limiter.try_acquire({1, 100}, t0);
  RateLimitHeaders h;
  h.limit_tokens = 10000;
  h.remaining_tokens = 10000;  // a bucket that refilled, or an answer older than ours
  limiter.observe(h, t0 + 40ms, d.grant);
  EXPECT_EQ(limiter.snapshot(t0).learned_extra_tokens, 0);
  EXPECT_EQ(limiter.try_acquire({1, 100}, t0 + 40ms).grant.cost.tokens, 100u);
}

// A server that charges more than the model (context:4096 for a request without
// max_tokens, where the model says ~76): the probe's own answer sets the charge, before the
// window opens. Before, the charge was learned only once the limit was known, i.e. from a
// later answer: the window first opened at the model's charge (1,300 of them) and the
// server refused all beyond its 24.
TEST(LearnCharge, TheProbesAnswerSetsTheChargeBeforeTheWindowOpens) {
  ManualClock clock;
  const TimePoint t0 = clock.now();
  RateLimiter limiter(Limits{}, /*learn=*/true, LimiterOptions{});
  const Decision probe = limiter.try_acquire({1, 76}, t0);
  ASSERT_TRUE(probe.admitted());
  RateLimitHeaders h = counted(1, 4096);
  h.reset_tokens = 2500ms;  // a bucket: full again in 2.5 s
  Grant answered = probe.grant;
  limiter.observe(h, t0 + 40ms, answered);
  EXPECT_NEAR(limiter.snapshot(t0).learned_extra_tokens, 4020, 1);
  EXPECT_EQ(answered.cost.tokens, 4096u);  // now known to cost that: settled at it
  limiter.reconcile(answered, {1, answered.cost.tokens}, t0 + 40ms);
  int admitted = 0;
  while (limiter.try_acquire({1, 76}, t0 + 40ms).admitted()) ++admitted;
  EXPECT_EQ(admitted, 23);  // 24 in all: what the server counts 4,096 each
  // After the re-sync's record of the probe has expired (a bucket's reset is short), the
  // probe still counts 4,096 in the window: still no room for a 25th.
  EXPECT_GE(limiter.snapshot(t0 + 30s).tokens_last_minute, 24 * 4096);
  EXPECT_FALSE(limiter.try_acquire({1, 76}, t0 + 30s).admitted());
}

// A server that charges less (flat 16 a request, where the model says prompt + 16 =
// 1,516): the probe, alone in the server's window, proves it; the charge falls so that the
// requests limit binds, as it does on the server. Before, only upward corrections were
// learned and this job ran at 66 requests a minute of its 600.
TEST(LearnCharge, AServerThatChargesLessLowersTheCharge) {
  ManualClock clock;
  const TimePoint t0 = clock.now();
  RateLimiter limiter(Limits{}, /*learn=*/true, LimiterOptions{});
  const Decision probe = limiter.try_acquire({1, 1516}, t0);
  ASSERT_TRUE(probe.admitted());
  RateLimitHeaders h = counted(1, 16);
  // 16 - 1,516, plus what a bucket could have refilled in the 40 ms (1,667 tokens a second).
  const double kLearned = 16 - 1516 + 100000 * 0.040 / 60;
  limiter.observe(h, t0 + 40ms, probe.grant);
  EXPECT_NEAR(limiter.snapshot(t0).learned_extra_tokens, kLearned, 1);
  std::vector<Grant> grants;
  for (;;) {
    const Decision d = limiter.try_acquire({1, 1520}, t0 + 40ms);
    if (!d.admitted()) {
      EXPECT_EQ(d.blocked_by, Dimension::requests_per_minute);
      break;
    }
    EXPECT_LE(d.grant.cost.tokens, 90u);
    grants.push_back(d.grant);
  }
  EXPECT_EQ(grants.size(), 599u);
  // Their answers (the server counting 16 each) keep it there: not taken for a server that
  // charges more than our window holds.
  h.remaining_requests = 0;
  h.remaining_tokens = 100000 - 600 * 16;
  limiter.observe(h, t0 + 80ms, grants.back());
  EXPECT_NEAR(limiter.snapshot(t0).learned_extra_tokens, kLearned, 1);
}

// Corrections are learned against the model's charge, not against the corrected one: a
// server first seen charging 16 (learned 1,500 below the model) that then counts 100 a
// request raises the charge to 100, not to 100 over what the window already carried.
TEST(LearnCharge, ACorrectionIsLearnedAgainstTheModelsCharge) {
  ManualClock clock;
  const TimePoint t0 = clock.now();
  RateLimiter limiter(Limits{}, /*learn=*/true, LimiterOptions{});
  const Decision probe = limiter.try_acquire({1, 1516}, t0);
  RateLimitHeaders h = counted(1, 16);
  limiter.observe(h, t0 + 40ms, probe.grant);
  ASSERT_NEAR(limiter.snapshot(t0).learned_extra_tokens, -1433, 1);
  Grant last;
  for (int i = 0; i < 99; ++i) last = limiter.try_acquire({1, 1516}, t0 + 40ms).grant;
  h.remaining_requests = 500;
  h.remaining_tokens = 100000 - 100 * 100;  // the server now counts 100 each
  limiter.observe(h, t0 + 80ms, last);
  EXPECT_NEAR(limiter.snapshot(t0).learned_extra_tokens, -1416, 1);
  EXPECT_NEAR(static_cast<double>(limiter.try_acquire({1, 1516}, t0 + 80ms).grant.cost.tokens), 100, 1);
}

// "Fewer used" proves a cheaper charge only when the server's count holds every request of
// ours it must: a bucket that refilled (the server counts fewer requests than were answered
// before this one) says nothing about the charge.
TEST(LearnCharge, ACheaperChargeNeedsTheServerToCountOurRequests) {
  ManualClock clock;
  const TimePoint t0 = clock.now();
  auto limiter = whole_window(Limits{600, 100000, 0, 0});
  std::vector<Grant> first;
  for (int i = 0; i < 10; ++i) first.push_back(limiter.try_acquire({1, 1000}, t0).grant);
  for (const Grant& g : first) limiter.reconcile(g, {1, 1000}, t0 + 40ms);
  const Decision d = limiter.try_acquire({1, 1000}, t0 + 50ms);
  ASSERT_TRUE(d.admitted());
  EXPECT_EQ(d.grant.settled_requests_before, 10);
  // A bucket that counts none of the 11 requests (it refilled): no proof of anything.
  limiter.observe(counted(0, 1000), t0 + 90ms, d.grant);
  EXPECT_EQ(limiter.snapshot(t0).learned_extra_tokens, 0);
  // A server that counted all 11, at 100 tokens each, proves it (less what a bucket could
  // have refilled since the oldest of them: 140 ms, 233 tokens).
  const Decision e = limiter.try_acquire({1, 1000}, t0 + 100ms);
  ASSERT_TRUE(e.admitted());
  limiter.observe(counted(11, 11 * 100), t0 + 140ms, e.grant);
  EXPECT_NEAR(limiter.snapshot(t0).learned_extra_tokens, (1100 + 233.3 - 11000) / 11, 1);
}

// A charge model that was given is known: never learned below (the window rule holds at
// the server's count), still corrected upwards.
TEST(LearnCharge, AGivenChargeModelIsNotLoweredButStillRaised) {
  ManualClock clock;
  const TimePoint t0 = clock.now();
  LimitsConfig config;
  config.charge = parse_charge_model("input+16");
  LimiterSet set(config);
  RateLimiter& limiter = set.for_model("m");
  const Decision probe = limiter.try_acquire({1, 1516}, t0);
  ASSERT_TRUE(probe.admitted());
  RateLimitHeaders h = counted(1, 16);
  limiter.observe(h, t0 + 40ms, probe.grant);
  EXPECT_EQ(limiter.snapshot(t0).learned_extra_tokens, 0);
  const Decision next = limiter.try_acquire({1, 1516}, t0 + 40ms);
  ASSERT_TRUE(next.admitted());
  h.remaining_requests = 598;
  h.remaining_tokens = 100000 - 2 * 3016;  // both counted at 1,500 over the model
  limiter.observe(h, t0 + 80ms, next.grant);
  EXPECT_NEAR(limiter.snapshot(t0).learned_extra_tokens, 1500, 1);
}

TEST(LimiterSet, RefundRulesSettleAtUsageAndNoneDoesNotProbe) {
  ManualClock clock;
  LimitsConfig config;
  config.defaults = Limits{0, 1000, 0, 0};
  config.model_charges["refunding"] = parse_charge_model("input+16,refund");
  config.learn_from_headers = false;
  LimiterSet set(config);
  const TimePoint t0 = clock.now();
  const Decision a = set.for_model("refunding").try_acquire({1, 1000}, t0);
  ASSERT_TRUE(a.admitted());
  set.for_model("refunding").reconcile(a.grant, {1, 100}, t0 + 1s);
  EXPECT_EQ(set.for_model("refunding").snapshot(t0 + 1s).tokens_last_minute, 100);
  const Decision b = set.for_model("admission").try_acquire({1, 1000}, t0);
  set.for_model("admission").reconcile(b.grant, {1, 100}, t0 + 1s);
  EXPECT_EQ(set.for_model("admission").snapshot(t0 + 1s).tokens_last_minute, 1000);

  LimitsConfig none;
  none.provider = Provider::none;
  LimiterSet headerless(none);
  EXPECT_FALSE(headerless.for_model("m").snapshot(t0).learning);  // no probe to wait for
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(headerless.for_model("m").try_acquire(one, t0).admitted());
}

// A burst's first requests wait for their connections: the server may stamp them later than
// the window margin after their admission. An answer moves the entry to its own slot, so it
// never leaves our window before it leaves the server's.
TEST(WholeWindow, AnAnswerCountsFromWhenItCame) {
  ManualClock clock;
  auto limiter = whole_window(Limits{2, 0, 0, 0});
  const TimePoint t0 = clock.now();
  const Decision a = limiter.try_acquire(one, t0);
  const Decision b = limiter.try_acquire(one, t0);
  ASSERT_TRUE(a.admitted() && b.admitted());
  limiter.reconcile(a.grant, {1, 0}, t0 + 2s);  // answered 2 s later (the server stamped it <= then)
  // b (not answered yet) keeps its admission slot and leaves at ~60.6 s; a not before 62.5 s.
  EXPECT_TRUE(limiter.try_acquire(one, t0 + 60700ms).admitted());
  const Decision d = limiter.try_acquire(one, t0 + 61s);
  ASSERT_FALSE(d.admitted());
  EXPECT_GE(d.not_before - t0, 62s + 500ms);
  EXPECT_EQ(limiter.snapshot(t0 + 61s).requests_last_minute, 2);
}
