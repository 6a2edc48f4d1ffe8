#include "words.hpp"

#include <ctime>

namespace floodgate::engine {

std::string thousands(std::uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string format_utc(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(std::chrono::ceil<std::chrono::minutes>(t));
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char when[64];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
  return when;
}

}  // namespace floodgate::engine
