// CircuitBreaker: closed -> open after N consecutive 429s -> half-open (one probe) -> closed.
#include "floodgate/limit/circuit_breaker.hpp"

#include <algorithm>

namespace floodgate::limit {

std::string_view to_string(BreakerState s) noexcept {
  switch (s) {
    case BreakerState::closed: return "closed";
    case BreakerState::open: return "open";
    case BreakerState::half_open: return "half-open";
  }
  return "closed";
}

CircuitBreaker::CircuitBreaker(BreakerOptions options) : options_(options) {
  options_.threshold = std::max(1, options_.threshold);
  if (options_.max_open.count() < 0) options_.max_open = Duration{0};
  options_.default_open = std::clamp(options_.default_open, Duration{0}, options_.max_open);
  options_.outage_threshold = std::max(1, options_.outage_threshold);
  options_.outage_probe_max = std::max(options_.outage_probe_max, options_.outage_probe_first);
}

BreakerState CircuitBreaker::state(TimePoint now) const noexcept {
  if (state_ == BreakerState::open && now >= open_until_) return BreakerState::half_open;
  return state_;
}

bool CircuitBreaker::try_pass(TimePoint now) {
  switch (state(now)) {
    case BreakerState::closed:
      return true;
    case BreakerState::open:
      return false;
    case BreakerState::half_open:
      state_ = BreakerState::half_open;
      if (probe_out_) return false;
      probe_out_ = true;
      return true;
  }
  return false;
}

TimePoint CircuitBreaker::blocked_until() const noexcept {
  switch (state_) {
    case BreakerState::closed: return TimePoint::min();
    case BreakerState::open: return open_until_;
    case BreakerState::half_open: return probe_out_ ? TimePoint::max() : TimePoint::min();
  }
  return TimePoint::min();
}

void CircuitBreaker::open(TimePoint now, std::optional<Duration> wait_hint) {
  Duration wait = wait_hint ? std::clamp(*wait_hint, Duration{0}, options_.max_open) : options_.default_open;
  const TimePoint until = now + wait;
  if (state_ == BreakerState::open) {
    open_until_ = std::max(open_until_, until);  // a later 429 may only extend it
  } else {
    state_ = BreakerState::open;
    open_until_ = until;
    ++times_opened_;
  }
  probe_out_ = false;
}

void CircuitBreaker::answered() {
  no_contact_ = 0;
  if (!outage_) return;
  outage_ = false;
  state_ = BreakerState::closed;
  probe_out_ = false;
}

void CircuitBreaker::on_no_contact(TimePoint now) {
  if (no_contact_++ == 0) no_contact_since_ = now;
  if (!outage_) {
    if (no_contact_ < options_.outage_threshold) return;
    outage_ = true;
    ++outages_;
    probe_wait_ = options_.outage_probe_first;
  } else if (state(now) == BreakerState::open) {
    return;  // an attempt sent before the pause: the pause stands
  } else {
    probe_wait_ = std::min(probe_wait_ * 2, options_.outage_probe_max);  // the probe failed
  }
  // A 429 pause in force is never shortened.
  open_until_ = state_ == BreakerState::open ? std::max(open_until_, now + probe_wait_) : now + probe_wait_;
  state_ = BreakerState::open;
  probe_out_ = false;
}

void CircuitBreaker::on_success(TimePoint now) {
  answered();
  consecutive_ = 0;
  // A success while open came from a request sent before the breaker opened; it does not
  // shorten the pause. In half-open it closes the breaker.
  if (state(now) == BreakerState::half_open || state_ == BreakerState::closed) {
    state_ = BreakerState::closed;
    probe_out_ = false;
  }
}

void CircuitBreaker::on_rate_limited(TimePoint now, std::optional<Duration> wait_hint) {
  answered();
  ++consecutive_;
  const BreakerState s = state(now);
  if (s == BreakerState::half_open || s == BreakerState::open || consecutive_ >= options_.threshold) open(now, wait_hint);
}

void CircuitBreaker::on_other_failure(TimePoint now) {
  answered();
  if (state(now) == BreakerState::half_open) {
    state_ = BreakerState::half_open;
    probe_out_ = false;
  }
}

}  // namespace floodgate::limit
