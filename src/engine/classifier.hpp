#pragma once
// The classifier: what one HTTP exchange says, as a pure function of the transport's
// answer. It knows no engine state (attempts, breaker, stop flags): the engine decides what
// to do with the result (finish, retry, pause the model, stop the job). Unit-tested as a
// table in tests/engine/classifier_test.cpp.
//
//   transport error  too_large -> bad_response; timeout -> timeout; else connection
//                    ("after the server began answering (HTTP s)" when a status line came)
//   2xx              JSON -> success with its usage; not JSON -> bad_response (retried)
//   other status     classify_http(status, error.type, error.code): 429 rate_limited or
//                    insufficient_quota (also a quota code named in a non-JSON 429 body),
//                    5xx server_error, 400 bad_request, 401 auth, ...; the message is the
//                    error object's, else "HTTP s" (+ " (code)").

#include <string>

#include "floodgate/core/outcome.hpp"
#include "floodgate/http/transport.hpp"

namespace floodgate::engine {

struct Exchange {
  // error, error_message, status_code, body (kept when it is JSON), usage and request_id;
  // the caller fills in custom_id, line_no, attempts and latency.
  Outcome outcome;
  // A status line arrived, even if the exchange then failed (a slow body that timed out, a
  // reset mid-body): the server is there. Slow is not unreachable.
  bool reached = false;
  // No answer at all: a connection that failed (refused, DNS, TLS, reset before a status
  // line) or an attempt that timed out without one (a blackholed host, a server that never
  // answers); not a local failure such as an unreadable upload (TransportError::other).
  bool no_contact = false;
  // Of no_contact: a timeout after the request went out (the server took the connection and
  // the request, and sent no status line in time). Slow, or hung: the engine tells them
  // apart by whether other requests were answered meanwhile.
  bool timed_out_sent = false;
  std::string quota_code;  // insufficient_quota: the code (or type) that said so
  std::string refusal;     // a 401/403/404 answer: "401 invalid_api_key" (status and code)
};

// Classifies `response`; its body is moved into the outcome when kept.
[[nodiscard]] Exchange classify_exchange(http::HttpResponse& response);

// At most `max` bytes of a body for a message, control characters as spaces, "..." when cut.
[[nodiscard]] std::string printable_excerpt(std::string_view body, std::size_t max);

}  // namespace floodgate::engine
