// The classifier as a table: one transport answer in, the outcome's kind, message and the
// flags the engine acts on out. No server, no clock.
#include "engine/classifier.hpp"

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace floodgate::engine {
namespace {

using http::HttpResponse;
using http::TransportError;

HttpResponse answer(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.add_header("x-request-id", "req_1");
  return r;
}

HttpResponse failure(TransportError error, std::string message, int partial_status = 0) {
  HttpResponse r;
  r.error = error;
  r.error_message = std::move(message);
  r.partial_status = partial_status;
  r.answer_started = partial_status != 0;
  return r;
}

std::string error_body(const std::string& type, const std::string& code, const std::string& message) {
  return R"({"error":{"type":")" + type + R"(","code":")" + code + R"(","message":")" + message + R"("}})";
}

struct Row {
  const char* what;
  HttpResponse response;
  ErrorKind kind;
  std::string message;  // the outcome's error_message ("" for a success)
  bool reached;
  bool no_contact;
  std::string quota_code;
  std::string refusal;
  bool keeps_body;
};

TEST(Classifier, EveryKindOfAnswerAsATable) {
  const std::string ok = R"({"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}})";
  std::vector<Row> rows;
  rows.push_back({"2xx JSON", answer(200, ok), ErrorKind::none, "", true, false, "", "", true});
  rows.push_back({"2xx not JSON", answer(200, "<html>"), ErrorKind::bad_response,
                  "the 200 response body is not valid JSON (6 bytes)", true, false, "", "", false});
  rows.push_back({"429 rate limit", answer(429, error_body("requests", "rate_limit_exceeded", "Rate limit reached")),
                  ErrorKind::rate_limited, "Rate limit reached", true, false, "", "", true});
  rows.push_back({"429 quota", answer(429, error_body("insufficient_quota", "insufficient_quota", "You exceeded your current quota")),
                  ErrorKind::insufficient_quota, "You exceeded your current quota", true, false, "insufficient_quota", "", true});
  rows.push_back({"429 spend limit by code", answer(429, error_body("insufficient_quota", "organization_spend_limit_exceeded", "")),
                  ErrorKind::insufficient_quota, "HTTP 429 (organization_spend_limit_exceeded)", true, false,
                  "organization_spend_limit_exceeded", "", true});
  rows.push_back({"429 quota in plain text", answer(429, "billing_hard_limit_reached\nsee your plan"),
                  ErrorKind::insufficient_quota, "HTTP 429 (billing_hard_limit_reached): billing_hard_limit_reached see your plan",
                  true, false, "billing_hard_limit_reached", "", false});
  rows.push_back({"429 plain text, no quota", answer(429, "slow down"), ErrorKind::rate_limited, "HTTP 429", true, false, "", "",
                  false});
  rows.push_back({"500", answer(500, error_body("server_error", "", "boom")), ErrorKind::server_error, "boom", true, false, "",
                  "", true});
  rows.push_back({"503 empty", answer(503, ""), ErrorKind::server_error, "HTTP 503", true, false, "", "", false});
  rows.push_back({"400", answer(400, error_body("invalid_request_error", "", "bad field")), ErrorKind::bad_request, "bad field",
                  true, false, "", "", true});
  rows.push_back({"401 refusal", answer(401, error_body("invalid_request_error", "invalid_api_key", "Incorrect API key")),
                  ErrorKind::auth, "Incorrect API key", true, false, "", "401 invalid_api_key", true});
  rows.push_back({"404 refusal", answer(404, error_body("invalid_request_error", "model_not_found", "")), ErrorKind::not_found,
                  "HTTP 404 (model_not_found)", true, false, "", "404 model_not_found", true});
  rows.push_back({"refused connection", failure(TransportError::connection, "Connection refused"), ErrorKind::connection,
                  "connection error: Connection refused", false, true, "", "", false});
  rows.push_back({"timeout without answer", failure(TransportError::timeout, "Operation timed out"), ErrorKind::timeout,
                  "timeout: Operation timed out", false, true, "", "", false});
  rows.push_back({"timeout mid-body", failure(TransportError::timeout, "Operation timed out", 200), ErrorKind::timeout,
                  "timeout after the server began answering (HTTP 200): Operation timed out", true, false, "", "", false});
  rows.push_back({"reset mid-body", failure(TransportError::connection, "Recv failure", 200), ErrorKind::connection,
                  "connection error after the server began answering (HTTP 200): Recv failure", true, false, "", "", false});
  rows.push_back({"body over the cap", failure(TransportError::too_large, "body over 64 KiB", 200), ErrorKind::bad_response,
                  "HTTP 200: body over 64 KiB", true, false, "", "", false});
  rows.push_back({"local failure", failure(TransportError::other, "cannot read upload"), ErrorKind::connection,
                  "connection error: cannot read upload", false, false, "", "", false});

  for (auto& row : rows) {
    SCOPED_TRACE(row.what);
    const std::string body = row.response.body;
    const Exchange x = classify_exchange(row.response);
    EXPECT_EQ(to_string(x.outcome.error), to_string(row.kind));
    EXPECT_EQ(x.outcome.error_message, row.message);
    EXPECT_EQ(x.reached, row.reached);
    EXPECT_EQ(x.no_contact, row.no_contact);
    EXPECT_EQ(x.quota_code, row.quota_code);
    EXPECT_EQ(x.refusal, row.refusal);
    EXPECT_EQ(x.outcome.body, row.keeps_body ? body : "");
    EXPECT_EQ(x.outcome.status_code, row.response.status);
    if (row.response.error == TransportError::none) {
      EXPECT_EQ(x.outcome.request_id, "req_1");
    }
  }
}

// A timeout after the request went out is still no contact by itself (a hung server), but
// flagged: the engine calls it this request's timeout when others were answered meanwhile.
TEST(Classifier, ATimeoutAfterTheRequestWentOutIsFlagged) {
  auto sent = failure(TransportError::timeout, "Operation timed out after 1000 milliseconds with 0 bytes received");
  sent.request_sent = true;
  const Exchange x = classify_exchange(sent);
  EXPECT_TRUE(x.no_contact);
  EXPECT_TRUE(x.timed_out_sent);
  auto connecting = failure(TransportError::timeout, "Connection timed out after 10001 milliseconds");
  EXPECT_FALSE(classify_exchange(connecting).timed_out_sent) << "never connected";
  auto refused = failure(TransportError::connection, "Connection refused");
  refused.request_sent = true;
  EXPECT_FALSE(classify_exchange(refused).timed_out_sent) << "not a timeout";
  auto mid_body = failure(TransportError::timeout, "Operation timed out", 200);
  mid_body.request_sent = true;
  EXPECT_FALSE(classify_exchange(mid_body).timed_out_sent) << "answered (reached), not a request without answer";
}

TEST(Classifier, ASuccessCarriesItsUsage) {
  auto r = answer(200, R"({"usage":{"prompt_tokens":7,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":2}}})");
  const Exchange x = classify_exchange(r);
  ASSERT_TRUE(x.outcome.ok());
  EXPECT_EQ(x.outcome.usage.prompt_tokens, 7u);
  EXPECT_EQ(x.outcome.usage.completion_tokens, 3u);
  EXPECT_EQ(x.outcome.usage.total_tokens, 10u);
  EXPECT_EQ(x.outcome.usage.cached_tokens, 2u);
}

TEST(Classifier, ExcerptsAreBoundedAndPrintable) {
  EXPECT_EQ(printable_excerpt("a\nb\tc", 10), "a b c");
  EXPECT_EQ(printable_excerpt("abcdef", 3), "abc...");
}

}  // namespace
}  // namespace floodgate::engine
