#pragma once
// What a request will cost the token-per-minute limiter, before it is sent.
//
//   total = prompt_tokens + completion_allowance_tokens
//
// prompt_tokens is exact BPE counting of what the API counts as input:
//   chat completions: for each message 3 tokens + the tokens of its role, content text
//     (string, or the text of each text part) and name (+1 when a name is present), plus
//     3 tokens priming the reply (OpenAI's cookbook formula for current models). Images
//     count a fixed conservative kImageTokens each; tool definitions, tool calls and a
//     response_format schema are counted as the tokens of their JSON text (an
//     over-estimate, never under).
//   embeddings: tokens of `input` (a string, an array of strings, an array of token ids,
//     or an array of arrays of token ids).
//   completions (legacy): tokens of `prompt` (same shapes as embeddings input).
//   responses: tokens of `instructions` and `input` (a string, or message items counted
//     as in chat).
//   audio transcriptions: 0 (billed by duration, not prompt tokens).
// completion_allowance_tokens is the worst case the server may generate:
//   (max_completion_tokens, else max_tokens, else max_output_tokens, else
//    EstimateOptions::default_completion_tokens) x max(n, best_of, 1); 0 for embeddings
//   and transcriptions. The legacy completions endpoint defaults max_tokens to 16.
// The estimate also keeps what the body said (max_tokens_per_choice, choices): the
// limiter's pacing charge is computed from them by a provider's charge model
// (limit/charge_model.hpp), which differs from this worst case when max_tokens is absent.
//
// Parsing never throws: a body that is not JSON is counted as text (its token count),
// with body_parsed = false, so a bad line costs something rather than nothing.

#include <cstdint>
#include <optional>
#include <string_view>

#include "floodgate/core/request.hpp"
#include "floodgate/tokens/encoding.hpp"
#include "floodgate/tokens/model_map.hpp"

namespace floodgate::tokens {

inline constexpr std::uint64_t kTokensPerMessage = 3;
inline constexpr std::uint64_t kTokensPerName = 1;
inline constexpr std::uint64_t kReplyPrimingTokens = 3;
inline constexpr std::uint64_t kImageTokens = 1105;  // a 2048x2048 high-detail tile set, rounded up

struct EstimateOptions {
  // Fixed encoding for every request; when null, body.model picks one through `models`,
  // and unknown models use `default_encoding`.
  const Encoding* encoding = nullptr;
  const ModelMap* models = nullptr;  // null: built-in rules only
  EncodingId default_encoding = EncodingId::o200k_base;
  // Allowance when the body sets no max_tokens / max_completion_tokens / max_output_tokens.
  std::uint64_t default_completion_tokens = 4096;
};

struct RequestEstimate {
  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_allowance_tokens = 0;
  std::uint64_t total_tokens = 0;  // prompt + allowance: the worst case (budgets)
  bool body_parsed = true;         // false: not JSON, prompt counted as raw text
  // What the body set: max_completion_tokens | max_tokens | max_output_tokens (nullopt:
  // none; the legacy completions endpoint's default 16 counts as set), and max(n, best_of, 1).
  std::optional<std::uint64_t> max_tokens_per_choice;
  std::uint64_t choices = 1;
  bool generates = true;           // false: embeddings and transcriptions (input only)
};

// Exact prompt tokens of a request body for one encoding (see the formula above).
[[nodiscard]] std::uint64_t prompt_tokens(Endpoint endpoint, std::string_view body_json,
                                          const Encoding& encoding);

// Prompt tokens, completion allowance and their sum.
[[nodiscard]] RequestEstimate estimate_request(Endpoint endpoint, std::string_view body_json,
                                               const EstimateOptions& options = {});

}  // namespace floodgate::tokens
