#include "floodgate/core/request.hpp"

#include <array>
#include <utility>

namespace floodgate {
namespace {
constexpr std::array<std::pair<Endpoint, std::string_view>, 6> kPaths{{
    {Endpoint::chat_completions, "/v1/chat/completions"},
    {Endpoint::embeddings, "/v1/embeddings"},
    {Endpoint::audio_transcriptions, "/v1/audio/transcriptions"},
    {Endpoint::completions, "/v1/completions"},
    {Endpoint::responses, "/v1/responses"},
    {Endpoint::moderations, "/v1/moderations"},
}};
}  // namespace

std::optional<Endpoint> endpoint_from_path(std::string_view path) noexcept {
  for (const auto& [e, p] : kPaths) {
    if (p == path) return e;
  }
  return std::nullopt;
}

std::string_view endpoint_path(Endpoint e) noexcept {
  for (const auto& [k, p] : kPaths) {
    if (k == e) return p;
  }
  return {};
}

}  // namespace floodgate
