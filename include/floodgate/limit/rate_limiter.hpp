#pragma once
// RateLimiter: one model's admission control over four dimensions (requests/min,
// tokens/min, requests/day, tokens/day). Not thread-safe: the engine's single event loop
// owns it. Every method takes `now`; nothing reads a clock, so tests drive it with plain
// TimePoints (or ManualClock::now()) and never sleep.
//
// How is the RateLimiter designed, and why?
//
// *The whole window, then the pace only if the server asks for it.* A provider's "5,000
// requests per minute" may be enforced as a sliding 60-second window, as a bucket of
// 5,000 refilled continuously, or as a much smaller bucket (60,000/min as 1,000 per
// second). Under the first two the minute's quota may go at once: measured on the issue's
// job (900 requests at 600/min, 40 ms latency), sending 600 at once and the rest when the
// window lets them takes ~62 s, the even pace with a 1 s burst 89.8 s. So each per-minute
// dimension keeps
//  1. The window (always). Admitted costs are kept in a ring of 600 time slots covering
//     the last minute (100 ms each); a cost is admitted only if what the last 60 s (+ a
//     small margin, default 500 ms, for the delay between admitting and the server's
//     stamp) hold, plus it, stays <= L. A slot counts until its *end* + 60 s + margin: we
//     may overestimate the window, never underestimate it. So the hard invariant holds
//     for any sequence of calls: no 60-second window ever holds more than L admitted
//     cost. Keeping every 60 s window within L also keeps a continuously refilled bucket
//     of depth L within its limit (over any span d, the window allows at most
//     (floor(d/60 s) + 1)·L, the bucket L + d·L/60 s), so the whole window is safe under
//     both.
//  2. Pacing (GCRA), only in even mode (--burst, or after the fall-back below). With L
//     per minute the emission interval is T = 60 s / L per unit of cost (with
//     pace_within_window, (W + burst) / L, W the window's live span: see the option); the theoretical
//     arrival time TAT records where the steady pace has got to. A cost n is admitted at
//     `now` if max(TAT, now) + n*T <= now + max(burst, n*T), and then TAT = max(TAT, now)
//     + n*T. A cost larger than the burst goes when the pace has caught up, then pays for
//     itself by pushing TAT ahead. The pace conforms to any bucket at least `burst` deep.
// The fall-back: a server that enforces a shorter period answers a burst with 429s
// although its `remaining` (in the 429, or the last answer before it) says the minute has
// room. on_rate_limited() then switches the model to even pacing from now on (TAT = now),
// losing nothing (the 429s are retried) and keeping every window rule.
// The per-day dimensions apply only the window rule (600 slots of 144 s over 24 h): a
// daily quota is a budget to spend, not a pace to keep, so the day is not spread evenly.
//
// *Reserve, then settle: the pacing charge.* try_acquire() reserves every dimension at
// once when it admits, or none. Checking without reserving lets concurrent requests all see
// the same room and overshoot together. The tokens reserved are the request's *pacing
// charge*: what the provider counts against tokens/min when it admits the request (its
// charge model, limit/charge_model.hpp: for OpenAI the input estimate + (max_completion_tokens
// | max_tokens | 16) x n), not its worst case (budgets keep that) and not its usage (the
// summary and the cost report that). When the attempt ends, reconcile() settles it in both
// the pace and the window slot where the reservation was recorded: a request the server
// refused without doing any work (a 429, a 4xx: actual tokens 0) gets its tokens back.
// Unused tokens of a completed request are *not* given back by default: OpenAI's charge is
// taken at admission and is not visibly corrected afterwards, and a client that refunds
// runs ahead of the server's count (measured: 61,341 tokens in a 60 s window at 60,000
// TPM). `refund = Refund::unused` (",refund" charge rules) gives it back, for servers that
// count actual usage. Failed requests still cost their request: reconcile with requests = 1.
// The settled cost is also moved to the slot of `now` when the answer comes in a later slot
// than the admission: the server stamped the request somewhere in between (a burst's first
// requests wait for their connections; on a loaded machine over half a second, more than
// the window margin), so an entry counted from its answer never leaves our window before
// it leaves the server's. Requests still in flight keep their admission slot.
//
// *Re-sync.* observe() reads every response's x-ratelimit-* headers (as the provider's
// dialect means them: Groq's requests trio counts a day, core/provider.hpp). In auto mode a
// dimension with no configured limit adopts the server's limit (and a configured limit
// higher than the server's is lowered to it). If the server says fewer remain than we
// think (remaining < L - what our window holds: another process shares the key, or the
// server counts differently), the difference is consumed: recorded in the window so that
// it expires when the server says its bucket is full again (now + reset), and charged to
// the pace. We never add room because the server says more remain: its figure is older
// than our reservations in flight.
//
// *Learning from remaining.* The answer to a grant also says what the server had counted
// when it admitted that request (limit - remaining); the grant records what our windows
// held then. Three things follow (learned before the re-sync, and after the limits of the
// same answer, so the probe's answer already sets the charge before the window opens):
//  - a limit the server does not send (Azure sends remaining only): from an answer whose
//    request was admitted into an empty window, remaining + its charge is the limit
//    (exact up to our charge estimate of that one request). Learned only from such
//    answers and only upwards, so other clients' requests never inflate it.
//  - a server that charges more: the server counted more than our window holds by the
//    time the answer arrives (requests in flight included: they may have reached the
//    server before the answered one), by over half a request's charge. Then its average
//    charge over our window is at least (server's count) / (requests in our window): the
//    learned extra per request is raised to that lower bound over the charge model (the
//    window also keeps each request's model charge, so a correction is never counted
//    twice). Azure's context-size or flat reservations, a provider that counts 4,096.
//  - a server that charges less (flat 16 where the model says prompt + 16), unless the
//    charge model was given (--charge, the limits file: then it is known and only the
//    upward correction applies). Downwards only from an answer that proves it: the server's
//    count holds at least every request of ours it must have counted, i.e. those whose
//    answers had arrived when this one was admitted (still in our window) and this one.
//    With the requests header, that is checked: the server counted at least that many
//    requests (a bucket that refilled, or requests that left the server's window before
//    ours, fail it); without it, only an answer admitted into an empty window counts (the
//    probe). Requests in flight then may have reached the server first: they only add to
//    its count. So (server's count - those requests' model charges) / their number is an
//    upper bound of what the server adds per request to the model: the learned extra is
//    lowered to it (it may go below zero; a request is charged at least 1 token).
//    Within 5% of a request's charge the model is kept.
// None of this breaks the window invariant when limits and charge model are given: the
// upward correction only adds cost, the downward one is off, and a learned limit is at
// most the server's.
//
// *Unknown limits.* In auto mode, before any response has been observed, only one
// request (a probe) is admitted; the others wait for the first observe() (or for
// `probe_timeout`), so a job does not open with a burst of max-in-flight requests against
// a limit nobody knows yet. The first response carrying x-ratelimit-* headers ends this
// phase; a response without them (a connection error: call observe() with empty headers)
// lets the next probe go, and after 3 such answers the server is taken to send no limits.
// A dimension whose limit stays unknown is not limited: a server that sends no rate-limit
// headers (vLLM; `--provider none` says so at once, skipping the probe) runs by the
// engine's concurrency bound, with backoff on its 429s and 503s.
//
// *Fairness is the scheduler's job.* The limiter answers "can this cost go now, and if not,
// when?". It keeps no queue. The scheduler asks only for the head of each lane (FIFO), and
// a head that must wait blocks the lane: so a large request is never starved by a stream of
// small ones slipping past it.
//
// *Time going backwards* never creates room: the limiter keeps the latest `now` it has seen
// and treats an earlier one as that.

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "floodgate/core/clock.hpp"
#include "floodgate/limit/limits.hpp"
#include "floodgate/limit/rate_limit_headers.hpp"

namespace floodgate::limit {

enum class Dimension : std::uint8_t {
  none,
  requests_per_minute,
  tokens_per_minute,
  requests_per_day,
  tokens_per_day,
  paused,    // pause_until() is in force
  learning,  // auto mode: waiting for the first response to learn the limits
};

// "requests/min", "tokens/min", "requests/day", "tokens/day", "paused", "learning", "none".
[[nodiscard]] std::string_view to_string(Dimension d) noexcept;

struct LimiterOptions {
  // How a per-minute dimension spends its minute (see the essay):
  //  whole_window: what the 60 s window holds free may go at once (a rolling window allows
  //    the minute's quota at once); falls back to `even` by itself when bursts draw 429s
  //    although the server's `remaining` said there was room (fall_back_to_even_pacing()).
  //  even: GCRA at the steady pace, at most `burst` ahead of it (--burst).
  enum class Pacing : std::uint8_t { whole_window, even };
  Pacing pacing = Pacing::whole_window;
  // Even pacing: how far ahead of the steady pace a per-minute dimension may run (the
  // bucket's depth, in time: 1 s = one second's worth of the minute's limit).
  Duration burst = std::chrono::seconds(1);
  // Even pacing: pace at L per (window's live span + burst) instead of L per minute, so the
  // pace and its burst never meet the window rule. At L per minute a saturating client
  // fills the window (60 s + margin + a slot) over its limit once a minute, and every
  // admission then waits burst + margin + a slot (1.6 s at 600/min with a 1 s burst): no
  // loss of throughput for a job, but a stall for whoever waits behind it. The gateway
  // (interactive calls paced among a batch flood) sets it; it costs (margin + a slot +
  // burst) / 61.6 s of the pace: 1.7% at a 1 s burst.
  bool pace_within_window = false;
  // Extra time each window entry is kept beyond its window: a request admitted at t reaches
  // the server at t + delay, and delays vary (scheduling, connection set-up). At 200 ms a
  // loaded 2-core machine once put 1,201 requests in a 60 s window of the simulator's
  // ledger at 1,200 RPM. Costs margin/60 s of throughput when the window binds (0.8%).
  Duration window_margin = std::chrono::milliseconds(500);
  // Auto mode only: admit one probe, then wait for the first observe(), or until this
  // long after the probe, before admitting the next.
  Duration probe_timeout = std::chrono::seconds(5);
  // What reconcile() gives back when a completed request used fewer tokens than reserved.
  enum class Refund : std::uint8_t {
    refused_only,  // only when actual tokens are 0 (the server refused it): OpenAI's counting
    unused,        // the difference too (servers that count actual usage)
  };
  Refund refund = Refund::refused_only;
  // Learn the server's per-request token charge from `remaining` (see the essay): a server
  // that counts more than the charge model says raises every later reservation.
  bool learn_charge = true;
  // ... and one that counts less lowers it (proved by an answer, see the essay). Off when
  // the charge model is given (LimiterSet: --charge or the limits file): it is known then.
  bool learn_charge_down = true;
};

// Proof of an admission; hand it back to reconcile().
struct Grant {
  Cost cost;                // what was reserved (the charge, any learned correction included)
  TimePoint admitted_at{};
  // What the per-minute windows held just before this admission: with the server's
  // `remaining` in this request's answer they tell the server's own count apart from ours.
  double requests_before = 0;
  double tokens_before = 0;
  // The charge model's tokens of this request (cost.tokens without the learned correction),
  // and what the server must have counted of ours when this was admitted: the requests
  // already answered (still in the window) and their model charges.
  std::uint64_t model_tokens = 0;
  double settled_requests_before = 0;
  double settled_model_tokens_before = 0;
};

struct Decision {
  enum class Verdict : std::uint8_t { admitted, wait, cannot_fit };
  Verdict verdict = Verdict::wait;
  // admitted: the `now` of the call. wait: the earliest time the same cost could be
  // admitted if nothing else changes (ask again then; an observe() or reconcile() may
  // make it earlier). cannot_fit: TimePoint::max().
  TimePoint not_before{};
  // Which dimension decided a wait or cannot_fit (the one with the latest not_before).
  Dimension blocked_by = Dimension::none;
  Grant grant;  // valid when admitted

  [[nodiscard]] bool admitted() const noexcept { return verdict == Verdict::admitted; }
};

// What the progress line shows: the limits in force and what the windows hold.
struct LimiterSnapshot {
  Limits limits;               // effective (configured, or learned)
  double requests_last_minute = 0;
  double tokens_last_minute = 0;
  double requests_last_day = 0;
  double tokens_last_day = 0;
  TimePoint paused_until{};
  bool learning = false;
  bool even_pacing = false;        // whole-window mode fell back (or --burst asked for it)
  double learned_extra_tokens = 0; // per request, learned from `remaining` (0: the model holds; < 0: the server charges less)
  bool limits_from_remaining = false;  // a limit was inferred from `remaining` (no limit header)
};

class RateLimiter {
 public:
  explicit RateLimiter(Limits configured = {}, bool learn_from_headers = true, LimiterOptions options = {});

  // Admits `cost` now (reserving it in every dimension) or says when it could be.
  // cannot_fit when the cost exceeds a limit by itself (more tokens than the minute's
  // limit): it will never be admitted; fail the request (ErrorKind::cannot_fit).
  [[nodiscard]] Decision try_acquire(Cost cost, TimePoint now);
  // The same answer without reserving anything.
  [[nodiscard]] Decision peek(Cost cost, TimePoint now) const;

  // After the attempt: settle the grant with what it actually cost. `actual.tokens`:
  // the response's usage.total_tokens for a completed request (charged if above the
  // reservation; below it, refunded only with Refund::unused); 0 for a request the server
  // refused without work (429, 4xx): its tokens are given back. `actual.requests`: 1
  // (a failed request still counts). Pass the reservation unchanged to keep it.
  void reconcile(const Grant& grant, Cost actual, TimePoint now);

  // Every finished attempt's headers (429s, errors and connection failures included;
  // empty headers are fine): learns limits, re-syncs remaining, ends the learning phase.
  void observe(const RateLimitHeaders& headers, TimePoint now);
  // The same for the answer to `answered` (one of this limiter's grants): with it the
  // limiter can also learn a limit the server does not send (from `remaining` after a quiet
  // spell) and the server's charge per request (from `remaining` against its own window).
  // A grant now known to cost more than it reserved is raised to that, in the windows too:
  // reconcile() it after (and settle it at its new cost.tokens).
  void observe(const RateLimitHeaders& headers, TimePoint now, Grant& answered);
  // The same on a copy of the grant (the raise then stays at its admission slot).
  void observe(const RateLimitHeaders& headers, TimePoint now, const Grant& answered) {
    Grant copy = answered;
    observe(headers, now, copy);
  }

  // A 429 (rate_limit_exceeded) for this model with its headers, for a request of `cost`.
  // In whole-window mode, when the server's `remaining` (in the 429 or the last answer
  // before it) said there was room for that request, the server enforces a shorter period
  // than the minute: pace evenly from now on (fall_back_to_even_pacing()). Room for less
  // than the request (a bucket refilling: 100 tokens left for a request of 250) is the
  // minute spent, not a shorter period. Returns true when this call switched.
  bool on_rate_limited(const RateLimitHeaders& headers, TimePoint now, Cost cost = Cost{1, 1});
  // Even pacing from `now` + `hold` on (what on_rate_limited() does, holding for the 429's
  // retry-after), without the burst: a server that refuses bursts inside the minute gets
  // one request per emission interval (--burst still sets even pacing with a burst).
  void fall_back_to_even_pacing(TimePoint now, Duration hold = Duration{0});
  // Whether a 429 with these headers came although the minute had room for `cost` (its
  // remaining, or the last answer's before it): a shorter period refused it, and the server
  // did not count it against the minute. The engine then settles it with
  // reconcile_refused_by_shorter_period() instead of reconcile().
  [[nodiscard]] bool minute_had_room(const RateLimitHeaders& headers, Cost cost) const noexcept;
  // Settles a grant refused by a shorter period than the minute: its permits go back to the
  // windows (a refused request otherwise keeps its request permit, as OpenAI counts failed
  // requests; a re-sync takes it again if this server did count it), but not to the pace:
  // the pace stands for the shorter period, whose refusal says it was not slow enough
  // (given back, the refused attempts' slots went to the next requests at once, and a
  // 10-a-second server refused 1,956 of 2,735 attempts). A refusal of a request admitted
  // at the even pace also widens the pace's interval by 0.5% (at most 5%): at exactly the
  // limit, the few ms between our admission and the server's stamp made a server counting
  // 10 per rolling second refuse some attempts.
  void reconcile_refused_by_shorter_period(const Grant& grant, TimePoint now);
  [[nodiscard]] bool even_pacing() const noexcept { return even_; }

  // What an earlier process admitted for this model (a resume right after a crash): `cost`
  // admitted at `at` (<= now) counts in every window as an admission at `at` would, and
  // charges the pace. Nothing to reconcile later.
  void record_admitted(Cost cost, TimePoint at, TimePoint now);

  // Admits nothing before `until` (later calls can only extend it).
  void pause_until(TimePoint until);

  [[nodiscard]] Limits limits() const noexcept;  // effective limits now
  [[nodiscard]] LimiterSnapshot snapshot(TimePoint now) const;

 private:
  // A sliding window of `slot_count` slots; see the essay.
  class Window {
   public:
    Window(Duration window, Duration margin);
    [[nodiscard]] double total(std::int64_t now_slot) const;  // what counts at now_slot
    // The earliest slot index at which total() + cost <= limit; INT64_MAX if never.
    [[nodiscard]] std::int64_t earliest_slot_for(double cost, double limit, std::int64_t now_slot) const;
    void add(std::int64_t slot, double cost, std::int64_t now_slot);
    void remove(std::int64_t slot, double cost, std::int64_t now_slot);
    // The oldest slot that still counts something at now_slot; INT64_MAX if none.
    [[nodiscard]] std::int64_t oldest_slot(std::int64_t now_slot) const;
    // Settles an entry of `reserved` admitted in `grant_slot` at `used` (reconcile()).
    void settle(std::int64_t grant_slot, std::int64_t now_slot, double reserved, double used);
    [[nodiscard]] std::int64_t slot_of(TimePoint t) const noexcept;
    [[nodiscard]] TimePoint slot_start(std::int64_t slot) const noexcept;
    [[nodiscard]] std::int64_t live_slots() const noexcept { return live_slots_; }
    // How long an admission counts: live_slots() slots.
    [[nodiscard]] Duration live_span() const noexcept { return slot_ * live_slots_; }

   private:
    void advance(std::int64_t now_slot);
    [[nodiscard]] bool is_live(std::int64_t slot, std::int64_t now_slot) const noexcept;
    Duration slot_;
    std::int64_t live_slots_;  // an entry in slot k counts while now_slot < k + live_slots_
    std::vector<double> ring_;
    double sum_ = 0;  // of ring_
    std::int64_t head_slot_ = INT64_MIN;  // newest slot the ring has been advanced to
  };

  struct Dim {
    Window window;
    double limit = 0;       // effective; 0 = unlimited
    double configured = 0;  // from the configuration; 0 = none
    bool paced = false;     // GCRA pacing (per-minute dimensions)
    Duration::rep tat_ns = INT64_MIN;  // theoretical arrival time (steady-clock ns)
    Dimension name = Dimension::none;
  };

  [[nodiscard]] TimePoint clamp(TimePoint now) const noexcept;
  [[nodiscard]] double paced_limit(const Dim& d) const noexcept;  // the limit the even pace keeps
  [[nodiscard]] Decision decide(Cost cost, TimePoint now) const;
  [[nodiscard]] static double cost_in(const Dim& d, Cost cost) noexcept;
  void set_limit(Dim& d, double limit);
  void resync(Dim& d, std::int64_t remaining, std::optional<Duration> reset, TimePoint now);
  void learn_limits(const RateLimitHeaders& headers);
  void observe_remaining(const RateLimitHeaders& headers, TimePoint now);
  void learn_from_answer(const RateLimitHeaders& headers, const Grant& g, TimePoint now);
  void learn_charge(const RateLimitHeaders& headers, const Grant& g, TimePoint now);
  [[nodiscard]] Cost charged(Cost cost) const noexcept;

  std::array<Dim, 4> dims_;
  bool learn_;
  LimiterOptions options_;
  TimePoint latest_now_{TimePoint::min()};
  TimePoint paused_until_{TimePoint::min()};
  bool learning_ = false;        // auto mode, nothing observed yet
  bool probe_sent_ = false;
  TimePoint probe_sent_at_{};
  int headerless_answers_ = 0;   // observe() calls without rate-limit headers while learning
  bool even_ = false;            // GCRA pacing in force (even mode, or whole-window fell back)
  Duration burst_{0};            // options_.burst; 0 after the fall-back
  TimePoint even_since_{TimePoint::min()};
  double pace_margin_ = 0;       // the even pace runs at limit / (1 + this): widened by refusals
  double extra_tokens_ = 0;      // learned per-request charge beyond the model's (< 0: below it)
  // Beside the tokens window: the model charges of the same entries (what the correction
  // is learned against), and of the answered requests, with their count, at their
  // admission slots (what the server must have counted).
  Window model_tokens_;
  Window settled_requests_;
  Window settled_model_tokens_;
  std::array<bool, 2> from_remaining_{false, false};  // per-minute limit inferred from remaining
  std::optional<std::int64_t> last_remaining_requests_;
  std::optional<std::int64_t> last_remaining_tokens_;
};

}  // namespace floodgate::limit
