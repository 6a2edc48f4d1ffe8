#include "floodgate/sim/options.hpp"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "floodgate/core/duration.hpp"
#include "floodgate/core/error.hpp"

namespace floodgate::sim {
namespace {

std::chrono::nanoseconds duration_or_throw(const std::string& text, const std::string& what) {
  const auto parsed = parse_duration(text);
  if (!parsed) throw Error("invalid duration '" + text + "' in " + what);
  return *parsed;
}

ModelSpec chat(double in_usd, double out_usd) {
  ModelSpec spec;
  spec.kind = ModelKind::chat;
  spec.usd_per_1m_input = in_usd;
  spec.usd_per_1m_output = out_usd;
  return spec;
}

ModelSpec embedding(int dim, double usd) {
  ModelSpec spec;
  spec.kind = ModelKind::embedding;
  spec.embedding_dim = dim;
  spec.usd_per_1m_input = usd;
  spec.usd_per_1m_output = 0;
  return spec;
}

ModelSpec moderation() {  // free
  ModelSpec spec;
  spec.kind = ModelKind::moderation;
  return spec;
}

ModelSpec transcription(double usd_per_1m) {
  ModelSpec spec;
  spec.kind = ModelKind::transcription;
  spec.usd_per_1m_input = usd_per_1m;
  spec.usd_per_1m_output = 0;
  return spec;
}

// Tier table: {rpm, tpm, rpd, tpd} per tier for each family of models.
struct TierRow {
  ModelLimits free, t1, t2, t3, t4, t5;
};

const ModelLimits& pick(const TierRow& row, const std::string& tier) {
  if (tier == "free") return row.free;
  if (tier == "1") return row.t1;
  if (tier == "2") return row.t2;
  if (tier == "3") return row.t3;
  if (tier == "4") return row.t4;
  if (tier == "5") return row.t5;
  throw Error("unknown --tier '" + tier + "' (expected free, 1, 2, 3, 4 or 5)");
}

// Numbers as published on the usage-tier pages at the time of writing (see docs/sim.md).
// The small "mini" family, the large family, embeddings and transcription.
const TierRow kMini{{3, 40'000, 200, 0},          {500, 200'000, 10'000, 0},
                    {5'000, 2'000'000, 0, 0},     {5'000, 4'000'000, 0, 0},
                    {10'000, 10'000'000, 0, 0},   {30'000, 150'000'000, 0, 0}};
const TierRow kLarge{{3, 30'000, 200, 0},         {500, 30'000, 0, 0},
                     {5'000, 450'000, 0, 0},      {5'000, 800'000, 0, 0},
                     {10'000, 2'000'000, 0, 0},   {10'000, 30'000'000, 0, 0}};
const TierRow kEmbedding{{100, 40'000, 2'000, 0}, {3'000, 1'000'000, 0, 0},
                         {5'000, 1'000'000, 0, 0}, {5'000, 5'000'000, 0, 0},
                         {10'000, 5'000'000, 0, 0}, {10'000, 10'000'000, 0, 0}};
const TierRow kTranscription{{3, 0, 200, 0}, {500, 0, 0, 0},    {2'500, 0, 0, 0},
                             {5'000, 0, 0, 0}, {7'500, 0, 0, 0}, {10'000, 0, 0, 0}};

void read_limits(const nlohmann::json& j, ModelLimits& limits) {
  if (!j.is_object()) throw Error("config: limits must be an object");
  if (j.contains("rpm")) limits.requests_per_minute = j.at("rpm").get<std::int64_t>();
  if (j.contains("tpm")) limits.tokens_per_minute = j.at("tpm").get<std::int64_t>();
  if (j.contains("rpd")) limits.requests_per_day = j.at("rpd").get<std::int64_t>();
  if (j.contains("tpd")) limits.tokens_per_day = j.at("tpd").get<std::int64_t>();
  if (j.contains("window")) limits.window = parse_window_mode(j.at("window").get<std::string>());
  if (j.contains("quantum")) limits.quantum = duration_or_throw(j.at("quantum").get<std::string>(), "config quantum");
}

// The per-model keys besides the limits: "charge", "default_allowance", "refund_usage", "dialect".
void read_model_rules(const nlohmann::json& j, ModelSpec& spec) {
  if (j.contains("charge")) parse_charge_rule(j.at("charge").get<std::string>(), spec.charge);
  if (j.contains("default_allowance")) spec.charge.default_allowance = j.at("default_allowance").get<std::int64_t>();
  if (j.contains("refund_usage")) spec.charge.refund_usage = j.at("refund_usage").get<bool>();
  if (j.contains("dialect")) spec.dialect = parse_dialect(j.at("dialect").get<std::string>());
}

std::int64_t count_or_throw(const std::string& text, const std::string& what) {
  std::size_t used = 0;
  long long value = -1;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value < 0) throw Error("invalid token count '" + text + "' in " + what);
  return value;
}

}  // namespace

LatencyModel parse_latency(const std::string& spec) {
  LatencyModel model;
  if (spec.empty() || spec == "none") return model;
  const auto colon = spec.find(':');
  if (colon == std::string::npos) throw Error("invalid --latency '" + spec + "' (expected fixed:D, random:D-D or per-token:D)");
  const std::string kind = spec.substr(0, colon);
  const std::string rest = spec.substr(colon + 1);
  if (kind == "fixed") {
    model.kind = LatencyKind::fixed;
    model.fixed = duration_or_throw(rest, "--latency");
  } else if (kind == "random") {
    const auto dash = rest.find('-');
    if (dash == std::string::npos) throw Error("invalid --latency '" + spec + "' (expected random:10ms-200ms)");
    model.kind = LatencyKind::random;
    model.fixed = duration_or_throw(rest.substr(0, dash), "--latency");
    model.upper = duration_or_throw(rest.substr(dash + 1), "--latency");
    if (model.upper < model.fixed) throw Error("invalid --latency '" + spec + "': upper bound below lower bound");
  } else if (kind == "per-token") {
    model.kind = LatencyKind::per_token;
    model.fixed = duration_or_throw(rest, "--latency");
  } else {
    throw Error("invalid --latency '" + spec + "' (expected fixed:D, random:D-D or per-token:D)");
  }
  return model;
}

const char* to_string(WindowMode mode) noexcept {
  switch (mode) {
    case WindowMode::bucket: return "bucket";
    case WindowMode::rolling: return "rolling";
    case WindowMode::quantized: return "quantized";
  }
  return "";
}

WindowMode parse_window_mode(const std::string& text) {
  for (const WindowMode mode : {WindowMode::bucket, WindowMode::rolling, WindowMode::quantized}) {
    if (text == to_string(mode)) return mode;
  }
  throw Error("unknown --window '" + text + "' (expected bucket, rolling or quantized)");
}

void parse_charge_rule(const std::string& text, ChargeModel& charge) {
  const std::string what = "--charge '" + text + "'";
  if (text == "input+allowance") {
    charge.rule = ChargeRule::input_plus_allowance;
  } else if (text == "max(input,allowance)") {
    charge.rule = ChargeRule::max_input_allowance;
  } else if (text.rfind("flat:", 0) == 0) {
    charge.rule = ChargeRule::flat;
    charge.flat_tokens = count_or_throw(text.substr(5), what);
  } else if (text == "context") {
    charge.rule = ChargeRule::context;
  } else if (text.rfind("context:", 0) == 0) {
    charge.rule = ChargeRule::context;
    charge.context_tokens = count_or_throw(text.substr(8), what);
  } else {
    throw Error("unknown " + what + " (expected input+allowance, max(input,allowance), flat:N, context or context:N)");
  }
}

std::string to_string(const ChargeModel& charge) {
  switch (charge.rule) {
    case ChargeRule::input_plus_allowance: return "input+allowance";
    case ChargeRule::max_input_allowance: return "max(input,allowance)";
    case ChargeRule::flat: return "flat:" + std::to_string(charge.flat_tokens);
    case ChargeRule::context: return "context:" + std::to_string(charge.context_tokens);
  }
  return "";
}

const char* to_string(Dialect dialect) noexcept {
  switch (dialect) {
    case Dialect::openai: return "openai";
    case Dialect::azure: return "azure";
    case Dialect::groq: return "groq";
    case Dialect::none: return "none";
  }
  return "";
}

Dialect parse_dialect(const std::string& text) {
  for (const Dialect d : {Dialect::openai, Dialect::azure, Dialect::groq, Dialect::none}) {
    if (text == to_string(d)) return d;
  }
  throw Error("unknown --dialect '" + text + "' (expected openai, azure, groq or none)");
}

const char* to_string(TokenCharge charge) noexcept {
  return charge == TokenCharge::bytes ? "bytes" : "exact";
}

TokenCharge parse_token_charge(const std::string& text) {
  if (text == "exact") return TokenCharge::exact;
  if (text == "bytes") return TokenCharge::bytes;
  throw Error("unknown --token-charge '" + text + "' (expected exact or bytes)");
}

const char* to_string(FaultKind kind) noexcept {
  switch (kind) {
    case FaultKind::none: return "";
    case FaultKind::http_500: return "500";
    case FaultKind::http_502: return "502";
    case FaultKind::http_503: return "503";
    case FaultKind::reset: return "reset";
    case FaultKind::stall: return "stall";
    case FaultKind::truncated: return "truncated";
    case FaultKind::slow_first_byte: return "slow-first-byte";
    case FaultKind::endless_body: return "endless-body";
  }
  return "";
}

std::vector<FaultKind> parse_fault_list(const std::string& list) {
  std::vector<FaultKind> out;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    bool found = false;
    for (const FaultKind kind : {FaultKind::http_500, FaultKind::http_502, FaultKind::http_503, FaultKind::reset,
                                 FaultKind::stall, FaultKind::truncated, FaultKind::slow_first_byte, FaultKind::endless_body}) {
      if (item == to_string(kind)) {
        out.push_back(kind);
        found = true;
      }
    }
    if (!found) throw Error("unknown fault kind '" + item + "' (expected 500,502,503,reset,stall,truncated,slow-first-byte,endless-body)");
  }
  return out;
}

std::map<std::string, ModelSpec> default_models() {
  std::map<std::string, ModelSpec> m;
  m["gpt-4o-mini"] = chat(0.15, 0.60);
  m["gpt-4o"] = chat(2.50, 10.00);
  m["gpt-4.1"] = chat(2.00, 8.00);
  m["gpt-4.1-mini"] = chat(0.40, 1.60);
  m["gpt-4.1-nano"] = chat(0.10, 0.40);
  m["gpt-3.5-turbo"] = chat(0.50, 1.50);
  m["o3-mini"] = chat(1.10, 4.40);
  m["o4-mini"] = chat(1.10, 4.40);
  m["text-embedding-3-small"] = embedding(1536, 0.02);
  m["text-embedding-3-large"] = embedding(3072, 0.13);
  m["text-embedding-ada-002"] = embedding(1536, 0.10);
  m["omni-moderation-latest"] = moderation();
  m["text-moderation-latest"] = moderation();
  m["whisper-1"] = transcription(0);
  m["gpt-4o-transcribe"] = transcription(2.50);
  m["gpt-4o-mini-transcribe"] = transcription(1.25);
  return m;
}

void apply_tier(std::map<std::string, ModelSpec>& models, const std::string& tier) {
  for (auto& [name, spec] : models) {
    const TierRow* row = &kMini;
    if (spec.kind == ModelKind::embedding || spec.kind == ModelKind::moderation) {
      row = &kEmbedding;  // moderation: no published figures of its own; the embeddings row
    } else if (spec.kind == ModelKind::transcription) {
      row = &kTranscription;
    } else if (name.find("mini") == std::string::npos && name.find("nano") == std::string::npos &&
               name != "gpt-3.5-turbo") {
      row = &kLarge;
    }
    spec.limits = pick(*row, tier);
  }
}

void apply_config_file(SimOptions& options, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read --config file " + path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
    if (!j.is_object()) throw Error("config " + path + ": top level must be an object");
    if (j.contains("organization")) options.organization = j.at("organization").get<std::string>();
    if (j.contains("api_keys")) options.api_keys = j.at("api_keys").get<std::vector<std::string>>();
    if (j.contains("tier")) apply_tier(options.models, j.at("tier").get<std::string>());
    if (j.contains("default")) {
      ModelLimits base;
      read_limits(j.at("default"), base);
      for (auto& [name, spec] : options.models) {
        spec.limits = base;
        read_model_rules(j.at("default"), spec);
      }
    }
    if (j.contains("models")) {
      for (const auto& [name, m] : j.at("models").items()) {
        ModelSpec& spec = options.models[name];
        if (m.contains("kind")) {
          const auto kind = m.at("kind").get<std::string>();
          if (kind == "chat") {
            spec.kind = ModelKind::chat;
          } else if (kind == "embedding") {
            spec.kind = ModelKind::embedding;
          } else if (kind == "transcription") {
            spec.kind = ModelKind::transcription;
          } else if (kind == "moderation") {
            spec.kind = ModelKind::moderation;
          } else {
            throw Error("config " + path + ": model " + name + ": unknown kind '" + kind + "'");
          }
        }
        read_limits(m, spec.limits);
        read_model_rules(m, spec);
        if (m.contains("embedding_dim")) spec.embedding_dim = m.at("embedding_dim").get<int>();
        if (m.contains("usd_per_1m_input")) spec.usd_per_1m_input = m.at("usd_per_1m_input").get<double>();
        if (m.contains("usd_per_1m_output")) spec.usd_per_1m_output = m.at("usd_per_1m_output").get<double>();
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error("config " + path + ": " + e.what());
  }
}

}  // namespace floodgate::sim
