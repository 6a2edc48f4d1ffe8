#pragma once
// Backoff: when to retry a failed attempt. Exponential with full jitter (AWS's "Exponential
// Backoff And Jitter": delay = uniform(0, min(max_delay, base_delay * 2^(attempt-1)))),
// never earlier than the server asked (retry-after, retry-after-ms, or the reset of the
// exhausted dimension: RateLimitHeaders::wait_hint()). A server wait longer than
// `max_server_wait` (a daily quota answering "come back in 5 hours") is not slept on:
// the verdict is `suspend`, and the engine stops admitting for that model, says when it
// may resume (now + delay) and leaves the rest resumable. The random source is seeded so
// tests are deterministic.
//
//   RetryDecision d = backoff.next(outcome.attempts, headers.wait_hint());
//   switch (d.verdict) { case retry: not_before = now + d.delay; ... }

#include <cstdint>
#include <optional>
#include <random>

#include "floodgate/core/clock.hpp"

namespace floodgate::limit {

struct RetryPolicy {
  int max_attempts = 6;                                      // attempts in all, first included
  Duration base_delay = std::chrono::milliseconds(500);
  Duration max_delay = std::chrono::seconds(60);             // cap on the jittered delay
  Duration max_server_wait = std::chrono::minutes(15);       // longer hints suspend the model
};

enum class RetryVerdict : std::uint8_t {
  retry,    // try again after `delay`
  give_up,  // attempts exhausted: record the last failure
  suspend,  // the server asks for more than max_server_wait: stop admitting this model
};

struct RetryDecision {
  RetryVerdict verdict = RetryVerdict::give_up;
  Duration delay{0};  // retry: wait this long; suspend: the server's wait
};

class Backoff {
 public:
  explicit Backoff(RetryPolicy policy = {}, std::uint64_t seed = 0x5eed'f100'd6a7eULL);

  // `attempts_made`: attempts of this request finished so far (>= 1). `server_wait`: the
  // server's hint, if any. A hint is honoured even beyond max_delay.
  [[nodiscard]] RetryDecision next(int attempts_made, std::optional<Duration> server_wait);

  // The un-jittered ceiling for an attempt: min(max_delay, base_delay * 2^(attempts_made-1)).
  [[nodiscard]] Duration ceiling(int attempts_made) const noexcept;
  [[nodiscard]] const RetryPolicy& policy() const noexcept { return policy_; }

 private:
  RetryPolicy policy_;
  std::mt19937_64 rng_;
};

}  // namespace floodgate::limit
