#pragma once
// Estimator: what a request will cost the tokens-per-minute limiter before it is sent
// (prompt tokens + completion allowance x n). The engine only sees this function object;
// the exact BPE estimator (floodgate::tokens::estimate_request) plugs in behind it, and
// conservative_estimator() is the fallback that needs no tokenizer data: it over-counts
// the prompt (one token per 3 bytes of the whole body) so pacing errs on the safe side,
// and reconciliation with the response's `usage` gives the difference back.

#include <cstdint>
#include <functional>

#include "floodgate/core/request.hpp"

namespace floodgate::engine {

using Estimator = std::function<std::uint64_t(const Request&)>;

// Reads max_completion_tokens / max_tokens / max_output_tokens and n from the body.
// Chat, completions and responses: bytes/3 + allowance x max(n,1) (allowance defaults to
// `default_completion_tokens`); embeddings: bytes/3; transcriptions: 0.
[[nodiscard]] Estimator conservative_estimator(std::uint64_t default_completion_tokens = 4096);

}  // namespace floodgate::engine
