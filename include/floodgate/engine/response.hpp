#pragma once
// What the engine reads from a response body: whether it is JSON at all (a 2xx body that
// is not is a bad_response, retried), the `usage` to reconcile the limiter with, and the
// error object's type/code/message ({"error":{"type","code","message"}}) for the
// classifier. Classification uses type/code only; the message is kept for the output line.

#include <string>
#include <string_view>

#include "floodgate/core/outcome.hpp"

namespace floodgate::engine {

struct ResponseInfo {
  bool valid_json = false;
  bool has_usage = false;
  Usage usage;
  std::string error_type;
  std::string error_code;
  std::string error_message;
};

[[nodiscard]] ResponseInfo inspect_response_body(std::string_view body);

}  // namespace floodgate::engine
