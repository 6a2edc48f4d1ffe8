#pragma once
// How many tokens the simulator charges for a prompt. Two counts (SimOptions::token_charge,
// docs/sim.md "Token charge"), one formula:
//   text(s)  = exact: encoding.count(s), the model's BPE encoding (floodgate::tokens);
//              bytes: ceil(bytes(s) / 4)
//   chat     = 3 (reply priming) + sum over messages of
//                (3 + text(role) + content + [1 + text(name)] + text(every other string
//                 field, e.g. tool_call_id) + text(JSON of non-string fields, e.g. tool_calls))
//              content: text(string), or the sum of text(part.text) over text parts and 85
//              per image/audio part;
//              + text(JSON of tools / functions) + text(JSON of response_format.json_schema)
//   embeddings: text(s) per string input, or the number of ids per token-array input.
// This is OpenAI's documented chat accounting (the cookbook's num_tokens_from_messages)
// written here on purpose rather than taken from floodgate::tokens::estimate_request: the
// simulator judges the client's estimation formula, so it only borrows the encoder's
// count(). In bytes mode the per-message overhead is 4 with no role text (the old charge).
// Completion texts the simulator writes are sized with bytes text() so `usage` agrees.

#include <cstdint>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace floodgate::tokens {
class Encoding;
}

namespace floodgate::sim {

// ceil(bytes / 4).
[[nodiscard]] std::int64_t estimate_text_tokens(std::string_view text) noexcept;
// `encoding` null: the bytes approximation; otherwise exact counting with it.
// The prompt of a chat completion request (the parsed body).
[[nodiscard]] std::int64_t estimate_chat_prompt_tokens(const nlohmann::json& request,
                                                       const tokens::Encoding* encoding = nullptr);
// The `input` of an embeddings request: string, array of strings, array of token ids or
// array of arrays of token ids. Returns -1 when the input has none of these shapes.
[[nodiscard]] std::int64_t estimate_embedding_input_tokens(const nlohmann::json& input,
                                                           const tokens::Encoding* encoding = nullptr);

}  // namespace floodgate::sim
