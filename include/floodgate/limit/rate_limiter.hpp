#pragma once
// RateLimiter: one model's admission control over four dimensions (requests/min,
// tokens/min, requests/day, tokens/day). Not thread-safe: the engine's single event loop
// owns it. Every method takes `now`; nothing reads a clock, so tests drive it with plain
// TimePoints (or ManualClock::now()) and never sleep.
//
// How is the RateLimiter designed, and why?
//
// *Two rules per minute dimension.* A provider's "5,000 requests per minute" may be
// enforced as a sliding 60-second window, as a bucket of 5,000 refilled continuously, or
// as a much smaller bucket (60,000/min as 1,000 per second). We want to be inside all of
// them (the pace below conforms to any bucket at least `burst` deep), and
// still finish within a few percent of the fastest schedule the limit allows. So each
// per-minute dimension applies two rules, and a request is admitted only when both pass:
//  1. Pacing (GCRA). With L per minute the emission interval is T = 60 s / L per unit of
//     cost. One number, the theoretical arrival time TAT, records where the steady pace
//     has got to. A cost n is admitted at `now` if max(TAT, now) + n*T <= now + max(burst,
//     n*T), and then TAT = max(TAT, now) + n*T. `burst` (default 1 s) is how far ahead of
//     the steady pace we may run: a full bucket holds 1 s worth of the minute's limit, never
//     a whole minute. A cost larger than the burst (one big prompt) is admitted when the
//     pace has fully caught up (TAT <= now) and then pays for itself by pushing TAT ahead;
//     it is never refused for being big unless it exceeds the minute's limit itself.
//  2. The window. Admitted costs are also kept in a ring of 600 time slots covering the
//     last minute (100 ms each); a cost is admitted only if what the last 60 s (+ a small
//     margin, default 500 ms, for the delay between admitting and the server's stamp) hold,
//     plus it, stays <= L. A slot counts until its *end* + 60 s + margin: we may
//     overestimate the window, never underestimate it. So the hard invariant holds for
//     any sequence of calls: no 60-second window ever holds more than L admitted cost.
//     The pacing alone would allow L + burst in a window; the window alone would allow the
//     whole minute at once. Together: evenly paced, at most L per minute, and at full
//     speed the schedule is L per minute exactly.
// The per-day dimensions apply only the window rule (600 slots of 144 s over 24 h): a
// daily quota is a budget to spend, not a pace to keep, so the day is not spread evenly.
//
// *Reserve, then settle.* try_acquire() reserves every dimension at once when it admits,
// or none. Checking without reserving lets concurrent requests all see the same room and
// overshoot together. The tokens reserved are an estimate (prompt + completion allowance);
// when the attempt ends, reconcile() settles it in both the pace and the window slot where
// the reservation was recorded: usage beyond the estimate is charged; a request the server
// refused without doing any work (a 429, a 4xx: actual tokens 0) gets its tokens back.
// Unused completion allowance of a completed request is *not* given back by default:
// providers count max_tokens against the tokens/min limit when the request arrives
// ("the maximum of max_tokens and the estimated tokens"), and a client that refunds it runs
// ahead of the server's count (measured: 61,341 tokens in a 60 s window at 60,000 TPM).
// `refund = Refund::unused` gives it back for servers that count actual usage. Failed
// requests still cost their request (providers count them): reconcile with requests = 1.
//
// *Re-sync.* observe() reads every response's x-ratelimit-* headers. In auto mode a
// dimension with no configured limit adopts the server's limit (and a configured limit
// higher than the server's is lowered to it). If the server says fewer remain than we
// think (remaining < L - what our window holds: another process shares the key, or the
// server counts differently), the difference is consumed: recorded in the window so that
// it expires when the server says its bucket is full again (now + reset), and charged to
// the pace. We never add room because the server says more remain: its figure is older
// than our reservations in flight.
//
// *Unknown limits.* In auto mode, before any response has been observed, only one
// request (a probe) is admitted; the others wait for the first observe() (or for
// `probe_timeout`), so a job does not open with a burst of max-in-flight requests against
// a limit nobody knows yet. The first response carrying x-ratelimit-* headers ends this
// phase; a response without them (a connection error: call observe() with empty headers)
// lets the next probe go, and after 3 such answers the server is taken to send no limits.
// A dimension whose limit stays unknown is not limited.
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
  // How far ahead of the steady pace a per-minute dimension may run (the bucket's depth,
  // in time: 1 s = one second's worth of the minute's limit).
  Duration burst = std::chrono::seconds(1);
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
};

// Proof of an admission; hand it back to reconcile().
struct Grant {
  Cost cost;
  TimePoint admitted_at{};
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
    [[nodiscard]] std::int64_t slot_of(TimePoint t) const noexcept;
    [[nodiscard]] TimePoint slot_start(std::int64_t slot) const noexcept;
    [[nodiscard]] std::int64_t live_slots() const noexcept { return live_slots_; }

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
  [[nodiscard]] Decision decide(Cost cost, TimePoint now) const;
  [[nodiscard]] static double cost_in(const Dim& d, Cost cost) noexcept;
  void set_limit(Dim& d, double limit);
  void resync(Dim& d, std::int64_t remaining, std::optional<Duration> reset, TimePoint now);

  std::array<Dim, 4> dims_;
  bool learn_;
  LimiterOptions options_;
  TimePoint latest_now_{TimePoint::min()};
  TimePoint paused_until_{TimePoint::min()};
  bool learning_ = false;        // auto mode, nothing observed yet
  bool probe_sent_ = false;
  TimePoint probe_sent_at_{};
  int headerless_answers_ = 0;   // observe() calls without rate-limit headers while learning
};

}  // namespace floodgate::limit
