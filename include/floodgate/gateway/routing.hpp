#pragma once
// What the gateway makes of a request before it queues it: which route (the OpenAI paths it
// knows, its own /healthz and /metrics), which lane, and the errors it answers itself, in
// OpenAI's JSON shape ({"error": {"message", "type", "param", "code"}}) so that every SDK
// reads them as it reads the API's own.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "floodgate/core/clock.hpp"

namespace floodgate::gateway {

class Lanes;
struct ClientKey;

enum class Route : std::uint8_t {
  healthz,               // GET /healthz
  metrics,               // GET /metrics
  chat_completions,      // POST /v1/chat/completions
  embeddings,            // POST /v1/embeddings
  responses,             // POST /v1/responses
  audio_transcriptions,  // POST /v1/audio/transcriptions
  audio_translations,    // POST /v1/audio/translations
  models,                // GET /v1/models, GET /v1/models/{id}
  usage,                 // GET /v1/floodgate/usage: the gateway's own, usage per client key
  proxied,               // anything else under /v1/ (files, batches, ...): passed on as is, no lane
  unknown,               // anything else: 404 as OpenAI answers it
};

// The route of a request; the query string is ignored.
[[nodiscard]] Route route_of(std::string_view method, std::string_view target) noexcept;
// Routes that go through the lanes (they spend the upstream's rate limits).
[[nodiscard]] bool is_paced(Route route) noexcept;
// Routes whose request body is streamed upstream as it is read, never held whole (audio
// uploads, and whatever is proxied as is: files, uploads of any size).
[[nodiscard]] bool streams_body(Route route) noexcept;
[[nodiscard]] std::string_view to_string(Route route) noexcept;

// The lane of a request, first match wins:
//   1. the x-floodgate-lane header (a lane's name), unless the key may not choose;
//   2. the body's service_tier, unless the key may not choose: "flex" -> batch,
//      "priority" -> interactive (when lanes of those names exist; other tiers say nothing);
//   3. the client key's lane (keys file);
//   4. the first lane.
// A header naming no lane is the client's mistake: the error's message (for a 400).
struct LaneChoice {
  std::size_t lane = 0;
  std::string_view why;  // "header", "service_tier", "key", "default"
};
[[nodiscard]] std::variant<LaneChoice, std::string> choose_lane(const Lanes& lanes, std::string_view lane_header,
                                                                const ClientKey* key, std::string_view service_tier);

// The body's top-level "service_tier" string, or "" (not JSON, not an object, absent). Parses
// only bodies that mention it at all.
[[nodiscard]] std::string service_tier_of(std::string_view json_body);

// {"error":{"message":...,"type":...,"param":null,"code":...}} (code null when empty).
[[nodiscard]] std::string openai_error_body(std::string_view message, std::string_view type, std::string_view code);

// The retry-after headers of a 429: whole seconds rounded up (at least 1, what every SDK
// reads) and OpenAI's retry-after-ms (rounded up, at least 1).
struct RetryAfter {
  std::string seconds;
  std::string milliseconds;
};
[[nodiscard]] RetryAfter retry_after_values(Duration wait);

}  // namespace floodgate::gateway
