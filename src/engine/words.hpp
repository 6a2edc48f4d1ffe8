#pragma once
// Number and time formats shared by the engine's messages and its summary.

#include <chrono>
#include <cstdint>
#include <string>

namespace floodgate::engine {

// 1234567 -> "1,234,567".
[[nodiscard]] std::string thousands(std::uint64_t v);

// "2026-11-23 03:12 UTC", rounded up to the minute (a time to wait for, never early).
[[nodiscard]] std::string format_utc(std::chrono::system_clock::time_point t);

}  // namespace floodgate::engine
