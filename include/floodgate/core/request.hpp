#pragma once
// A Request is one call to make: where it goes, its body (forwarded byte for byte, never
// re-serialised), the model it counts against, and its estimated cost for the limiter.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace floodgate {

enum class Endpoint {
  chat_completions,     // POST /v1/chat/completions
  embeddings,           // POST /v1/embeddings
  audio_transcriptions, // POST /v1/audio/transcriptions (multipart)
  completions,          // POST /v1/completions (legacy)
  responses,            // POST /v1/responses
  moderations,          // POST /v1/moderations (input only, like embeddings)
};

// "/v1/chat/completions" -> Endpoint::chat_completions; nullopt when unknown.
[[nodiscard]] std::optional<Endpoint> endpoint_from_path(std::string_view path) noexcept;
[[nodiscard]] std::string_view endpoint_path(Endpoint e) noexcept;

struct Request {
  std::string custom_id;
  std::string method = "POST";
  std::string url;            // the path as given in the input, e.g. "/v1/chat/completions"
  Endpoint endpoint = Endpoint::chat_completions;
  std::string body;           // the JSON body exactly as read
  std::string model;          // body.model, the limiter's key
  std::uint64_t line_no = 0;  // 1-based line in the input
  // Estimated cost (prompt tokens + completion allowance); 0 until estimated.
  std::uint64_t estimated_tokens = 0;
};

}  // namespace floodgate
