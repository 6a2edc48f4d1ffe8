#pragma once
// Number and time formats shared by the engine's messages and its summary.

#include <chrono>
#include <cstdint>
#include <string>

#include "floodgate/core/text.hpp"

namespace floodgate::engine {

// thousands() is core/text.hpp's.

// "2026-11-23 03:12 UTC", rounded up to the minute (a time to wait for, never early).
[[nodiscard]] std::string format_utc(std::chrono::system_clock::time_point t);

}  // namespace floodgate::engine
