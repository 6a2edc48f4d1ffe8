#pragma once
// Prices and what a call costs. A PriceTable maps a model name to its published prices:
// input, cached input and output in USD per 1,000,000 tokens, or USD per minute for audio
// models, and the fraction the Batch API takes off. floodgate ships data/prices.json (built
// in at compile time); `--prices FILE` replaces it with the user's own file of the same shape.
//
// Cost of a finished call (Chat Completions counts cached tokens inside prompt_tokens):
//   ((prompt - cached) * input + cached * cached_input + completion * output) / 1e6
// Worst case of a call before it is sent (no cache hit, the whole completion allowance used):
//   (prompt * input + completion_allowance * output) / 1e6
// Both times (1 - batch_discount) when sent through the Batch API.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "floodgate/core/outcome.hpp"

namespace floodgate::cost {

struct ModelPrice {
  double input_usd_per_million = 0;         // per 1M prompt tokens
  double cached_input_usd_per_million = 0;  // per 1M cached prompt tokens
  double output_usd_per_million = 0;        // per 1M completion tokens (reasoning included)
  double usd_per_minute = 0;                // audio models (whisper-1)
  double batch_discount = 0;                // 0.5 means the Batch API costs half
};

enum class Tier { standard, batch };

class PriceTable {
 public:
  PriceTable() = default;

  // Parses the prices.json shape: {"as_of": "...", "models": {"name": {"input": x,
  // "cached_input": y, "output": z, "per_minute": m, "batch_discount": d}}}. Throws
  // floodgate::Error naming the model and field on a malformed file.
  [[nodiscard]] static PriceTable from_json(std::string_view text, std::string_view origin = "prices");
  // Reads and parses a file; throws floodgate::Error naming the path when unreadable.
  [[nodiscard]] static PriceTable load(const std::string& path);
  // The table compiled in from data/prices.json.
  [[nodiscard]] static const PriceTable& builtin();

  // Exact name first, then the name without a "-YYYY-MM-DD" snapshot suffix
  // ("gpt-4o-mini-2024-07-18" -> "gpt-4o-mini"). nullptr when unpriced.
  [[nodiscard]] const ModelPrice* find(std::string_view model) const;
  void set(std::string model, ModelPrice price) { models_[std::move(model)] = price; }
  [[nodiscard]] const std::string& as_of() const noexcept { return as_of_; }
  [[nodiscard]] std::size_t size() const noexcept { return models_.size(); }

 private:
  std::map<std::string, ModelPrice, std::less<>> models_;
  std::string as_of_;
};

// USD cost of a finished token-priced call.
[[nodiscard]] double cost_usd(const ModelPrice& price, const Usage& usage, Tier tier = Tier::standard) noexcept;
// USD cost of transcribing `seconds` of audio with a per-minute model.
[[nodiscard]] double audio_cost_usd(const ModelPrice& price, double seconds, Tier tier = Tier::standard) noexcept;
// USD worst-case cost before sending: every prompt token uncached, the whole allowance used.
[[nodiscard]] double worst_case_cost_usd(const ModelPrice& price, std::uint64_t prompt_tokens,
                                         std::uint64_t completion_allowance_tokens,
                                         Tier tier = Tier::standard) noexcept;

// What a job of `requests` costs at most and at least, before running it: the least assumes
// no cached prompt tokens and no completion at all (prompt x input), the most the whole
// completion allowance (prompt x input + allowance x output). `priced` is false when the
// model has no price (both 0). For `floodgate estimate`.
struct CostRange {
  double min_usd = 0;
  double max_usd = 0;
  bool priced = false;
};
[[nodiscard]] CostRange cost_range(const PriceTable& prices, std::string_view model, std::uint64_t prompt_tokens,
                                   std::uint64_t completion_allowance_tokens, Tier tier = Tier::standard);

}  // namespace floodgate::cost
