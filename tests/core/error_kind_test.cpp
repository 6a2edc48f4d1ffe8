#include "floodgate/core/error_kind.hpp"

#include <gtest/gtest.h>

using floodgate::classify_http;
using floodgate::ErrorKind;
using floodgate::is_retryable;

TEST(ClassifyHttp, ByStatusAndCodeNeverByMessage) {
  EXPECT_EQ(classify_http(200, "", ""), ErrorKind::none);
  EXPECT_EQ(classify_http(429, "requests", "rate_limit_exceeded"), ErrorKind::rate_limited);
  EXPECT_EQ(classify_http(429, "insufficient_quota", "insufficient_quota"), ErrorKind::insufficient_quota);
  EXPECT_EQ(classify_http(429, "", ""), ErrorKind::rate_limited);
  EXPECT_EQ(classify_http(500, "server_error", ""), ErrorKind::server_error);
  EXPECT_EQ(classify_http(503, "", ""), ErrorKind::server_error);
  EXPECT_EQ(classify_http(400, "invalid_request_error", ""), ErrorKind::bad_request);
  EXPECT_EQ(classify_http(401, "invalid_request_error", "invalid_api_key"), ErrorKind::auth);
  EXPECT_EQ(classify_http(408, "", ""), ErrorKind::timeout);
  EXPECT_EQ(classify_http(409, "", ""), ErrorKind::conflict);
  // The audio endpoint answers an oversize upload with 413 and type server_error: still terminal.
  EXPECT_EQ(classify_http(413, "server_error", ""), ErrorKind::too_large);
  EXPECT_EQ(classify_http(422, "", ""), ErrorKind::unprocessable);
  EXPECT_EQ(classify_http(418, "", ""), ErrorKind::http_other);
}

TEST(IsRetryable, RetriesOnlyTransientKinds) {
  for (auto k : {ErrorKind::rate_limited, ErrorKind::server_error, ErrorKind::timeout, ErrorKind::conflict,
                 ErrorKind::connection, ErrorKind::bad_response}) {
    EXPECT_TRUE(is_retryable(k)) << to_string(k);
  }
  for (auto k : {ErrorKind::none, ErrorKind::bad_request, ErrorKind::auth, ErrorKind::permission, ErrorKind::not_found,
                 ErrorKind::too_large, ErrorKind::unprocessable, ErrorKind::insufficient_quota, ErrorKind::invalid_input,
                 ErrorKind::cannot_fit}) {
    EXPECT_FALSE(is_retryable(k)) << to_string(k);
  }
}

TEST(ErrorKindNames, RoundTrip) {
  for (int i = 0; i <= static_cast<int>(ErrorKind::cancelled); ++i) {
    const auto k = static_cast<ErrorKind>(i);
    EXPECT_EQ(floodgate::error_kind_from_string(to_string(k)), k);
  }
  EXPECT_FALSE(floodgate::error_kind_from_string("bogus"));
}

// A 429 that waiting will not fix, by OpenAI's billing codes (in `code`, or as the type).
TEST(ClassifyHttp, SpendAndUsageLimit429sAreQuota) {
  for (const char* code : {"insufficient_quota", "credit_balance_exhausted", "organization_spend_limit_exceeded",
                           "project_spend_limit_exceeded", "organization_usage_limit_exceeded", "billing_hard_limit_reached"}) {
    EXPECT_EQ(classify_http(429, "insufficient_quota", code), ErrorKind::insufficient_quota) << code;
    EXPECT_EQ(classify_http(429, "", code), ErrorKind::insufficient_quota) << code;
  }
  EXPECT_EQ(classify_http(429, "tokens", "rate_limit_exceeded"), ErrorKind::rate_limited);
}

// A 429 body that is not a JSON error object: the code as a whole word in any case, or
// OpenAI's sentence; nothing else.
TEST(QuotaCodeInText, FindsCodesAsWordsInPlainText) {
  using floodgate::quota_code_in_text;
  EXPECT_EQ(quota_code_in_text("insufficient_quota"), "insufficient_quota");
  EXPECT_EQ(quota_code_in_text("Error 429: INSUFFICIENT_QUOTA (see billing)"), "insufficient_quota");
  EXPECT_EQ(quota_code_in_text("<html><body>project_spend_limit_exceeded</body></html>"), "project_spend_limit_exceeded");
  EXPECT_EQ(quota_code_in_text("You exceeded your current quota, please check your plan and billing details."), "insufficient_quota");
  EXPECT_EQ(quota_code_in_text("Rate limit reached for requests"), "");
  EXPECT_EQ(quota_code_in_text("not_insufficient_quota_at_all"), "");
  EXPECT_EQ(quota_code_in_text(""), "");
}
