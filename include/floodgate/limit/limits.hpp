#pragma once
// What a model may use: four rate dimensions (requests and model tokens, per minute and
// per day), and what one request costs against them. A limit of 0 means "unlimited or not
// known yet"; in auto mode the RateLimiter learns it from x-ratelimit-* headers.
//
// LimitsConfig holds the job's limits: defaults for every model (from --rpm/--tpm/--rpd/
// --tpd) and per-model overrides (from a JSON file, see load_limits_config()).

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "floodgate/core/provider.hpp"
#include "floodgate/limit/charge_model.hpp"

namespace floodgate::limit {

struct Limits {
  double requests_per_minute = 0;  // 0 = unlimited / unknown
  double tokens_per_minute = 0;
  double requests_per_day = 0;
  double tokens_per_day = 0;

  [[nodiscard]] bool any() const noexcept {
    return requests_per_minute > 0 || tokens_per_minute > 0 || requests_per_day > 0 || tokens_per_day > 0;
  }
  // Field by field: this value where it is set (> 0), else `fallback`'s.
  [[nodiscard]] Limits or_else(const Limits& fallback) const noexcept;
  friend bool operator==(const Limits&, const Limits&) = default;
};

// The cost of one request. `tokens` is the estimate before sending (prompt + completion
// allowance x n) and the actual usage when reconciling. A request that failed still costs
// one request (providers count it), so callers reconcile it with {1, 0} or {1, tokens}.
struct Cost {
  std::uint64_t requests = 1;
  std::uint64_t tokens = 0;
  friend bool operator==(const Cost&, const Cost&) = default;
};

struct LimitsConfig {
  Limits defaults;                                     // for every model
  std::map<std::string, Limits, std::less<>> models;  // per-model overrides (fields > 0 win)
  // Learn limits from x-ratelimit-limit-* headers for dimensions left at 0 (the "auto"
  // mode, the default when nothing is configured). See RateLimiter::observe().
  bool learn_from_headers = true;
  // The run's provider dialect (--provider, or guessed from the base URL) and charge rule
  // (--charge; nullopt: the provider's default), and per-model overrides from the file.
  std::optional<Provider> provider;  // nullopt: openai
  std::optional<ChargeModel> charge;
  std::map<std::string, Provider, std::less<>> model_providers;
  std::map<std::string, ChargeModel, std::less<>> model_charges;

  // The limits that apply to `model`: its override completed by the defaults.
  [[nodiscard]] Limits for_model(std::string_view model) const;
  [[nodiscard]] Provider provider_for(std::string_view model) const;
  // The model's rule, else the run's, else its provider's default.
  [[nodiscard]] ChargeModel charge_for(std::string_view model) const;
};

// Parses the limits file:
//   {"default": {"rpm": 500, "tpm": 200000},
//    "models": {"gpt-4o-mini": {"rpm": 5000, "tpm": 4000000, "rpd": 0, "tpd": 0},
//               "gpt-35-turbo": {"provider": "azure", "charge": "flat:16"}},
//    "learn": true}
// Keys per entry: rpm/tpm/rpd/tpd or requests_per_minute/tokens_per_minute/
// requests_per_day/tokens_per_day (values non-negative numbers); "provider" (openai,
// azure, groq, none) and "charge" (a rule, see charge_model.hpp: "flat:16", "input+16");
// every key optional.
// Unknown keys or bad values throw floodgate::Error naming the key.
[[nodiscard]] LimitsConfig parse_limits_config(std::string_view json_text);
// Reads and parses a file; throws floodgate::Error("cannot read limits file ...") etc.
[[nodiscard]] LimitsConfig load_limits_config(const std::filesystem::path& path);

}  // namespace floodgate::limit
