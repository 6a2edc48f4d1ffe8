// Fuzz target: OpenAI duration parsing never crashes, and whatever it accepts formats
// and parses back to within a millisecond (format rounds up to whole milliseconds).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "floodgate/core/duration.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = floodgate::parse_duration(text);
  if (parsed) {
    if (parsed->count() < 0) std::abort();
    const auto again = floodgate::parse_duration(floodgate::format_duration(*parsed));
    if (!again) std::abort();
    const auto diff = *again - *parsed;
    if (diff.count() < 0 || diff > std::chrono::milliseconds(1)) std::abort();
  }
  return 0;
}
