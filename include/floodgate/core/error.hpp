#pragma once
// Configuration and start-up errors: one exception type with one clear sentence, caught
// in main() and printed as "floodgate: <message>". Per-request failures are Outcomes.

#include <stdexcept>
#include <string>

#include "floodgate/core/exit_codes.hpp"

namespace floodgate {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, int exit_code = exit_code::usage)
      : std::runtime_error(message), exit_code_(exit_code) {}
  [[nodiscard]] int exit_code() const noexcept { return exit_code_; }

 private:
  int exit_code_;
};

}  // namespace floodgate
