#pragma once
// Configuration and start-up errors: one exception type with one clear sentence, caught
// in main() and printed as "floodgate: <message>". Per-request failures are Outcomes.

#include <cerrno>
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

// The exit code of a failed write with this errno: the disk is full, a quota or the file
// size limit (RLIMIT_FSIZE) is reached -> exit_code::disk_full (resumable once there is
// room); anything else -> exit_code::internal.
[[nodiscard]] inline int write_failure_exit_code(int err) noexcept {
  return err == ENOSPC || err == EDQUOT || err == EFBIG ? exit_code::disk_full : exit_code::internal;
}

}  // namespace floodgate
