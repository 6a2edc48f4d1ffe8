#pragma once
// Admission: "may this request go now?" for one model, and the settlement after its answer.
// The engine's scheduler asks only through this interface, so the limiter behind it can be
// swapped: LocalAdmission below (this process's RateLimiter, the one in use today) or a
// limiter shared by several processes (a Redis script keeping the same windows) later.
//
// The contract, in the order the scheduler calls it:
//  1. try_acquire(cost, now): admitted (a Grant, the reservation), wait (ask again at
//     not_before; a settlement may make it earlier) or cannot_fit (never: fail the request).
//     peek() answers the same without reserving (the breaker's half-open probe asks first).
//  2. settle(grant, answer, now): once per answered attempt, whatever the answer (a 429, a
//     5xx, a connection failure with empty headers): the server's rate-limit headers re-sync
//     the windows, then the reservation is settled with what the server counted. The grant
//     may be raised in place (the server charges more than reserved): use it after.
//  3. reconcile(grant, actual, now): a reservation settled without an answer (given back
//     when a budget refuses the request after admission, kept when Ctrl-C aborts it).
//  4. on_rate_limited() after a 429's settlement; pause_until() when the provider asks to
//     wait beyond the retry horizon; record_admitted() for what an earlier run admitted.
// One virtual call per admission and one per answer: nothing per byte or per header.

#include <cstdint>
#include <optional>

#include "floodgate/core/clock.hpp"
#include "floodgate/limit/limits.hpp"
#include "floodgate/limit/rate_limit_headers.hpp"
#include "floodgate/limit/rate_limiter.hpp"

namespace floodgate::limit {

// What an answer says for its settlement.
struct Answer {
  const RateLimitHeaders& headers;
  // A 429 rate_limit_exceeded (a refusal a shorter period than the minute may explain).
  bool rate_limited = false;
  // Refused before any work (a 429, a 4xx that is not retried): its tokens are given back.
  bool refused = false;
  // The tokens the answer says were used, when the provider settles at usage (",refund"
  // charge rules) and the answer said; else the reservation's tokens are kept.
  std::optional<std::uint64_t> used_tokens;
};

class Admission {
 public:
  virtual ~Admission() = default;
  [[nodiscard]] virtual Decision try_acquire(Cost cost, TimePoint now) = 0;
  [[nodiscard]] virtual Decision peek(Cost cost, TimePoint now) const = 0;
  virtual void settle(Grant& grant, const Answer& answer, TimePoint now) = 0;
  virtual void reconcile(const Grant& grant, Cost actual, TimePoint now) = 0;
  // Returns true when this 429 switched the model to even pacing (RateLimiter::on_rate_limited).
  virtual bool on_rate_limited(const RateLimitHeaders& headers, TimePoint now, Cost cost) = 0;
  virtual void pause_until(TimePoint until) = 0;
  virtual void record_admitted(Cost cost, TimePoint at, TimePoint now) = 0;
  [[nodiscard]] virtual Limits limits() const = 0;
  [[nodiscard]] virtual LimiterSnapshot snapshot(TimePoint now) const = 0;
};

// This process's limiter for one model (LimiterSet::for_model), as an Admission.
class LocalAdmission final : public Admission {
 public:
  explicit LocalAdmission(RateLimiter& limiter) noexcept : limiter_(limiter) {}

  [[nodiscard]] Decision try_acquire(Cost cost, TimePoint now) override { return limiter_.try_acquire(cost, now); }
  [[nodiscard]] Decision peek(Cost cost, TimePoint now) const override { return limiter_.peek(cost, now); }
  void settle(Grant& grant, const Answer& answer, TimePoint now) override;
  void reconcile(const Grant& grant, Cost actual, TimePoint now) override { limiter_.reconcile(grant, actual, now); }
  bool on_rate_limited(const RateLimitHeaders& headers, TimePoint now, Cost cost) override {
    return limiter_.on_rate_limited(headers, now, cost);
  }
  void pause_until(TimePoint until) override { limiter_.pause_until(until); }
  void record_admitted(Cost cost, TimePoint at, TimePoint now) override { limiter_.record_admitted(cost, at, now); }
  [[nodiscard]] Limits limits() const override { return limiter_.limits(); }
  [[nodiscard]] LimiterSnapshot snapshot(TimePoint now) const override { return limiter_.snapshot(now); }

 private:
  RateLimiter& limiter_;
};

}  // namespace floodgate::limit
