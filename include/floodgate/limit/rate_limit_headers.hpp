#pragma once
// What a response's headers say about the server's rate-limit buckets. OpenAI sends
//   x-ratelimit-limit-requests / -tokens       the per-minute limits ("5000", "4000000")
//   x-ratelimit-remaining-requests / -tokens   what is left now ("4999", "3999850")
//   x-ratelimit-reset-requests / -tokens       time until the bucket is full again
//                                              ("12ms", "6m0s", "1m30.5s", "2m59.56s", "20")
//   retry-after (seconds or an HTTP-date), retry-after-ms (milliseconds) on 429s and 503s.
// Anthropic (its own API and its OpenAI-compatible endpoint) sends
//   anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}, resets as RFC 3339 times
//   ("2026-11-22T17:00:30Z"); -tokens-* is the most restrictive token limit in force.
//   They fill the same fields where no x-ratelimit-* header said anything.
// Every field is optional: endpoints that carry no token headers (transcriptions), values
// of -1 (unknown), unparseable values and absent headers all give nullopt. A limit of 0
// is treated as unknown too. Remaining 0 is kept: it means "exhausted".
// Resets written as a Unix timestamp (a bare number of at least 1e9 seconds, or 1e12 ms)
// are turned into a duration from `wall_now`.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "floodgate/core/clock.hpp"
#include "floodgate/core/provider.hpp"

namespace floodgate::limit {

struct RateLimitHeaders {
  std::optional<std::int64_t> limit_requests;
  std::optional<std::int64_t> limit_tokens;
  std::optional<std::int64_t> remaining_requests;
  std::optional<std::int64_t> remaining_tokens;
  std::optional<Duration> reset_requests;
  std::optional<Duration> reset_tokens;
  // retry-after-ms if present and valid, else retry-after (seconds or HTTP-date).
  std::optional<Duration> retry_after;
  // Per-day requests: never parsed from a header name (no provider names it so); set by
  // for_provider() when a provider's x-ratelimit-*-requests trio counts a day (Groq).
  std::optional<std::int64_t> limit_requests_day;
  std::optional<std::int64_t> remaining_requests_day;
  std::optional<Duration> reset_requests_day;

  [[nodiscard]] bool empty() const noexcept;
  // How long the server asks us to wait before trying again, for a 429: retry_after if
  // given, else the reset of every dimension whose remaining is 0 (the longest), else
  // nullopt. Feed it to Backoff::next() and CircuitBreaker::on_rate_limited().
  [[nodiscard]] std::optional<Duration> wait_hint() const noexcept;
};

// What the headers mean for a provider (core/provider.hpp): OpenAI and Azure count the
// x-ratelimit-*-requests trio per minute; Groq counts it per DAY (its tokens trio is per
// minute), so for Groq the trio moves to the *_requests_day fields and the per-minute
// request fields are left empty; `none` drops every rate-limit field (retry-after stays).
[[nodiscard]] RateLimitHeaders for_provider(RateLimitHeaders headers, Provider provider) noexcept;

// Looks a header up by its lower-case name; returns nullopt when absent. The caller's
// header store decides how (case-insensitive map, vector scan ...). If a header occurs
// several times, return any one of them.
using HeaderLookup = std::function<std::optional<std::string_view>(std::string_view lowercase_name)>;

// Parses the headers above. `wall_now` is the wall clock used for an HTTP-date retry-after
// and for timestamp resets (default: std::chrono::system_clock::now()). Never throws.
[[nodiscard]] RateLimitHeaders parse_rate_limit_headers(
    const HeaderLookup& get,
    std::optional<std::chrono::system_clock::time_point> wall_now = std::nullopt);

// The same over a list of (name, value) pairs; names are matched case-insensitively.
[[nodiscard]] RateLimitHeaders parse_rate_limit_headers(
    std::span<const std::pair<std::string, std::string>> headers,
    std::optional<std::chrono::system_clock::time_point> wall_now = std::nullopt);
[[nodiscard]] RateLimitHeaders parse_rate_limit_headers(
    std::span<const std::pair<std::string_view, std::string_view>> headers,
    std::optional<std::chrono::system_clock::time_point> wall_now = std::nullopt);

// A non-negative integer header value ("4999", " 12 ", "100.0"); nullopt for "-1",
// negatives, garbage or overflow. Exposed for tests and fuzzing.
[[nodiscard]] std::optional<std::int64_t> parse_header_count(std::string_view text) noexcept;

// retry-after: delta-seconds ("20", "1.5") or an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37
// GMT"), turned into a duration from wall_now (0 if the date is in the past). nullopt if
// neither. Exposed for tests and fuzzing.
[[nodiscard]] std::optional<Duration> parse_retry_after(
    std::string_view text, std::chrono::system_clock::time_point wall_now) noexcept;

}  // namespace floodgate::limit
