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
                 ErrorKind::cannot_fit, ErrorKind::budget}) {
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
