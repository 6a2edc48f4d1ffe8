#include "words.hpp"

#include <ctime>

namespace floodgate::engine {

std::string format_utc(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(std::chrono::ceil<std::chrono::minutes>(t));
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char when[64];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
  return when;
}

}  // namespace floodgate::engine
