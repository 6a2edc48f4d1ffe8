// LimitsConfig: per-model limits from a small JSON file, completed by the defaults.
#include "floodgate/limit/limits.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "floodgate/core/error.hpp"
#include "floodgate/core/text.hpp"

namespace floodgate::limit {
namespace {

double pick(double mine, double fallback) noexcept { return mine > 0 ? mine : fallback; }

struct Entry {
  Limits limits;
  std::optional<Provider> provider;
  std::optional<ChargeModel> charge;
};

Entry parse_entry(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error("limits file: " + where + " must be an object like {\"rpm\": 500, \"tpm\": 200000}");
  Entry entry;
  Limits& out = entry.limits;
  for (const auto& [key, value] : j.items()) {
    if (key == "provider") {
      const auto p = value.is_string() ? provider_from_name(value.get<std::string>()) : std::nullopt;
      if (!p) throw Error("limits file: \"provider\" in " + where + " must be openai, azure, groq or none");
      entry.provider = p;
      continue;
    }
    if (key == "charge") {
      if (!value.is_string()) throw Error("limits file: \"charge\" in " + where + " must be a rule like \"flat:16\" or \"input+16\"");
      try {
        entry.charge = parse_charge_model(value.get<std::string>());
      } catch (const Error& e) {
        throw Error("limits file: " + where + ": " + e.what());
      }
      continue;
    }
    double* field = nullptr;
    if (key == "rpm" || key == "requests_per_minute") field = &out.requests_per_minute;
    else if (key == "tpm" || key == "tokens_per_minute") field = &out.tokens_per_minute;
    else if (key == "rpd" || key == "requests_per_day") field = &out.requests_per_day;
    else if (key == "tpd" || key == "tokens_per_day") field = &out.tokens_per_day;
    else throw Error("limits file: unknown key \"" + key + "\" in " + where + " (expected rpm, tpm, rpd, tpd, provider, charge)");
    if (value.is_null()) continue;
    if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < 0) {
      throw Error("limits file: \"" + key + "\" in " + where + " must be a non-negative number");
    }
    *field = value.get<double>();
  }
  return entry;
}

}  // namespace

Limits Limits::or_else(const Limits& fallback) const noexcept {
  return Limits{pick(requests_per_minute, fallback.requests_per_minute), pick(tokens_per_minute, fallback.tokens_per_minute),
                pick(requests_per_day, fallback.requests_per_day), pick(tokens_per_day, fallback.tokens_per_day)};
}

Limits LimitsConfig::for_model(std::string_view model) const {
  const auto it = models.find(model);
  return it == models.end() ? defaults : it->second.or_else(defaults);
}

Provider LimitsConfig::provider_for(std::string_view model) const {
  const auto it = model_providers.find(model);
  return it == model_providers.end() ? provider.value_or(Provider::openai) : it->second;
}

ChargeModel LimitsConfig::charge_for(std::string_view model) const {
  if (const auto it = model_charges.find(model); it != model_charges.end()) return it->second;
  if (charge) return *charge;
  return default_charge_model(provider_for(model));
}

LimitsConfig parse_limits_config(std::string_view json_text) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error("limits file: not valid JSON: " + std::string(json_error_text(e.what())));
  }
  if (!root.is_object()) throw Error("limits file: the top level must be an object with \"models\" and/or \"default\"");
  LimitsConfig config;
  for (const auto& [key, value] : root.items()) {
    if (key == "default" || key == "defaults") {
      Entry e = parse_entry(value, "\"default\"");
      config.defaults = e.limits;
      if (e.provider) config.provider = e.provider;
      if (e.charge) config.charge = e.charge;
    } else if (key == "models") {
      if (!value.is_object()) throw Error("limits file: \"models\" must be an object keyed by model name");
      for (const auto& [model, entry] : value.items()) {
        Entry e = parse_entry(entry, "model \"" + model + "\"");
        config.models[model] = e.limits;
        if (e.provider) config.model_providers[model] = *e.provider;
        if (e.charge) config.model_charges[model] = *e.charge;
      }
    } else if (key == "learn" || key == "auto") {
      if (!value.is_boolean()) throw Error("limits file: \"" + key + "\" must be true or false");
      config.learn_from_headers = value.get<bool>();
    } else {
      throw Error("limits file: unknown key \"" + key + "\" (expected \"default\", \"models\", \"learn\")");
    }
  }
  return config;
}

LimitsConfig load_limits_config(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read limits file " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return parse_limits_config(text.str());
  } catch (const Error& e) {
    throw Error(path.string() + ": " + e.what());
  }
}

}  // namespace floodgate::limit
