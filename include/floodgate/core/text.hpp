#pragma once
// Small ASCII text helpers shared by the client, the audio paths and the simulator:
// header names, header values and the lines of text formats are ASCII-case-insensitive
// and padded with ASCII whitespace, never with the locale's.

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace floodgate {

// `s` without leading and trailing spaces, tabs, CRs and LFs. (Plain loops: it runs on
// every response header line, and find_first_not_of() searches the set for every byte.)
[[nodiscard]] constexpr std::string_view trim(std::string_view s) noexcept {
  constexpr auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  std::size_t first = 0;
  std::size_t end = s.size();
  while (first < end && is_space(s[first])) ++first;
  while (end > first && is_space(s[end - 1])) --end;
  return s.substr(first, end - first);
}

namespace detail {
// ASCII lower case by table: one load per byte (header names are lowered byte by byte on
// every response).
inline constexpr std::array<char, 256> kAsciiLower = [] {
  std::array<char, 256> t{};
  for (int c = 0; c < 256; ++c) t[static_cast<std::size_t>(c)] = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return t;
}();
}  // namespace detail

[[nodiscard]] constexpr char ascii_lower(char c) noexcept { return detail::kAsciiLower[static_cast<unsigned char>(c)]; }

[[nodiscard]] std::string ascii_lower(std::string_view s);

// Equal ignoring ASCII case.
[[nodiscard]] constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

// A JSON parser's message without nlohmann's "[json.exception.parse_error.101] " prefix:
// "parse error at line 2, column 12: syntax error ..." (what a user needs: where).
[[nodiscard]] constexpr std::string_view json_error_text(std::string_view what) noexcept {
  const auto close = what.find("] ");
  if (what.starts_with("[json.exception") && close != std::string_view::npos) what.remove_prefix(close + 2);
  return what;
}

// 1234567 -> "1,234,567" (counts in messages and summaries).
[[nodiscard]] std::string thousands(std::uint64_t v);

// "2026-12-03T08:27:45.123Z": UTC, milliseconds (ISO 8601, as the journal and tables write).
[[nodiscard]] std::string iso8601_utc(std::chrono::system_clock::time_point t);

}  // namespace floodgate
