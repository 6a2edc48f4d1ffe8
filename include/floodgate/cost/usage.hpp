#pragma once
// Reads the `usage` object of a response body into floodgate::Usage. Chat Completions and
// Embeddings write prompt_tokens / completion_tokens / total_tokens with
// prompt_tokens_details.cached_tokens and completion_tokens_details.reasoning_tokens; the
// Responses API writes input_tokens / output_tokens with input_tokens_details.cached_tokens and
// output_tokens_details.reasoning_tokens. Both shapes are accepted; absent fields are 0.

#include <optional>
#include <string_view>

#include "floodgate/core/outcome.hpp"

namespace floodgate::cost {

// nullopt when the body is not JSON or has no `usage` object. total_tokens is
// prompt + completion when the body omits it.
[[nodiscard]] std::optional<Usage> parse_usage(std::string_view response_body);

// prompt + completion allowance a request may consume, read from a request body:
// max_completion_tokens, else max_tokens, else `default_allowance`; times `n` (default 1).
[[nodiscard]] std::uint64_t completion_allowance(std::string_view request_body, std::uint64_t default_allowance);

}  // namespace floodgate::cost
