#pragma once
// Per-request failures are data, never exceptions. An Outcome carries an ErrorKind; the
// classifier maps HTTP status + the error body's `type`/`code` (never its message text)
// to a kind, and is_retryable() drives both the retry policy and the circuit breaker.

#include <optional>
#include <string_view>

namespace floodgate {

enum class ErrorKind {
  none = 0,
  // retryable
  rate_limited,        // 429 rate_limit_exceeded
  server_error,        // 5xx
  timeout,             // 408 or a client-side timeout
  conflict,            // 409
  connection,          // reset, refused, DNS, TLS ...
  bad_response,        // truncated or malformed body with a 2xx status
  // terminal for the request
  bad_request,         // 400
  auth,                // 401
  permission,          // 403
  not_found,           // 404
  too_large,           // 413
  unprocessable,       // 422
  http_other,          // any other non-2xx status
  invalid_input,       // the input line itself is bad (not JSON, no body, duplicate id ...)
  cannot_fit,          // the request's cost exceeds a per-minute limit: it can never be admitted
  max_wait,            // waited longer than --max-wait for admission
  schema_violation,    // the answer is not valid against the requested JSON Schema
  refusal,             // the model refused (message.refusal)
  // terminal for the whole job
  insufficient_quota,  // 429 insufficient_quota: stop admitting at once
  // (A spent budget is no kind: the run stops admitting and leaves the rest unsent, exit 4.)
  cancelled,           // the job was interrupted before this request finished
};

[[nodiscard]] std::string_view to_string(ErrorKind kind) noexcept;
[[nodiscard]] std::optional<ErrorKind> error_kind_from_string(std::string_view name) noexcept;

// True for the kinds that are worth another attempt of the same request.
[[nodiscard]] constexpr bool is_retryable(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::rate_limited:
    case ErrorKind::server_error:
    case ErrorKind::timeout:
    case ErrorKind::conflict:
    case ErrorKind::connection:
    case ErrorKind::bad_response:
      return true;
    default:
      return false;
  }
}

// Classifies a finished HTTP exchange. `type` and `code` come from the error body
// ({"error":{"type":...,"code":...}}) and may be empty. A 429 whose type or code is a
// quota code (below) is insufficient_quota; any other 429 is rate_limited.
[[nodiscard]] ErrorKind classify_http(int status, std::string_view type, std::string_view code) noexcept;

// The codes of a 429 that waiting does not fix: `insufficient_quota` and the billing codes
// OpenAI documents under that type (credit_balance_exhausted,
// organization_spend_limit_exceeded, project_spend_limit_exceeded,
// organization_usage_limit_exceeded) and billing_hard_limit_reached.
[[nodiscard]] bool is_quota_code(std::string_view code) noexcept;
// A 429 body that is not a JSON error object (plain text, a gateway's HTML): the first
// quota code it names (as a whole word, any case), "insufficient_quota" for OpenAI's
// "You exceeded your current quota" sentence, or "" when it names none.
[[nodiscard]] std::string_view quota_code_in_text(std::string_view body) noexcept;

}  // namespace floodgate
