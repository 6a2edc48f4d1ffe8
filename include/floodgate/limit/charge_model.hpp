#pragma once
// ChargeModel: what a provider counts against tokens/min (and tokens/day) when it admits a
// request: the *pacing charge*. It is not the request's usage (what the answer says was
// used: cost, budgets, the summary) and not its worst case (what budgets reserve): a
// client that reserves the worst case (4,096 completion tokens for a request without
// max_tokens) runs at a fraction of the limit; one that reserves the usage runs over it.
//
// Rules (per model; docs/limiter.md, "Charge model", has the evidence):
//   input+N          input estimate + (max_completion_tokens | max_tokens | N) x n; OpenAI
//                    ("openai" = input+16: the charge observed in x-ratelimit-remaining-tokens)
//   max(input,N)     max(input estimate, (max_tokens | N) x n)
//   flat:N           N per request whatever it holds (Azure gpt-35-turbo: 16; gpt-4o: ~648)
//   context:N        input + max_tokens x n when given, else N (the context size: Azure's
//                    older documented reservation)
// followed optionally by ",refund": the server gives the unused part back when the request
// completes (it counts usage), so the client settles each request at its usage.
// Embeddings and transcriptions are charged their input only, under every rule.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "floodgate/core/provider.hpp"

namespace floodgate::limit {

// What the charge of one request is computed from (tokens::estimate_request gives it).
struct ChargeInputs {
  std::uint64_t input_tokens = 0;
  std::optional<std::uint64_t> max_tokens_per_choice;  // the body's max_completion_tokens | max_tokens | max_output_tokens
  std::uint64_t choices = 1;                           // max(n, best_of, 1)
  bool generates = true;                               // false: embeddings, transcriptions
};

struct ChargeModel {
  enum class Rule : std::uint8_t { input_plus_allowance, max_input_allowance, flat, context };
  Rule rule = Rule::input_plus_allowance;
  std::uint64_t default_allowance_tokens = 16;  // per choice when the body sets no max
  std::uint64_t flat_tokens = 0;                // flat: per request; context: the context size
  bool refunds_unused = false;                  // the server settles at usage on completion

  // The pacing charge of one request.
  [[nodiscard]] std::uint64_t charge(const ChargeInputs& in) const noexcept;
  // "input+16", "flat:648", "max(input,16)", "context:8192" (+ ",refund"): what parse() reads.
  [[nodiscard]] std::string describe() const;
  friend bool operator==(const ChargeModel&, const ChargeModel&) = default;
};

// Parses a rule (see above; "openai" = input+16). Throws floodgate::Error naming the text.
[[nodiscard]] ChargeModel parse_charge_model(std::string_view text);

// What each provider is observed to charge by default (Azure and Groq: as OpenAI; the
// charge is corrected from `remaining` where the server counts more, or provably less).
[[nodiscard]] ChargeModel default_charge_model(Provider provider) noexcept;

// The worst case of one request (budgets, --max-cost): input + (max | default) x n.
[[nodiscard]] std::uint64_t worst_case_tokens(const ChargeInputs& in, std::uint64_t default_completion_tokens) noexcept;

}  // namespace floodgate::limit
