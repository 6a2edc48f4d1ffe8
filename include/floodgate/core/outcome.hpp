#pragma once
// The terminal result of one request: what the Recorder writes to the journal and sinks.

#include <cstdint>
#include <string>

#include "floodgate/core/error_kind.hpp"

namespace floodgate {

struct Usage {
  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_tokens = 0;
  std::uint64_t total_tokens = 0;
  std::uint64_t cached_tokens = 0;
  std::uint64_t reasoning_tokens = 0;
};

struct Outcome {
  std::string custom_id;
  std::uint64_t line_no = 0;
  int status_code = 0;          // last HTTP status; 0 when no response was received
  std::string request_id;       // the server's x-request-id
  std::string body;             // the response body as received (JSON), empty when none
  ErrorKind error = ErrorKind::none;
  std::string error_message;    // for error lines: what happened, never the API key
  std::uint32_t attempts = 0;
  Usage usage;
  double latency_seconds = 0;   // of the final attempt
  [[nodiscard]] bool ok() const noexcept { return error == ErrorKind::none; }
};

}  // namespace floodgate
