// Provider names and the guess from a base URL.
#include "floodgate/core/provider.hpp"

#include <algorithm>
#include <cctype>
#include <string>

namespace floodgate {

std::string_view to_string(Provider p) noexcept {
  switch (p) {
    case Provider::openai: return "openai";
    case Provider::azure: return "azure";
    case Provider::groq: return "groq";
    case Provider::none: return "none";
  }
  return "openai";
}

std::optional<Provider> provider_from_name(std::string_view name) noexcept {
  for (Provider p : {Provider::openai, Provider::azure, Provider::groq, Provider::none}) {
    if (name == to_string(p)) return p;
  }
  return std::nullopt;
}

std::optional<Provider> guess_provider(std::string_view base_url) noexcept {
  // The host: after "scheme://", up to the first '/', ':' or '?', lower-cased.
  std::string_view rest = base_url;
  if (const auto scheme = rest.find("://"); scheme != std::string_view::npos) rest.remove_prefix(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/:?"));
  std::string host(rest);
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto ends_with = [&](std::string_view suffix) { return host.size() >= suffix.size() && host.ends_with(suffix); };
  if (host == "api.openai.com") return Provider::openai;
  if (ends_with(".openai.azure.com") || ends_with(".cognitiveservices.azure.com") || ends_with(".services.ai.azure.com")) {
    return Provider::azure;
  }
  if (host == "api.groq.com") return Provider::groq;
  return std::nullopt;
}

}  // namespace floodgate
