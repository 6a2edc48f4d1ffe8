#pragma once
// How many tokens the simulator charges for a prompt. One place, so it can later call the
// exact tokenizer (floodgate::tokens). Today it is a documented, deterministic
// approximation (docs/sim.md, "Token charge"):
//   text(s)  = ceil(bytes(s) / 4)
//   chat     = 3 + sum over messages of (4 + text(content) + text(name)); an image part
//              counts 85; tools/functions/response_format schemas count text(their JSON)
//   embeddings: text(s) per string input, or the number of ids per token-array input.
// Completion texts the simulator writes are sized with the same text() so `usage` agrees.

#include <cstdint>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace floodgate::sim {

[[nodiscard]] std::int64_t estimate_text_tokens(std::string_view text) noexcept;
// The prompt of a chat completion request (the parsed body).
[[nodiscard]] std::int64_t estimate_chat_prompt_tokens(const nlohmann::json& request);
// The `input` of an embeddings request: string, array of strings, array of token ids or
// array of arrays of token ids. Returns -1 when the input has none of these shapes.
[[nodiscard]] std::int64_t estimate_embedding_input_tokens(const nlohmann::json& input);

}  // namespace floodgate::sim
