#pragma once
// Estimator: what a request holds that its token charge is computed from, before it is
// sent: the input estimate, the max_tokens it sets (if any), n, and whether it generates.
// The engine turns that into two numbers (limit/charge_model.hpp): the *pacing charge*
// the provider counts at admission (its charge model: for OpenAI input + (max | 16) x n),
// which the limiter reserves, and the *worst case* (input + (max | 4,096) x n), which
// budgets reserve. The exact BPE estimator (floodgate::tokens::estimate_request) plugs in
// behind it, and conservative_estimator() is the fallback that needs no tokenizer data: it
// over-counts the input (one token per 3 bytes of the whole body) so pacing errs on the
// safe side.

#include <functional>

#include "floodgate/core/request.hpp"
#include "floodgate/limit/charge_model.hpp"

namespace floodgate::engine {

using Estimator = std::function<limit::ChargeInputs(const Request&)>;

// Reads max_completion_tokens / max_tokens / max_output_tokens and n from the body; the
// input is bytes/3 (chat, completions, responses, embeddings); transcriptions: 0.
[[nodiscard]] Estimator conservative_estimator();

}  // namespace floodgate::engine
