#include "floodgate/cost/prices.hpp"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "floodgate/core/error.hpp"
#include "floodgate/core/text.hpp"

namespace floodgate::cost {

extern const char* const kBuiltinPricesJson;  // builtin_prices.cpp, generated from data/prices.json

namespace {

double number_field(const nlohmann::json& entry, const char* field, std::string_view origin,
                    const std::string& model) {
  const auto it = entry.find(field);
  if (it == entry.end() || it->is_null()) return 0;
  if (!it->is_number() || it->get<double>() < 0) {
    throw Error(std::string(origin) + ": model \"" + model + "\": \"" + field +
                "\" must be a non-negative number");
  }
  return it->get<double>();
}

// "gpt-4o-mini-2024-07-18" -> "gpt-4o-mini"; unchanged when there is no date suffix.
std::string_view without_snapshot(std::string_view model) {
  constexpr std::size_t kSuffix = 11;  // "-YYYY-MM-DD"
  if (model.size() <= kSuffix) return model;
  const std::string_view tail = model.substr(model.size() - kSuffix);
  for (std::size_t i = 0; i < kSuffix; ++i) {
    const char c = tail[i];
    const bool dash = i == 0 || i == 5 || i == 8;
    if (dash ? c != '-' : (c < '0' || c > '9')) return model;
  }
  return model.substr(0, model.size() - kSuffix);
}

}  // namespace

PriceTable PriceTable::from_json(std::string_view text, std::string_view origin) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    // Where the syntax error is ("not a JSON object" said neither what nor where).
    throw Error(std::string(origin) + ": not valid JSON: " + std::string(json_error_text(e.what())));
  }
  if (!doc.is_object()) throw Error(std::string(origin) + ": not a JSON object (it is " + doc.type_name() + ")");
  const auto models = doc.find("models");
  if (models == doc.end() || !models->is_object()) {
    throw Error(std::string(origin) + ": needs a \"models\" object");
  }
  PriceTable table;
  if (const auto as_of = doc.find("as_of"); as_of != doc.end() && as_of->is_string()) {
    table.as_of_ = as_of->get<std::string>();
  }
  for (const auto& [name, entry] : models->items()) {
    if (!entry.is_object()) throw Error(std::string(origin) + ": model \"" + name + "\" must be an object");
    ModelPrice p;
    p.input_usd_per_million = number_field(entry, "input", origin, name);
    p.cached_input_usd_per_million =
        entry.contains("cached_input") ? number_field(entry, "cached_input", origin, name) : p.input_usd_per_million;
    p.output_usd_per_million = number_field(entry, "output", origin, name);
    p.usd_per_minute = number_field(entry, "per_minute", origin, name);
    p.batch_discount = number_field(entry, "batch_discount", origin, name);
    if (p.batch_discount > 1) {
      throw Error(std::string(origin) + ": model \"" + name + "\": \"batch_discount\" is a fraction in [0, 1]");
    }
    table.models_[name] = p;
  }
  return table;
}

PriceTable PriceTable::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read the price file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return from_json(text.str(), path);
}

const PriceTable& PriceTable::builtin() {
  static const PriceTable table = from_json(kBuiltinPricesJson, "built-in data/prices.json");
  return table;
}

const ModelPrice* PriceTable::find(std::string_view model) const {
  if (const auto it = models_.find(model); it != models_.end()) return &it->second;
  const std::string_view base = without_snapshot(model);
  if (base.size() != model.size()) {
    if (const auto it = models_.find(base); it != models_.end()) return &it->second;
  }
  return nullptr;
}

namespace {
double tier_factor(const ModelPrice& price, Tier tier) noexcept {
  return tier == Tier::batch ? 1.0 - price.batch_discount : 1.0;
}
}  // namespace

double cost_usd(const ModelPrice& price, const Usage& usage, Tier tier) noexcept {
  const std::uint64_t cached = std::min(usage.cached_tokens, usage.prompt_tokens);
  const auto uncached = static_cast<double>(usage.prompt_tokens - cached);
  const double usd = uncached * price.input_usd_per_million +
                     static_cast<double>(cached) * price.cached_input_usd_per_million +
                     static_cast<double>(usage.completion_tokens) * price.output_usd_per_million;
  return usd / 1e6 * tier_factor(price, tier);
}

double audio_cost_usd(const ModelPrice& price, double seconds, Tier tier) noexcept {
  return seconds / 60.0 * price.usd_per_minute * tier_factor(price, tier);
}

double worst_case_cost_usd(const ModelPrice& price, std::uint64_t prompt_tokens,
                           std::uint64_t completion_allowance_tokens, Tier tier) noexcept {
  const double usd = static_cast<double>(prompt_tokens) * price.input_usd_per_million +
                     static_cast<double>(completion_allowance_tokens) * price.output_usd_per_million;
  return usd / 1e6 * tier_factor(price, tier);
}

CostRange cost_range(const PriceTable& prices, std::string_view model, std::uint64_t prompt_tokens,
                     std::uint64_t completion_allowance_tokens, Tier tier) {
  CostRange r;
  const ModelPrice* p = prices.find(model);
  if (p == nullptr) return r;
  r.priced = true;
  r.min_usd = worst_case_cost_usd(*p, prompt_tokens, 0, tier);
  r.max_usd = worst_case_cost_usd(*p, prompt_tokens, completion_allowance_tokens, tier);
  return r;
}

}  // namespace floodgate::cost
