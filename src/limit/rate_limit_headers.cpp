// Parsing x-ratelimit-* and retry-after headers into RateLimitHeaders.
#include "floodgate/limit/rate_limit_headers.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <utility>

#include "floodgate/core/duration.hpp"
#include "floodgate/core/text.hpp"

namespace floodgate::limit {
namespace {

using namespace std::chrono_literals;

bool all_digits(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool read_uint(std::string_view& s, std::size_t digits, unsigned& out) noexcept {
  if (s.size() < digits) return false;
  out = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + static_cast<unsigned>(s[i] - '0');
  }
  s.remove_prefix(digits);
  return true;
}

bool expect(std::string_view& s, char c) noexcept {
  if (s.empty() || s.front() != c) return false;
  s.remove_prefix(1);
  return true;
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" -> Unix seconds.
std::optional<std::int64_t> parse_http_date(std::string_view s) noexcept {
  static constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto comma = s.find(',');
  if (comma == std::string_view::npos || comma > 9) return std::nullopt;
  s.remove_prefix(comma + 1);
  unsigned day = 0, year = 0, hour = 0, minute = 0, second = 0;
  if (!expect(s, ' ') || !read_uint(s, 2, day) || !expect(s, ' ')) return std::nullopt;
  if (s.size() < 3) return std::nullopt;
  unsigned month = 0;
  for (unsigned i = 0; i < 12; ++i) {
    if (iequals(s.substr(0, 3), kMonths[i])) month = i + 1;
  }
  if (month == 0) return std::nullopt;
  s.remove_prefix(3);
  if (!expect(s, ' ') || !read_uint(s, 4, year) || !expect(s, ' ')) return std::nullopt;
  if (!read_uint(s, 2, hour) || !expect(s, ':') || !read_uint(s, 2, minute) || !expect(s, ':') || !read_uint(s, 2, second)) {
    return std::nullopt;
  }
  if (!iequals(trim(s), "GMT") && !iequals(trim(s), "UTC")) return std::nullopt;
  if (day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  return days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
}

// RFC 3339: "2026-11-22T17:00:30Z", "2026-11-22T17:00:30.5+01:00" -> Unix seconds.
std::optional<double> parse_rfc3339(std::string_view s) noexcept {
  s = trim(s);
  unsigned year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!read_uint(s, 4, year) || !expect(s, '-') || !read_uint(s, 2, month) || !expect(s, '-') || !read_uint(s, 2, day)) return std::nullopt;
  if (s.empty() || (s.front() != 'T' && s.front() != 't' && s.front() != ' ')) return std::nullopt;
  s.remove_prefix(1);
  if (!read_uint(s, 2, hour) || !expect(s, ':') || !read_uint(s, 2, minute) || !expect(s, ':') || !read_uint(s, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  double fraction = 0;
  if (!s.empty() && s.front() == '.') {
    s.remove_prefix(1);
    double scale = 0.1;
    if (s.empty() || s.front() < '0' || s.front() > '9') return std::nullopt;
    while (!s.empty() && s.front() >= '0' && s.front() <= '9') {
      fraction += scale * (s.front() - '0');
      scale /= 10;
      s.remove_prefix(1);
    }
  }
  std::int64_t offset_s = 0;
  if (s == "Z" || s == "z") {
    s.remove_prefix(1);
  } else if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    const int sign = s.front() == '+' ? 1 : -1;
    s.remove_prefix(1);
    unsigned oh = 0, om = 0;
    if (!read_uint(s, 2, oh) || !expect(s, ':') || !read_uint(s, 2, om) || oh > 23 || om > 59) return std::nullopt;
    offset_s = sign * static_cast<std::int64_t>(oh * 3600 + om * 60);
  } else {
    return std::nullopt;
  }
  if (!s.empty()) return std::nullopt;
  const std::int64_t local = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
  return static_cast<double>(local - offset_s) + fraction;
}

Duration until_unix(double unix_seconds, std::chrono::system_clock::time_point wall_now) noexcept {
  const double now_s = std::chrono::duration<double>(wall_now.time_since_epoch()).count();
  const double delta = unix_seconds - now_s;
  if (!(delta > 0)) return Duration{0};
  return Duration{static_cast<Duration::rep>(std::min(delta, 1e9) * 1e9)};
}

// A reset value: a duration ("6m0s", "20"), a Unix timestamp in seconds or milliseconds,
// or an RFC 3339 time (Anthropic's).
std::optional<Duration> parse_reset(std::string_view text, std::chrono::system_clock::time_point wall_now) noexcept {
  text = trim(text);
  if (text.size() >= 20 && text[4] == '-') {
    if (const auto t = parse_rfc3339(text)) return until_unix(*t, wall_now);
    return std::nullopt;
  }
  if (all_digits(text) && text.size() >= 10 && text.size() <= 16) {
    double v = 0;
    for (char c : text) v = v * 10 + (c - '0');
    if (v >= 1e12) return until_unix(v / 1000.0, wall_now);
    if (v >= 1e9) return until_unix(v, wall_now);
  }
  return parse_duration(text);
}

}  // namespace

bool RateLimitHeaders::empty() const noexcept {
  return !limit_requests && !limit_tokens && !remaining_requests && !remaining_tokens && !reset_requests &&
         !reset_tokens && !retry_after && !limit_requests_day && !remaining_requests_day && !reset_requests_day;
}

RateLimitHeaders for_provider(RateLimitHeaders h, Provider provider) noexcept {
  switch (provider) {
    case Provider::openai:
    case Provider::azure:
      return h;
    case Provider::groq:
      h.limit_requests_day = std::exchange(h.limit_requests, std::nullopt);
      h.remaining_requests_day = std::exchange(h.remaining_requests, std::nullopt);
      h.reset_requests_day = std::exchange(h.reset_requests, std::nullopt);
      return h;
    case Provider::none: {
      RateLimitHeaders out;
      out.retry_after = h.retry_after;
      return out;
    }
  }
  return h;
}

std::optional<Duration> RateLimitHeaders::wait_hint() const noexcept {
  if (retry_after) return retry_after;
  std::optional<Duration> out;
  if (remaining_requests && *remaining_requests == 0 && reset_requests) out = reset_requests;
  if (remaining_tokens && *remaining_tokens == 0 && reset_tokens) out = out ? std::max(*out, *reset_tokens) : *reset_tokens;
  return out;
}

std::optional<std::int64_t> parse_header_count(std::string_view text) noexcept {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  std::size_t pos = 0;
  std::int64_t value = 0;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    const int digit = text[pos] - '0';
    if (value > (std::numeric_limits<std::int64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
    ++pos;
  }
  if (pos == 0) return std::nullopt;  // "-1", "abc", ".5"
  if (pos < text.size()) {
    // Accept a fractional part ("100.0", "99.5"): rounded down.
    if (text[pos] != '.') return std::nullopt;
    ++pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    if (pos < text.size()) return std::nullopt;
  }
  return value;
}

std::optional<Duration> parse_retry_after(std::string_view text, std::chrono::system_clock::time_point wall_now) noexcept {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  if (text.front() >= '0' && text.front() <= '9') {
    // delta-seconds; decimals tolerated; bare number only (no "1s" here per RFC 9110,
    // but accept it: some gateways send it).
    return parse_duration(text);
  }
  if (const auto unix_s = parse_http_date(text)) return until_unix(static_cast<double>(*unix_s), wall_now);
  return std::nullopt;
}

namespace {

// The headers read, in the order of kRateLimitNames.
enum Name : std::size_t {
  kLimitRequests, kLimitTokens, kRemainingRequests, kRemainingTokens, kResetRequests, kResetTokens,
  kRetryAfterMs, kRetryAfter,
  kAnthropicRequestsLimit, kAnthropicTokensLimit, kAnthropicRequestsRemaining, kAnthropicTokensRemaining,
  kAnthropicRequestsReset, kAnthropicTokensReset,
  kNameCount
};

constexpr std::array<std::string_view, kNameCount> kRateLimitNames = {
    "x-ratelimit-limit-requests", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens",
    "retry-after-ms", "retry-after",
    "anthropic-ratelimit-requests-limit", "anthropic-ratelimit-tokens-limit", "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-reset"};

// Which of the names above `name` is (any case), or kNameCount: its first letter picks the
// group (x-ratelimit-*, retry-after*, anthropic-ratelimit-*) and only that group's names of
// the same length are compared, so most of a response's headers cost a switch. Names
// usually arrive lower-cased (HTTP/2 requires it; the transport lowers them): bytes are
// compared first, and case is folded only for a name that has capitals.
std::size_t name_index(std::string_view name) noexcept {
  if (name.size() < 11) return kNameCount;
  std::size_t first = 0;
  std::size_t last = 0;
  switch (name[0]) {
    case 'x': case 'X': first = kLimitRequests; last = kRetryAfterMs; break;
    case 'r': case 'R': first = kRetryAfterMs; last = kAnthropicRequestsLimit; break;
    case 'a': case 'A': first = kAnthropicRequestsLimit; last = kNameCount; break;
    default: return kNameCount;
  }
  for (std::size_t i = first; i < last; ++i) {
    if (name == kRateLimitNames[i]) return i;
  }
  if (std::none_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) return kNameCount;
  for (std::size_t i = first; i < last; ++i) {
    if (iequals(name, kRateLimitNames[i])) return i;
  }
  return kNameCount;
}

// What the headers say; `value(n)` is the value of kRateLimitNames[n] (nullopt if absent).
template <class Value>
RateLimitHeaders interpret(Value&& value, std::chrono::system_clock::time_point wall_now) {
  RateLimitHeaders h;
  auto count = [&](Name n) -> std::optional<std::int64_t> {
    const auto v = value(n);
    return v ? parse_header_count(*v) : std::nullopt;
  };
  auto positive = [](std::optional<std::int64_t> v) { return v && *v > 0 ? v : std::nullopt; };
  h.limit_requests = positive(count(kLimitRequests));
  h.limit_tokens = positive(count(kLimitTokens));
  h.remaining_requests = count(kRemainingRequests);
  h.remaining_tokens = count(kRemainingTokens);
  if (const auto v = value(kResetRequests)) h.reset_requests = parse_reset(*v, wall_now);
  if (const auto v = value(kResetTokens)) h.reset_tokens = parse_reset(*v, wall_now);
  // Anthropic (also on its OpenAI-compatible endpoint): anthropic-ratelimit-requests-* and
  // -tokens-* (the most restrictive token limit in force), resets as RFC 3339 times. Read
  // only for what the x-ratelimit-* headers did not say.
  if (!h.limit_requests) h.limit_requests = positive(count(kAnthropicRequestsLimit));
  if (!h.limit_tokens) h.limit_tokens = positive(count(kAnthropicTokensLimit));
  if (!h.remaining_requests) h.remaining_requests = count(kAnthropicRequestsRemaining);
  if (!h.remaining_tokens) h.remaining_tokens = count(kAnthropicTokensRemaining);
  if (!h.reset_requests) {
    if (const auto v = value(kAnthropicRequestsReset)) h.reset_requests = parse_reset(*v, wall_now);
  }
  if (!h.reset_tokens) {
    if (const auto v = value(kAnthropicTokensReset)) h.reset_tokens = parse_reset(*v, wall_now);
  }
  if (const auto v = value(kRetryAfterMs)) {
    const auto t = trim(*v);
    if (!t.empty() && t.front() >= '0' && t.front() <= '9') {
      if (const auto d = parse_duration(t)) h.retry_after = Duration{d->count() / 1000};  // "seconds" -> ms
    }
  }
  if (!h.retry_after) {
    if (const auto v = value(kRetryAfter)) h.retry_after = parse_retry_after(*v, wall_now);
  }
  return h;
}

std::chrono::system_clock::time_point wall_or_now(std::optional<std::chrono::system_clock::time_point> wall_now) {
  return wall_now ? *wall_now : std::chrono::system_clock::now();
}

// One pass over the response's headers (often 15-20) picks out the ones that matter (the
// first of each name), then they are read by index.
template <class Pairs>
RateLimitHeaders parse_pairs(const Pairs& headers, std::optional<std::chrono::system_clock::time_point> wall_now) {
  std::array<std::optional<std::string_view>, kNameCount> found;
  for (const auto& [name, value] : headers) {
    const std::size_t i = name_index(name);
    if (i < kNameCount && !found[i]) found[i] = std::string_view(value);
  }
  return interpret([&](Name n) { return found[n]; }, wall_or_now(wall_now));
}

}  // namespace

RateLimitHeaders parse_rate_limit_headers(const HeaderLookup& get, std::optional<std::chrono::system_clock::time_point> wall_now) {
  return interpret([&](Name n) { return get(kRateLimitNames[n]); }, wall_or_now(wall_now));
}

RateLimitHeaders parse_rate_limit_headers(std::span<const std::pair<std::string, std::string>> headers,
                                          std::optional<std::chrono::system_clock::time_point> wall_now) {
  return parse_pairs(headers, wall_now);
}

RateLimitHeaders parse_rate_limit_headers(std::span<const std::pair<std::string_view, std::string_view>> headers,
                                          std::optional<std::chrono::system_clock::time_point> wall_now) {
  return parse_pairs(headers, wall_now);
}

}  // namespace floodgate::limit
