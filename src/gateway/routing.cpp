#include "floodgate/gateway/routing.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

#include "floodgate/gateway/keys.hpp"
#include "floodgate/gateway/lanes.hpp"

namespace floodgate::gateway {

Route route_of(std::string_view method, std::string_view target) noexcept {
  const auto query = target.find('?');
  const std::string_view path = target.substr(0, query);
  const bool get = method == "GET";
  const bool post = method == "POST";
  if (get && path == "/healthz") return Route::healthz;
  if (get && path == "/metrics") return Route::metrics;
  if (post && path == "/v1/chat/completions") return Route::chat_completions;
  if (post && path == "/v1/embeddings") return Route::embeddings;
  if (post && path == "/v1/responses") return Route::responses;
  if (post && path == "/v1/audio/transcriptions") return Route::audio_transcriptions;
  if (post && path == "/v1/audio/translations") return Route::audio_translations;
  if (get && (path == "/v1/models" || (path.starts_with("/v1/models/") && path.size() > 11 &&
                                       path.find('/', 11) == std::string_view::npos))) {
    return Route::models;
  }
  if (get && path == "/v1/floodgate/usage") return Route::usage;
  if (path.starts_with("/v1/")) return Route::proxied;
  return Route::unknown;
}

bool is_paced(Route route) noexcept {
  switch (route) {
    case Route::chat_completions:
    case Route::embeddings:
    case Route::responses:
    case Route::audio_transcriptions:
    case Route::audio_translations: return true;
    default: return false;
  }
}

bool streams_body(Route route) noexcept {
  return route == Route::audio_transcriptions || route == Route::audio_translations || route == Route::proxied;
}

std::string_view to_string(Route route) noexcept {
  switch (route) {
    case Route::healthz: return "healthz";
    case Route::metrics: return "metrics";
    case Route::chat_completions: return "chat_completions";
    case Route::embeddings: return "embeddings";
    case Route::responses: return "responses";
    case Route::audio_transcriptions: return "audio_transcriptions";
    case Route::audio_translations: return "audio_translations";
    case Route::models: return "models";
    case Route::usage: return "usage";
    case Route::proxied: return "proxied";
    case Route::unknown: return "unknown";
  }
  return "unknown";
}

std::variant<LaneChoice, std::string> choose_lane(const Lanes& lanes, std::string_view lane_header, const ClientKey* key,
                                                  std::string_view service_tier) {
  const bool may_choose = key == nullptr || key->may_choose_lane;
  if (!lane_header.empty() && may_choose) {
    if (const auto lane = lanes.find(lane_header)) return LaneChoice{*lane, "header"};
    return "unknown lane '" + std::string(lane_header) + "' in the x-floodgate-lane header (lanes: " + lanes.names() + ")";
  }
  if (may_choose) {
    const std::string_view tier_lane = service_tier == "flex" ? "batch" : service_tier == "priority" ? "interactive" : "";
    if (const auto lane = tier_lane.empty() ? std::nullopt : lanes.find(tier_lane)) return LaneChoice{*lane, "service_tier"};
  }
  if (key != nullptr) return LaneChoice{key->lane, "key"};
  return LaneChoice{0, "default"};
}

std::string service_tier_of(std::string_view json_body) {
  if (json_body.find("\"service_tier\"") == std::string_view::npos) return {};
  const auto doc = nlohmann::json::parse(json_body, nullptr, false);
  if (!doc.is_object()) return {};
  const auto it = doc.find("service_tier");
  return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string openai_error_body(std::string_view message, std::string_view type, std::string_view code) {
  // In OpenAI's order: message, type, param, code.
  nlohmann::ordered_json error = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  if (!code.empty()) error["code"] = code;
  return nlohmann::ordered_json{{"error", std::move(error)}}.dump();
}

RetryAfter retry_after_values(Duration wait) {
  using std::chrono::duration_cast;
  const auto ms = std::max<std::int64_t>(1, duration_cast<std::chrono::milliseconds>(wait + std::chrono::nanoseconds(999'999)).count());
  const auto seconds = std::max<std::int64_t>(1, (ms + 999) / 1000);
  return RetryAfter{std::to_string(seconds), std::to_string(ms)};
}

}  // namespace floodgate::gateway
