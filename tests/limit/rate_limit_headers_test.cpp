#include "floodgate/limit/rate_limit_headers.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using floodgate::Duration;
using namespace floodgate::limit;

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

// 2026-11-22 17:00:00 UTC.
const std::chrono::system_clock::time_point kWallNow{std::chrono::seconds(1795366800)};

RateLimitHeaders parse(const Headers& h) { return parse_rate_limit_headers(h, kWallNow); }

}  // namespace

TEST(RateLimitHeaders, OpenAiFullSet) {
  const auto h = parse({{"x-ratelimit-limit-requests", "5000"},
                        {"x-ratelimit-limit-tokens", "4000000"},
                        {"x-ratelimit-remaining-requests", "4999"},
                        {"x-ratelimit-remaining-tokens", "3999850"},
                        {"x-ratelimit-reset-requests", "12ms"},
                        {"x-ratelimit-reset-tokens", "2m59.56s"}});
  EXPECT_EQ(h.limit_requests, 5000);
  EXPECT_EQ(h.limit_tokens, 4000000);
  EXPECT_EQ(h.remaining_requests, 4999);
  EXPECT_EQ(h.remaining_tokens, 3999850);
  EXPECT_EQ(h.reset_requests, Duration{12ms});
  EXPECT_EQ(h.reset_tokens, Duration{179560ms});
  EXPECT_FALSE(h.retry_after);
  EXPECT_FALSE(h.empty());
}

// Anthropic's names, RFC 3339 resets; the x-ratelimit-* headers win where both are sent.
TEST(RateLimitHeaders, AnthropicHeaders) {
  const auto h = parse({{"Anthropic-Ratelimit-Requests-Limit", "50"},
                        {"anthropic-ratelimit-requests-remaining", "49"},
                        {"anthropic-ratelimit-requests-reset", "2026-11-22T17:00:01.5Z"},
                        {"anthropic-ratelimit-tokens-limit", "40000"},
                        {"anthropic-ratelimit-tokens-remaining", "39000"},
                        {"anthropic-ratelimit-tokens-reset", "2026-11-22T18:00:30+01:00"},
                        {"anthropic-ratelimit-input-tokens-limit", "30000"}});
  EXPECT_EQ(h.limit_requests, 50);
  EXPECT_EQ(h.remaining_requests, 49);
  EXPECT_EQ(h.reset_requests, Duration{1500ms});
  EXPECT_EQ(h.limit_tokens, 40000);
  EXPECT_EQ(h.remaining_tokens, 39000);
  EXPECT_EQ(h.reset_tokens, Duration{30s});
  const auto both = parse({{"x-ratelimit-limit-requests", "500"}, {"anthropic-ratelimit-requests-limit", "50"},
                           {"anthropic-ratelimit-tokens-reset", "2026-11-22T16:59:00Z"},
                           {"anthropic-ratelimit-requests-reset", "2026-11-22 garbage"}});
  EXPECT_EQ(both.limit_requests, 500);
  EXPECT_EQ(both.reset_tokens, Duration{0});  // in the past
  EXPECT_FALSE(both.reset_requests);
}

TEST(RateLimitHeaders, NamesAreCaseInsensitive) {
  const auto h = parse({{"X-RateLimit-Remaining-Requests", "7"}, {"Retry-After", "3"}});
  EXPECT_EQ(h.remaining_requests, 7);
  EXPECT_EQ(h.retry_after, Duration{3s});
}

TEST(RateLimitHeaders, EveryDurationForm) {
  for (const auto& [text, expected] : std::vector<std::pair<std::string, Duration>>{
           {"1s", 1s}, {"6m0s", 6min}, {"60ms", 60ms}, {"1m30.5s", 90500ms}, {"2h", 2h}, {"2m59.56s", 179560ms},
           {"0s", 0s}, {"20", 20s}, {"0.5", 500ms}, {" 17.352s ", 17352ms}}) {
    const auto h = parse({{"x-ratelimit-reset-requests", text}});
    EXPECT_EQ(h.reset_requests, expected) << text;
  }
}

TEST(RateLimitHeaders, MinusOneZeroAndGarbageAreUnknown) {
  const auto h = parse({{"x-ratelimit-limit-requests", "-1"},
                        {"x-ratelimit-limit-tokens", "0"},
                        {"x-ratelimit-remaining-requests", "abc"},
                        {"x-ratelimit-remaining-tokens", "0"},
                        {"x-ratelimit-reset-requests", "soon"},
                        {"x-ratelimit-reset-tokens", "-5s"}});
  EXPECT_FALSE(h.limit_requests);
  EXPECT_FALSE(h.limit_tokens);  // a limit of 0 means unknown
  EXPECT_FALSE(h.remaining_requests);
  EXPECT_EQ(h.remaining_tokens, 0);  // remaining 0 means exhausted
  EXPECT_FALSE(h.reset_requests);
  EXPECT_FALSE(h.reset_tokens);
}

TEST(RateLimitHeaders, MissingHeaders) {
  const auto h = parse({{"content-type", "application/json"}});
  EXPECT_TRUE(h.empty());
  EXPECT_FALSE(h.wait_hint());
}

TEST(RateLimitHeaders, CountForms) {
  EXPECT_EQ(parse_header_count("4999"), 4999);
  EXPECT_EQ(parse_header_count(" 12 "), 12);
  EXPECT_EQ(parse_header_count("100.0"), 100);
  EXPECT_EQ(parse_header_count("99.9"), 99);
  EXPECT_EQ(parse_header_count("0"), 0);
  EXPECT_FALSE(parse_header_count("-1"));
  EXPECT_FALSE(parse_header_count(""));
  EXPECT_FALSE(parse_header_count("12abc"));
  EXPECT_FALSE(parse_header_count("99999999999999999999999"));
  EXPECT_EQ(parse_header_count("9223372036854775807"), INT64_MAX);
}

TEST(RateLimitHeaders, RetryAfterMsWinsOverRetryAfter) {
  const auto h = parse({{"retry-after", "20"}, {"retry-after-ms", "1500"}});
  EXPECT_EQ(h.retry_after, Duration{1500ms});
  const auto fractional = parse({{"retry-after-ms", "12.5"}});
  EXPECT_EQ(fractional.retry_after, Duration{12500us});
  const auto bad_ms = parse({{"retry-after", "2"}, {"retry-after-ms", "-3"}});
  EXPECT_EQ(bad_ms.retry_after, Duration{2s});
}

TEST(RateLimitHeaders, RetryAfterHttpDate) {
  EXPECT_EQ(parse_retry_after("Sun, 22 Nov 2026 17:00:30 GMT", kWallNow), Duration{30s});
  EXPECT_EQ(parse_retry_after("Sun, 22 Nov 2026 16:00:00 GMT", kWallNow), Duration{0});  // past
  EXPECT_EQ(parse_retry_after("Mon, 23 Nov 2026 17:00:00 GMT", kWallNow), Duration{24h});
  EXPECT_FALSE(parse_retry_after("Sun, 22 Foo 2026 17:00:30 GMT", kWallNow));
  EXPECT_FALSE(parse_retry_after("tomorrow", kWallNow));
  EXPECT_FALSE(parse_retry_after("", kWallNow));
  EXPECT_EQ(parse_retry_after("7", kWallNow), Duration{7s});
}

TEST(RateLimitHeaders, ResetAsUnixTimestamp) {
  const auto secs = parse({{"x-ratelimit-reset-requests", "1795366860"}});
  EXPECT_EQ(secs.reset_requests, Duration{60s});
  const auto ms = parse({{"x-ratelimit-reset-tokens", "1795366801500"}});
  EXPECT_EQ(ms.reset_tokens, Duration{1500ms});
}

TEST(RateLimitHeaders, WaitHint) {
  RateLimitHeaders h;
  h.remaining_requests = 3;
  h.reset_requests = 5s;
  EXPECT_FALSE(h.wait_hint());  // nothing exhausted, no retry-after
  h.remaining_tokens = 0;
  h.reset_tokens = 8s;
  EXPECT_EQ(h.wait_hint(), Duration{8s});
  h.remaining_requests = 0;
  h.reset_requests = 12s;
  EXPECT_EQ(h.wait_hint(), Duration{12s});  // the longest exhausted
  h.retry_after = 2s;
  EXPECT_EQ(h.wait_hint(), Duration{2s});  // the server's explicit word wins
}

TEST(RateLimitHeaders, LookupFunction) {
  const auto h = parse_rate_limit_headers(
      [](std::string_view name) -> std::optional<std::string_view> {
        if (name == "x-ratelimit-remaining-tokens") return "42";
        return std::nullopt;
      },
      kWallNow);
  EXPECT_EQ(h.remaining_tokens, 42);
  EXPECT_FALSE(h.remaining_requests);
}
