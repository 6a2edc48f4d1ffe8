// Backoff: exponential with full jitter, never earlier than the server's hint.
#include "floodgate/limit/backoff.hpp"

#include <algorithm>

namespace floodgate::limit {

Backoff::Backoff(RetryPolicy policy, std::uint64_t seed) : policy_(policy), rng_(seed) {
  policy_.max_attempts = std::max(1, policy_.max_attempts);
  if (policy_.base_delay.count() < 0) policy_.base_delay = Duration{0};
  if (policy_.max_delay < policy_.base_delay) policy_.max_delay = policy_.base_delay;
}

Duration Backoff::ceiling(int attempts_made) const noexcept {
  Duration d = policy_.base_delay;
  for (int i = 1; i < attempts_made && d < policy_.max_delay; ++i) d *= 2;
  return std::min(d, policy_.max_delay);
}

RetryDecision Backoff::next(int attempts_made, std::optional<Duration> server_wait) {
  if (attempts_made >= policy_.max_attempts) return {RetryVerdict::give_up, Duration{0}};
  const Duration hint = server_wait ? std::max(*server_wait, Duration{0}) : Duration{0};
  if (hint > policy_.max_server_wait) return {RetryVerdict::suspend, hint};
  const auto top = static_cast<std::uint64_t>(ceiling(std::max(1, attempts_made)).count());
  // Uniform in [0, top] without modulo bias worth caring about at nanosecond scale.
  const std::uint64_t jitter_ns = top == 0 ? 0 : rng_() % (top + 1);
  const Duration jittered{static_cast<Duration::rep>(jitter_ns)};
  return {RetryVerdict::retry, std::max(jittered, hint)};
}

}  // namespace floodgate::limit
