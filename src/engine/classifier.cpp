#include "classifier.hpp"

#include <string_view>

#include "floodgate/core/error_kind.hpp"
#include "floodgate/engine/response.hpp"

namespace floodgate::engine {

std::string printable_excerpt(std::string_view body, std::size_t max) {
  std::string out(body.substr(0, max));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  if (body.size() > max) out += "...";
  return out;
}

Exchange classify_exchange(http::HttpResponse& r) {
  Exchange x;
  Outcome& o = x.outcome;
  o.status_code = r.status;
  if (auto rid = r.header("x-request-id")) o.request_id = std::string(*rid);
  x.reached = r.error == http::TransportError::none || r.answer_started;
  x.no_contact = !x.reached && (r.error == http::TransportError::connection || r.error == http::TransportError::timeout);
  x.timed_out_sent = !x.reached && r.error == http::TransportError::timeout && r.request_sent;

  if (r.error != http::TransportError::none) {
    const std::string answered =
        r.answer_started ? " after the server began answering (HTTP " + std::to_string(r.partial_status) + ")" : "";
    if (r.error == http::TransportError::too_large) {
      o.error = ErrorKind::bad_response;
      o.error_message = "HTTP " + std::to_string(r.partial_status) + ": " + r.error_message;
    } else if (r.error == http::TransportError::timeout) {
      o.error = ErrorKind::timeout;
      o.error_message = "timeout" + answered + ": " + r.error_message;
    } else {
      o.error = ErrorKind::connection;
      o.error_message = "connection error" + answered + ": " + r.error_message;
    }
    return x;
  }

  ResponseInfo info = inspect_response_body(r.body);
  if (r.status >= 200 && r.status < 300) {
    if (!info.valid_json) {
      o.error = ErrorKind::bad_response;
      o.error_message = "the " + std::to_string(r.status) + " response body is not valid JSON (" +
                        std::to_string(r.body.size()) + " bytes)";
    } else {
      o.body = std::move(r.body);
      o.usage = info.usage;
    }
    return x;
  }

  o.error = classify_http(r.status, info.error_type, info.error_code);
  if (r.status == 401 || r.status == 403 || r.status == 404) x.refusal = std::to_string(r.status) + " " + info.error_code;
  o.error_message = !info.error_message.empty() ? info.error_message : "HTTP " + std::to_string(r.status);
  if (!info.error_code.empty() && info.error_message.empty()) o.error_message += " (" + info.error_code + ")";
  if (o.error == ErrorKind::insufficient_quota) x.quota_code = is_quota_code(info.error_code) ? info.error_code : info.error_type;
  if (o.error == ErrorKind::rate_limited && info.error_code.empty() && info.error_type.empty()) {
    // Not a JSON error object (plain text, a gateway's page): a quota that waiting will not
    // fix is still recognised by its code.
    if (const std::string_view q = quota_code_in_text(r.body); !q.empty()) {
      o.error = ErrorKind::insufficient_quota;
      x.quota_code = std::string(q);
      o.error_message = "HTTP 429 (" + x.quota_code + "): " + printable_excerpt(r.body, 200);
    }
  }
  if (info.valid_json) o.body = std::move(r.body);
  return x;
}

}  // namespace floodgate::engine
