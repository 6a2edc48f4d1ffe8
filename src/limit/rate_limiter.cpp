// RateLimiter: GCRA pacing plus a conservative sliding window per dimension. The design
// essay is in include/floodgate/limit/rate_limiter.hpp.
#include "floodgate/limit/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace floodgate::limit {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t kSlotsPerWindow = 600;
constexpr Duration kMinute = 60s;
constexpr Duration kDay = 24h;
constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();
constexpr int kHeaderlessAnswersToStopLearning = 3;
constexpr double kPaceMarginStep = 0.005;
constexpr Duration kFallbackBurst = 250ms;
constexpr double kMaxPaceMargin = 0.05;

std::int64_t ns_of(TimePoint t) noexcept { return t.time_since_epoch().count(); }
TimePoint at_ns(std::int64_t ns) noexcept { return TimePoint{Duration{ns}}; }

bool is_limited(double limit) noexcept { return limit > 0 && std::isfinite(limit); }

// n * T in nanoseconds, rounded up (never admit early), for a limit per minute.
std::int64_t pace_ns(double cost, double limit_per_minute) noexcept {
  const double ns = std::ceil(cost * (static_cast<double>(kMinute.count()) / limit_per_minute));
  return ns >= 9e18 ? std::numeric_limits<std::int64_t>::max() / 4 : static_cast<std::int64_t>(ns);
}

}  // namespace

std::string_view to_string(Dimension d) noexcept {
  switch (d) {
    case Dimension::none: return "none";
    case Dimension::requests_per_minute: return "requests/min";
    case Dimension::tokens_per_minute: return "tokens/min";
    case Dimension::requests_per_day: return "requests/day";
    case Dimension::tokens_per_day: return "tokens/day";
    case Dimension::paused: return "paused";
    case Dimension::learning: return "learning";
  }
  return "none";
}

// ---- Window ---------------------------------------------------------------------------

RateLimiter::Window::Window(Duration window, Duration margin) : slot_(window / kSlotsPerWindow) {
  if (margin.count() < 0) margin = Duration{0};
  // An entry in slot k is live while now < (k + 1) * slot + window + margin. Measured at
  // slot starts (conservative): live while now_slot < k + 1 + ceil((window + margin) / slot).
  const auto span = window + margin;
  const std::int64_t m = (span.count() + slot_.count() - 1) / slot_.count();
  live_slots_ = 1 + m;
  ring_.assign(static_cast<std::size_t>(live_slots_), 0.0);
}

std::int64_t RateLimiter::Window::slot_of(TimePoint t) const noexcept {
  const auto ns = ns_of(t);
  const auto s = slot_.count();
  return ns >= 0 ? ns / s : -((-ns + s - 1) / s);
}

TimePoint RateLimiter::Window::slot_start(std::int64_t slot) const noexcept {
  return at_ns(slot * slot_.count());
}

bool RateLimiter::Window::is_live(std::int64_t slot, std::int64_t now_slot) const noexcept {
  return slot <= head_slot_ && slot > head_slot_ - live_slots_ && now_slot < slot + live_slots_;
}

void RateLimiter::Window::advance(std::int64_t now_slot) {
  if (head_slot_ == INT64_MIN) {
    head_slot_ = now_slot;
    return;
  }
  if (now_slot <= head_slot_) return;
  const std::int64_t size = live_slots_;
  if (now_slot - head_slot_ >= size) {
    std::fill(ring_.begin(), ring_.end(), 0.0);
    sum_ = 0;
  } else {
    for (std::int64_t k = head_slot_ + 1; k <= now_slot; ++k) {
      // The slot k reuses held k - size, which is dead from now_slot >= k on.
      auto& v = ring_[static_cast<std::size_t>(((k % size) + size) % size)];
      sum_ -= v;
      v = 0.0;
    }
    sum_ = std::max(0.0, sum_);
  }
  head_slot_ = now_slot;
}

double RateLimiter::Window::total(std::int64_t now_slot) const {
  if (head_slot_ == INT64_MIN) return 0;
  const std::int64_t size = live_slots_;
  if (now_slot - head_slot_ >= size) return 0;
  double sum = sum_;
  // Slots that have expired between the last advance and now_slot.
  for (std::int64_t k = head_slot_ - size + 1; k <= now_slot - size; ++k) sum -= ring_[static_cast<std::size_t>(((k % size) + size) % size)];
  return std::max(0.0, sum);
}

std::int64_t RateLimiter::Window::earliest_slot_for(double cost, double limit, std::int64_t now_slot) const {
  if (cost > limit) return kNever;
  double excess = total(now_slot) + cost - limit;
  if (excess <= 0 || head_slot_ == INT64_MIN) return now_slot;
  const std::int64_t size = live_slots_;
  const std::int64_t oldest = std::max(head_slot_ - size + 1, now_slot - size + 1);
  for (std::int64_t k = oldest; k <= head_slot_; ++k) {
    excess -= ring_[static_cast<std::size_t>(((k % size) + size) % size)];
    if (excess <= 0) return k + size;  // the first slot at which k no longer counts
  }
  return head_slot_ + size;  // rounding: everything has expired by then
}

std::int64_t RateLimiter::Window::oldest_slot(std::int64_t now_slot) const {
  if (head_slot_ == INT64_MIN) return kNever;
  const std::int64_t size = live_slots_;
  for (std::int64_t k = std::max(head_slot_ - size + 1, now_slot - size + 1); k <= head_slot_; ++k) {
    if (ring_[static_cast<std::size_t>(((k % size) + size) % size)] > 0) return k;
  }
  return kNever;
}

void RateLimiter::Window::add(std::int64_t slot, double cost, std::int64_t now_slot) {
  advance(now_slot);
  slot = std::min(slot, head_slot_);
  if (!is_live(slot, now_slot)) return;
  ring_[static_cast<std::size_t>(((slot % live_slots_) + live_slots_) % live_slots_)] += cost;
  sum_ += cost;
}

void RateLimiter::Window::remove(std::int64_t slot, double cost, std::int64_t now_slot) {
  advance(now_slot);
  if (!is_live(slot, now_slot)) return;
  auto& v = ring_[static_cast<std::size_t>(((slot % live_slots_) + live_slots_) % live_slots_)];
  const double removed = std::min(v, cost);
  v -= removed;
  sum_ = std::max(0.0, sum_ - removed);
}

// ---- RateLimiter ----------------------------------------------------------------------

RateLimiter::RateLimiter(Limits configured, bool learn_from_headers, LimiterOptions options)
    : dims_{Dim{Window(kMinute, options.window_margin)}, Dim{Window(kMinute, options.window_margin)},
            Dim{Window(kDay, options.window_margin)}, Dim{Window(kDay, options.window_margin)}},
      learn_(learn_from_headers),
      options_(options),
      model_tokens_(kMinute, options.window_margin),
      settled_requests_(kMinute, options.window_margin),
      settled_model_tokens_(kMinute, options.window_margin) {
  if (options_.burst.count() < 0) options_.burst = Duration{0};
  burst_ = options_.burst;
  even_ = options_.pacing == LimiterOptions::Pacing::even;
  const double values[4] = {configured.requests_per_minute, configured.tokens_per_minute,
                            configured.requests_per_day, configured.tokens_per_day};
  const Dimension names[4] = {Dimension::requests_per_minute, Dimension::tokens_per_minute,
                              Dimension::requests_per_day, Dimension::tokens_per_day};
  for (std::size_t i = 0; i < 4; ++i) {
    dims_[i].configured = is_limited(values[i]) ? values[i] : 0;
    dims_[i].limit = dims_[i].configured;
    dims_[i].paced = i < 2;
    dims_[i].tat_ns = 0;
    dims_[i].name = names[i];
  }
  // Auto mode starts by learning when a per-minute dimension is unknown.
  learning_ = learn_ && (dims_[0].limit == 0 || dims_[1].limit == 0) && !configured.any();
}

TimePoint RateLimiter::clamp(TimePoint now) const noexcept { return std::max(now, latest_now_); }

// options_.pace_within_window (the gateway's): an even pace that never meets the window rule.
// In any span of the window's live length W (60 s + margin + a slot: how long an admission
// counts), GCRA at interval T admits W/T units plus what its tolerance lets run ahead (the
// burst, or one unit). At T = 60 s / L that is L * W / 60 s + burst > L, so the window holds
// everything back for burst + margin + a slot, and the wait gives the pace its burst back:
// at 600/min with a 1 s burst, 1.6 s without a single admission once a minute (the
// interactive p99 of bench/README.md's lanes under load). So the pace is L per (W + burst):
// T = (W + max(burst, W / L)) / L, 1.7% under the limit at 600/min with a 1 s burst (the
// window alone allowed at most L per W: 1% under it anyway). Off (`run`): T = 60 s / L, and
// a job that saturates the limit meets the window once a minute (same throughput, give or
// take the burst).
double RateLimiter::paced_limit(const Dim& d) const noexcept {
  double per_minute = d.limit;
  if (options_.pace_within_window) {
    const double window_ns = static_cast<double>(d.window.live_span().count());
    const double ahead_ns = std::max(static_cast<double>(burst_.count()), window_ns / d.limit);
    per_minute = d.limit * static_cast<double>(kMinute.count()) / (window_ns + ahead_ns);
  }
  return per_minute / (1.0 + pace_margin_);
}

double RateLimiter::cost_in(const Dim& d, Cost cost) noexcept {
  switch (d.name) {
    case Dimension::requests_per_minute:
    case Dimension::requests_per_day:
      return static_cast<double>(cost.requests);
    default:
      return static_cast<double>(cost.tokens);
  }
}

Decision RateLimiter::decide(Cost cost, TimePoint now) const {
  Decision out;
  TimePoint latest = now;
  Dimension by = Dimension::none;
  auto later = [&](TimePoint t, Dimension d) {
    if (t > latest) {
      latest = t;
      by = d;
    }
  };
  if (paused_until_ > now) later(paused_until_, Dimension::paused);
  if (learning_ && probe_sent_) later(probe_sent_at_ + options_.probe_timeout, Dimension::learning);
  const std::int64_t now_ns = ns_of(now);
  for (const Dim& d : dims_) {
    if (!is_limited(d.limit)) continue;
    const double c = cost_in(d, cost);
    if (c <= 0) continue;
    if (c > d.limit) {
      out.verdict = Decision::Verdict::cannot_fit;
      out.not_before = TimePoint::max();
      out.blocked_by = d.name;
      return out;
    }
    if (d.paced && even_) {
      const std::int64_t n_t = pace_ns(c, paced_limit(d));
      const std::int64_t tolerance = std::max<std::int64_t>(burst_.count(), n_t);
      const std::int64_t allowed_ns = std::max(d.tat_ns, now_ns) + n_t - tolerance;
      if (allowed_ns > now_ns) later(at_ns(allowed_ns), d.name);
    }
    const std::int64_t now_slot = d.window.slot_of(now);
    const std::int64_t slot = d.window.earliest_slot_for(c, d.limit, now_slot);
    if (slot > now_slot) later(d.window.slot_start(slot), d.name);
  }
  if (latest > now) {
    out.verdict = Decision::Verdict::wait;
    out.not_before = latest;
    out.blocked_by = by;
  } else {
    out.verdict = Decision::Verdict::admitted;
    out.not_before = now;
    out.grant = Grant{cost, now};
  }
  return out;
}

Cost RateLimiter::charged(Cost cost) const noexcept {
  if (extra_tokens_ == 0 || cost.tokens == 0) return cost;
  // A learned correction below the model never takes a request under 1 token.
  const double t = static_cast<double>(cost.tokens) + std::ceil(extra_tokens_ * static_cast<double>(cost.requests));
  cost.tokens = t < 1 ? 1 : t >= 9e18 ? std::numeric_limits<std::uint64_t>::max() / 4 : static_cast<std::uint64_t>(t);
  return cost;
}

Decision RateLimiter::peek(Cost cost, TimePoint now) const { return decide(charged(cost), clamp(now)); }

Decision RateLimiter::try_acquire(Cost cost, TimePoint now) {
  now = clamp(now);
  latest_now_ = now;
  const std::uint64_t model_tokens = cost.tokens;
  cost = charged(cost);
  Decision decision = decide(cost, now);
  if (!decision.admitted()) return decision;
  const std::int64_t now_ns = ns_of(now);
  const std::int64_t minute_slot = dims_[0].window.slot_of(now);
  decision.grant.requests_before = dims_[0].window.total(minute_slot);
  decision.grant.tokens_before = dims_[1].window.total(minute_slot);
  decision.grant.model_tokens = model_tokens;
  decision.grant.settled_requests_before = settled_requests_.total(minute_slot);
  decision.grant.settled_model_tokens_before = settled_model_tokens_.total(minute_slot);
  if (model_tokens > 0) model_tokens_.add(minute_slot, static_cast<double>(model_tokens), minute_slot);
  for (Dim& d : dims_) {
    const double c = cost_in(d, cost);
    if (c <= 0) continue;
    const std::int64_t now_slot = d.window.slot_of(now);
    d.window.add(now_slot, c, now_slot);  // recorded even while unlimited: learning needs it
    if (d.paced && even_ && is_limited(d.limit)) d.tat_ns = std::max(d.tat_ns, now_ns) + pace_ns(c, paced_limit(d));
  }
  if (learning_ && !probe_sent_) {
    probe_sent_ = true;
    probe_sent_at_ = now;
  } else if (learning_) {
    probe_sent_at_ = now;  // the probe timed out: this one is the next probe
  }
  return decision;
}

void RateLimiter::record_admitted(Cost cost, TimePoint at, TimePoint now) {
  now = clamp(now);
  latest_now_ = now;
  at = std::min(at, now);
  for (Dim& d : dims_) {
    const double c = cost_in(d, cost);
    if (c <= 0) continue;
    d.window.add(d.window.slot_of(at), c, d.window.slot_of(now));
    if (d.paced && even_ && is_limited(d.limit)) d.tat_ns = std::max(d.tat_ns, ns_of(at)) + pace_ns(c, paced_limit(d));
  }
  if (cost.tokens > 0) model_tokens_.add(model_tokens_.slot_of(at), static_cast<double>(cost.tokens), model_tokens_.slot_of(now));
}

// Settles one window entry of `reserved` admitted in `grant_slot` at `used`.
void RateLimiter::Window::settle(std::int64_t grant_slot, std::int64_t now_slot, double reserved, double used) {
  if (grant_slot < now_slot && reserved > 0) {
    // Answered in a later slot: the server stamped it somewhere between the admission and
    // now (connections opening at the start of a burst delayed some by over half a
    // second on a loaded machine). Counted from now on, it leaves our window no earlier
    // than the server's.
    remove(grant_slot, reserved, now_slot);
    if (used > 0) add(now_slot, used, now_slot);
  } else if (used < reserved) {
    remove(grant_slot, reserved - used, now_slot);
  } else if (used > reserved) {
    add(grant_slot, used - reserved, now_slot);
  }
}

void RateLimiter::reconcile(const Grant& grant, Cost actual, TimePoint now) {
  now = clamp(now);
  latest_now_ = now;
  const std::int64_t now_ns = ns_of(now);
  double used_tokens = 0;
  for (Dim& d : dims_) {
    const double reserved = cost_in(d, grant.cost);
    double used = cost_in(d, actual);
    // 0 means the server did no work for it (refused, or never sent): always given back.
    if (used < reserved && used > 0 && options_.refund == LimiterOptions::Refund::refused_only) used = reserved;
    if (d.name == Dimension::tokens_per_minute) used_tokens = used;
    d.window.settle(d.window.slot_of(grant.admitted_at), d.window.slot_of(now), reserved, used);
    if (used < reserved) {
      if (d.paced && even_ && is_limited(d.limit)) d.tat_ns = std::max(d.tat_ns - pace_ns(reserved - used, paced_limit(d)), now_ns);
    } else if (used > reserved) {
      if (d.paced && even_ && is_limited(d.limit)) {
        // An excess beyond a day's pace is not worth waiting for (and must not overflow).
        const std::int64_t cap = now_ns + std::chrono::duration_cast<Duration>(kDay).count();
        d.tat_ns = std::min(cap, std::max(d.tat_ns, now_ns - burst_.count()) + std::min(pace_ns(used - reserved, paced_limit(d)), cap - now_ns));
      }
    }
  }
  // The same entry's model charge: what was settled, less the learned correction it carried.
  if (grant.model_tokens > 0) {
    const double model = static_cast<double>(grant.model_tokens);
    const double correction = static_cast<double>(grant.cost.tokens) - model;
    const double used_model = used_tokens > 0 ? std::max(0.0, used_tokens - correction) : 0.0;
    const std::int64_t now_slot = model_tokens_.slot_of(now);
    const std::int64_t grant_slot = model_tokens_.slot_of(grant.admitted_at);
    model_tokens_.settle(grant_slot, now_slot, model, used_model);
    // Answered, so counted by the server (refused requests are not: their tokens come back),
    // at its admission slot. It may stay in this window a little longer than in the
    // server's: the requests check in learn_charge() sees that.
    if (used_model > 0 && actual.requests > 0) {
      settled_requests_.add(grant_slot, static_cast<double>(actual.requests), now_slot);
      settled_model_tokens_.add(grant_slot, used_model, now_slot);
    }
  }
}

void RateLimiter::set_limit(Dim& d, double limit) { d.limit = is_limited(limit) ? limit : 0; }

void RateLimiter::resync(Dim& d, std::int64_t remaining, std::optional<Duration> reset, TimePoint now) {
  if (!is_limited(d.limit)) return;
  const std::int64_t now_slot = d.window.slot_of(now);
  const double ours = d.limit - d.window.total(now_slot);
  const double diff = std::floor(ours - static_cast<double>(remaining));
  if (diff < 1) return;
  // Keep the difference until the server says its bucket is full again.
  const Duration period = d.paced ? Duration{kMinute} : Duration{kDay};
  const Duration keep = reset ? std::min(*reset, period) : period;
  const std::int64_t expiry_slot = d.window.slot_of(now + keep);
  const std::int64_t slot = std::min(now_slot, expiry_slot - d.window.live_slots() + 1);
  d.window.add(slot, diff, now_slot);
  if (d.paced && even_) {
    const std::int64_t now_ns = ns_of(now);
    std::int64_t tat = std::max(d.tat_ns, now_ns) + pace_ns(diff, paced_limit(d));
    if (reset) tat = std::min(tat, std::max(d.tat_ns, now_ns + reset->count()));
    d.tat_ns = std::max(d.tat_ns, tat);
  }
}

void RateLimiter::learn_limits(const RateLimitHeaders& headers) {
  if (!learn_) return;
  auto learn = [&](Dim& d, std::optional<std::int64_t> server) {
    if (!server || *server <= 0) return;
    const auto value = static_cast<double>(*server);
    set_limit(d, d.configured > 0 ? std::min(d.configured, value) : value);
  };
  learn(dims_[0], headers.limit_requests);
  learn(dims_[1], headers.limit_tokens);
  learn(dims_[2], headers.limit_requests_day);
  if (headers.limit_requests) from_remaining_[0] = false;
  if (headers.limit_tokens) from_remaining_[1] = false;
}

// The learning phase and the re-sync (after anything learned from the same answer).
void RateLimiter::observe_remaining(const RateLimitHeaders& headers, TimePoint now) {
  if (learning_) {
    // A response with rate-limit headers ends the learning phase. One without (a
    // connection error, or a server that sends none) lets the next probe go; after a few
    // such answers the server is taken to send no limits at all.
    if (!headers.empty() || ++headerless_answers_ >= kHeaderlessAnswersToStopLearning) {
      learning_ = false;
    } else {
      probe_sent_ = false;
    }
  }
  if (headers.remaining_requests) {
    resync(dims_[0], *headers.remaining_requests, headers.reset_requests, now);
    last_remaining_requests_ = headers.remaining_requests;
  }
  if (headers.remaining_tokens) {
    resync(dims_[1], *headers.remaining_tokens, headers.reset_tokens, now);
    last_remaining_tokens_ = headers.remaining_tokens;
  }
  if (headers.remaining_requests_day) resync(dims_[2], *headers.remaining_requests_day, headers.reset_requests_day, now);
}

void RateLimiter::observe(const RateLimitHeaders& headers, TimePoint now) {
  now = clamp(now);
  latest_now_ = now;
  learn_limits(headers);
  observe_remaining(headers, now);
}

void RateLimiter::observe(const RateLimitHeaders& headers, TimePoint now, Grant& answered) {
  now = clamp(now);
  latest_now_ = now;
  // The limits first: the probe's answer then also teaches the charge, before the window
  // opens at the model's charge.
  learn_limits(headers);
  learn_from_answer(headers, answered, now);
  // The answered request is now known to cost more than it reserved (a correction learned
  // from this answer or another since its admission): its entry counts that, before the
  // re-sync, which then sees no difference to keep. Kept only by the re-sync, the probe's
  // true charge left the window when the server's reset came (a bucket's: 2.5 s).
  const std::uint64_t known = charged(Cost{answered.cost.requests, answered.model_tokens}).tokens;
  if (answered.model_tokens > 0 && known > answered.cost.tokens) {
    const auto extra = static_cast<double>(known - answered.cost.tokens);
    for (const std::size_t i : {std::size_t{1}, std::size_t{3}}) {
      Window& w = dims_[i].window;
      w.add(w.slot_of(answered.admitted_at), extra, w.slot_of(now));
    }
    answered.cost.tokens = known;  // model_tokens stays: the correction is what it carries beyond
  }
  observe_remaining(headers, now);
}

// A limit the server does not send (Azure): remaining + what we had charged in the window
// when this request was admitted is a lower bound of the limit, exact when the window was
// empty then (at the start, after a quiet spell): learned only then, and only upwards, so
// it never passes the server's limit by more than the charge estimate of one request.
// Then the charge (the essay, "Learning from remaining").
void RateLimiter::learn_from_answer(const RateLimitHeaders& headers, const Grant& g, TimePoint now) {
  const double requests_then = g.requests_before + static_cast<double>(g.cost.requests);
  const double tokens_then = g.tokens_before + static_cast<double>(g.cost.tokens);
  if (learn_) {
    auto infer = [&](std::size_t i, std::optional<std::int64_t> limit_header, std::optional<std::int64_t> remaining, double before,
                     double ours_then) {
      Dim& d = dims_[i];
      if (limit_header || !remaining || d.configured > 0) return;
      if (d.limit > 0 && !from_remaining_[i]) return;
      if (before > 0) return;  // not from a quiet window: others' requests may be in it
      const double candidate = static_cast<double>(*remaining) + ours_then;
      if (candidate > d.limit) {
        set_limit(d, candidate);
        from_remaining_[i] = true;
      }
    };
    infer(0, headers.limit_requests, headers.remaining_requests, g.requests_before, requests_then);
    infer(1, headers.limit_tokens, headers.remaining_tokens, g.tokens_before, tokens_then);
  }
  if (options_.learn_charge) learn_charge(headers, g, now);
}

void RateLimiter::learn_charge(const RateLimitHeaders& headers, const Grant& g, TimePoint now) {
  if (!headers.remaining_tokens || g.cost.tokens == 0 || g.model_tokens == 0) return;
  // The server's limit: its header, else ours (configured, or inferred from remaining).
  const double limit_tokens = headers.limit_tokens ? static_cast<double>(*headers.limit_tokens) : dims_[1].limit;
  if (!is_limited(limit_tokens)) return;
  // What the server had counted when it admitted this request, the request included.
  const double server_used = limit_tokens - static_cast<double>(*headers.remaining_tokens);
  const std::int64_t now_slot = dims_[1].window.slot_of(now);

  // More than our whole window (requests in flight included) by over half a request's
  // charge (below that it is rounding and timing noise): the server's average charge over
  // our window is at least server_used / requests.
  const double requests_now = std::max(g.requests_before + static_cast<double>(g.cost.requests), dims_[0].window.total(now_slot));
  if (server_used - dims_[1].window.total(now_slot) > static_cast<double>(g.cost.tokens) / 2 && requests_now > 0) {
    const double at_least = (server_used - model_tokens_.total(now_slot)) / requests_now;
    if (at_least > extra_tokens_) extra_tokens_ = std::min(at_least, limit_tokens);
    return;
  }
  if (!options_.learn_charge_down) return;

  // Fewer: only from an answer that proves it (the essay). What the server must have
  // counted of ours: the requests answered before this one was admitted, and this one.
  const double must_requests = g.settled_requests_before + static_cast<double>(g.cost.requests);
  const double must_model = g.settled_model_tokens_before + static_cast<double>(g.model_tokens);
  bool proves = false;
  if (headers.remaining_requests) {
    const double limit_requests = headers.limit_requests ? static_cast<double>(*headers.limit_requests) : dims_[0].limit;
    proves = is_limited(limit_requests) && limit_requests - static_cast<double>(*headers.remaining_requests) >= must_requests;
  } else {
    proves = g.requests_before == 0 && g.tokens_before == 0;  // admitted into an empty window: the probe
  }
  if (!proves) return;
  const double tolerance = std::max(2.0, 0.05 * static_cast<double>(g.model_tokens));
  if ((server_used - must_model) / must_requests >= extra_tokens_ - tolerance) return;  // nothing to lower
  // A bucket refills between those admissions and this answer: its count may be lower by
  // up to limit x elapsed / 60 s (1,667 tokens a second at 100,000/min, while the requests
  // count fell by less than one and passed the check above). Elapsed since the oldest of
  // those requests; unknown (taken as the minute: no proof) if some left our window since.
  Duration elapsed = now - g.admitted_at;
  if (g.settled_requests_before > 0) {
    const std::int64_t settled_slot = settled_requests_.slot_of(now);
    const std::int64_t oldest = settled_requests_.oldest_slot(settled_slot);
    if (settled_requests_.total(settled_slot) + 0.5 < g.settled_requests_before || oldest == kNever) return;
    elapsed = std::max(elapsed, now - settled_requests_.slot_start(oldest));
  }
  const double refill = limit_tokens * std::chrono::duration<double>(elapsed).count() / 60.0;
  const double at_most = (server_used + refill - must_model) / must_requests;
  if (at_most < extra_tokens_ - tolerance) extra_tokens_ = at_most;
}

bool RateLimiter::on_rate_limited(const RateLimitHeaders& headers, TimePoint now, Cost cost) {
  if (even_) return false;
  auto room = [](std::optional<std::int64_t> in_429, std::optional<std::int64_t> before, std::uint64_t need) {
    const auto r = in_429 ? in_429 : before;
    return !r || (*r >= 0 && static_cast<std::uint64_t>(*r) >= need);
  };
  // `remaining` had no room for this request: the minute's count is spent (a bucket not yet
  // refilled, another client, a lower limit than ours): the re-sync handles that. Room
  // left: a shorter period binds.
  if (!room(headers.remaining_requests, last_remaining_requests_, std::max<std::uint64_t>(cost.requests, 1)) ||
      !room(headers.remaining_tokens, last_remaining_tokens_, std::max<std::uint64_t>(cost.tokens, 1))) {
    return false;
  }
  // Nothing more until the server says its shorter period has room (retry-after): sent
  // sooner, the next requests met the burst's quantum still full.
  const Duration hold = std::min<Duration>(headers.retry_after.value_or(Duration{0}), kMinute);
  fall_back_to_even_pacing(now, hold);
  return true;
}

void RateLimiter::fall_back_to_even_pacing(TimePoint now, Duration hold) {
  now = clamp(now);
  if (even_) return;
  even_ = true;
  // A server that refuses bursts inside the minute gets almost none: one request per
  // emission interval from now + hold on (with a 1 s burst, the pace ran a second's worth
  // ahead after every pause, and a server counting 10 per rolling second refused those).
  // A quarter second of tolerance keeps the pace anchored when the event loop wakes late
  // (with none, every late wake-up was lost for good: 121 s for 90 s of pace at load 8).
  burst_ = std::min(options_.burst, kFallbackBurst);
  even_since_ = now + std::max(hold, Duration{0});
  // The tolerance counts as spent: the first request goes one interval after the hold.
  for (Dim& d : dims_) d.tat_ns = std::max(d.tat_ns, ns_of(even_since_) + burst_.count());
}

void RateLimiter::reconcile_refused_by_shorter_period(const Grant& grant, TimePoint now) {
  now = clamp(now);
  latest_now_ = now;
  // Admitted at the even pace and still refused: the pace sits on the server's edge (our
  // admissions and its stamps differ by a few ms). Each such refusal widens the interval by
  // 0.5%, up to 5%. (The burst's refusals, admitted before the fall-back, say nothing.)
  if (even_ && grant.admitted_at >= even_since_) pace_margin_ = std::min(kMaxPaceMargin, pace_margin_ + kPaceMarginStep);
  for (Dim& d : dims_) {
    d.window.settle(d.window.slot_of(grant.admitted_at), d.window.slot_of(now), cost_in(d, grant.cost), 0);
  }
  if (grant.model_tokens > 0) {
    model_tokens_.settle(model_tokens_.slot_of(grant.admitted_at), model_tokens_.slot_of(now), static_cast<double>(grant.model_tokens), 0);
  }
}

bool RateLimiter::minute_had_room(const RateLimitHeaders& headers, Cost cost) const noexcept {
  auto room = [](std::optional<std::int64_t> in_429, std::optional<std::int64_t> before, std::uint64_t need) {
    const auto r = in_429 ? in_429 : before;
    return r && *r >= 0 && static_cast<std::uint64_t>(*r) >= need;
  };
  const bool requests = room(headers.remaining_requests, last_remaining_requests_, cost.requests);
  const bool tokens = room(headers.remaining_tokens, last_remaining_tokens_, cost.tokens);
  // Every minute figure the server sends must have had room; at least one must be known.
  const bool any = headers.remaining_requests || last_remaining_requests_ || headers.remaining_tokens || last_remaining_tokens_;
  const bool requests_ok = requests || !(headers.remaining_requests || last_remaining_requests_);
  const bool tokens_ok = tokens || !(headers.remaining_tokens || last_remaining_tokens_);
  return any && requests_ok && tokens_ok;
}

void RateLimiter::pause_until(TimePoint until) { paused_until_ = std::max(paused_until_, until); }

Limits RateLimiter::limits() const noexcept {
  return Limits{dims_[0].limit, dims_[1].limit, dims_[2].limit, dims_[3].limit};
}

LimiterSnapshot RateLimiter::snapshot(TimePoint now) const {
  now = clamp(now);
  LimiterSnapshot s;
  s.limits = limits();
  s.requests_last_minute = dims_[0].window.total(dims_[0].window.slot_of(now));
  s.tokens_last_minute = dims_[1].window.total(dims_[1].window.slot_of(now));
  s.requests_last_day = dims_[2].window.total(dims_[2].window.slot_of(now));
  s.tokens_last_day = dims_[3].window.total(dims_[3].window.slot_of(now));
  s.paused_until = paused_until_;
  s.learning = learning_;
  s.even_pacing = even_;
  s.learned_extra_tokens = extra_tokens_;
  s.limits_from_remaining = from_remaining_[0] || from_remaining_[1];
  return s;
}

}  // namespace floodgate::limit
