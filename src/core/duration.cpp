#include "floodgate/core/duration.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>

#include "floodgate/core/text.hpp"

namespace floodgate {
namespace {

constexpr double kMaxSeconds = 100.0 * 365 * 24 * 3600;

// Reads a non-negative decimal number at text[pos...]; advances pos.
std::optional<double> read_number(std::string_view text, std::size_t& pos) noexcept {
  const std::size_t start = pos;
  double int_part = 0;
  bool digits = false;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    int_part = int_part * 10 + (text[pos] - '0');
    ++pos;
    digits = true;
  }
  double frac = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    double scale = 0.1;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      frac += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
      digits = true;
    }
  }
  if (!digits) {
    pos = start;
    return std::nullopt;
  }
  return int_part + frac;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) noexcept {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  std::size_t pos = 0;
  double seconds = 0;
  bool any_unit = false;
  while (pos < text.size()) {
    auto number = read_number(text, pos);
    if (!number) return std::nullopt;
    if (pos == text.size()) {
      // A bare number: seconds, valid only as the whole text ("20", "0.5").
      if (any_unit) return std::nullopt;
      seconds = *number;
      break;
    }
    double unit = 0;
    std::string_view rest = text.substr(pos);
    if (rest.starts_with("ms")) {
      unit = 1e-3;
      pos += 2;
    } else if (rest.starts_with("us") || rest.starts_with("\xC2\xB5s")) {
      unit = 1e-6;
      pos += rest.starts_with("us") ? 2 : 3;
    } else if (rest.starts_with("ns")) {
      unit = 1e-9;
      pos += 2;
    } else if (rest.front() == 'h') {
      unit = 3600;
      ++pos;
    } else if (rest.front() == 'm') {
      unit = 60;
      ++pos;
    } else if (rest.front() == 's') {
      unit = 1;
      ++pos;
    } else {
      return std::nullopt;
    }
    seconds += *number * unit;
    any_unit = true;
    if (seconds > kMaxSeconds) return std::nullopt;
  }
  if (!(seconds >= 0) || seconds > kMaxSeconds) return std::nullopt;
  return Duration{static_cast<std::int64_t>(std::llround(seconds * 1e9))};
}

std::string format_duration(Duration d) {
  if (d.count() < 0) d = Duration{0};
  const std::int64_t total_ms = (d.count() + 999'999) / 1'000'000;  // round up: never promise too early
  char buf[64];
  if (total_ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(total_ms));
    return buf;
  }
  const std::int64_t hours = total_ms / 3'600'000;
  const std::int64_t minutes = (total_ms / 60'000) % 60;
  const std::int64_t ms_in_minute = total_ms % 60'000;
  const std::int64_t whole_s = ms_in_minute / 1000;
  const std::int64_t frac_ms = ms_in_minute % 1000;
  char secs[32];
  if (frac_ms == 0) {
    std::snprintf(secs, sizeof secs, "%llds", static_cast<long long>(whole_s));
  } else {
    // Up to three decimals, trailing zeros dropped: 1.5s, 1.25s, 1.125s.
    int len = std::snprintf(secs, sizeof secs, "%lld.%03lld", static_cast<long long>(whole_s), static_cast<long long>(frac_ms));
    while (len > 0 && secs[len - 1] == '0') secs[--len] = '\0';
    secs[len++] = 's';
    secs[len] = '\0';
  }
  if (hours > 0) {
    std::snprintf(buf, sizeof buf, "%lldh%lldm%s", static_cast<long long>(hours), static_cast<long long>(minutes), secs);
  } else if (minutes > 0) {
    std::snprintf(buf, sizeof buf, "%lldm%s", static_cast<long long>(minutes), secs);
  } else {
    std::snprintf(buf, sizeof buf, "%s", secs);
  }
  return buf;
}

}  // namespace floodgate
