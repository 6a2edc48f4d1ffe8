#pragma once
// CircuitBreaker: stops a retry storm. Closed, it lets everything through and counts
// consecutive 429s (rate_limit_exceeded). After `threshold` in a row it opens: nothing is
// sent until the server's window has reset (the wait hint from the 429's headers, capped
// by `max_open`; `default_open` without a hint). Then it is half-open: exactly one request
// (the probe) may go. A success closes it; another 429 opens it again; any other failure
// (5xx, timeout ...) lets a new probe go. Any success while closed resets the count.
// Time is passed in; the engine keeps one breaker for the job ("pause all sending") and
// shows state() on the progress line.
//
// Outages. The same breaker pauses sending when the server stops answering mid-run:
// after `outage_threshold` attempts in a row that got no answer at all (refused, reset or
// timed out before a status line; on_no_contact()) with no answer in between, it opens for
// `outage_probe_first`; then one probe goes at a time, each failed probe doubling the wait
// (up to `outage_probe_max`). Any answer, whatever its status, ends the outage and closes
// the breaker. in_outage() and outage_since() (the first failure of the run of failures)
// let the engine bound how long it waits.
//
// Typical use in the engine:
//   if (!breaker.try_pass(now)) wake up at breaker.blocked_until();
//   ... on a 2xx:            breaker.on_success(now);
//   ... on a 429 rate limit: breaker.on_rate_limited(now, headers.wait_hint());
//   ... on other failures:   breaker.on_other_failure(now);

#include <cstdint>
#include <optional>
#include <string_view>

#include "floodgate/core/clock.hpp"

namespace floodgate::limit {

struct BreakerOptions {
  int threshold = 3;                                   // consecutive 429s that open it
  Duration max_open = std::chrono::seconds(60);        // cap on one open period
  Duration default_open = std::chrono::seconds(5);     // open period without a hint
  int outage_threshold = 8;                            // attempts in a row without an answer
  Duration outage_probe_first = std::chrono::seconds(1);
  Duration outage_probe_max = std::chrono::seconds(15);
};

enum class BreakerState : std::uint8_t { closed, open, half_open };
[[nodiscard]] std::string_view to_string(BreakerState s) noexcept;  // "closed", "open", "half-open"

class CircuitBreaker {
 public:
  explicit CircuitBreaker(BreakerOptions options = {});

  // May one request be sent now? Closed: yes. Open before its time: no. Open after its
  // time, or half-open with no probe out: yes, once (this request is the probe).
  [[nodiscard]] bool try_pass(TimePoint now);
  // When try_pass() may next say yes: the end of the open period; TimePoint::min() when
  // closed; TimePoint::max() while a half-open probe is out (wait for its outcome).
  [[nodiscard]] TimePoint blocked_until() const noexcept;

  void on_success(TimePoint now);
  // A 429 rate_limit_exceeded. `wait_hint` = RateLimitHeaders::wait_hint().
  void on_rate_limited(TimePoint now, std::optional<Duration> wait_hint);
  // Any other failed attempt with an answer (5xx, 4xx, a bad body): does not count toward
  // opening; frees a half-open probe.
  void on_other_failure(TimePoint now);
  // An attempt that got no answer at all (see "Outages" above).
  void on_no_contact(TimePoint now);

  [[nodiscard]] bool in_outage() const noexcept { return outage_; }
  // When the run of failures that made the current outage began (meaningful in_outage()).
  [[nodiscard]] TimePoint outage_since() const noexcept { return no_contact_since_; }
  [[nodiscard]] int consecutive_no_contact() const noexcept { return no_contact_; }
  [[nodiscard]] std::uint64_t outages() const noexcept { return outages_; }

  // open becomes half_open once its time has passed, even before try_pass().
  [[nodiscard]] BreakerState state(TimePoint now) const noexcept;
  [[nodiscard]] int consecutive_rate_limited() const noexcept { return consecutive_; }
  [[nodiscard]] std::uint64_t times_opened() const noexcept { return times_opened_; }

 private:
  void open(TimePoint now, std::optional<Duration> wait_hint);
  void answered();  // any answer: the server is there

  BreakerOptions options_;
  BreakerState state_ = BreakerState::closed;
  int consecutive_ = 0;
  TimePoint open_until_{TimePoint::min()};
  bool probe_out_ = false;
  std::uint64_t times_opened_ = 0;
  int no_contact_ = 0;
  TimePoint no_contact_since_{};
  bool outage_ = false;
  Duration probe_wait_{0};
  std::uint64_t outages_ = 0;
};

}  // namespace floodgate::limit
