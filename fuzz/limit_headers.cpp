// Fuzz target: rate-limit header parsing never crashes and never yields a negative count,
// a non-positive limit or a negative duration. Input: header lines "name: value\n".
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "floodgate/limit/rate_limit_headers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::pair<std::string, std::string>> headers;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    const std::size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      headers.emplace_back(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)));
    }
    pos = end + 1;
  }
  using namespace floodgate::limit;
  const auto wall_now = std::chrono::system_clock::time_point{std::chrono::seconds(1795366800)};
  const RateLimitHeaders h = parse_rate_limit_headers(headers, wall_now);
  auto non_negative = [](const auto& v) {
    if (v && v->count() < 0) std::abort();
  };
  if (h.limit_requests && *h.limit_requests <= 0) std::abort();
  if (h.limit_tokens && *h.limit_tokens <= 0) std::abort();
  if (h.remaining_requests && *h.remaining_requests < 0) std::abort();
  if (h.remaining_tokens && *h.remaining_tokens < 0) std::abort();
  non_negative(h.reset_requests);
  non_negative(h.reset_tokens);
  non_negative(h.retry_after);
  non_negative(h.wait_hint());
  // The single-value parsers on the whole input too.
  if (const auto c = parse_header_count(text); c && *c < 0) std::abort();
  non_negative(parse_retry_after(text, wall_now));
  return 0;
}
