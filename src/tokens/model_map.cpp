// The model -> encoding rules: OpenAI's families as tiktoken's model.py lists them, plus
// the user's own rules.

#include <array>
#include <string>

#include "floodgate/core/error.hpp"
#include "floodgate/tokens/model_map.hpp"

namespace floodgate::tokens {

namespace {

struct Rule {
  std::string_view pattern;  // exact, or a prefix ending in '*'
  EncodingId encoding;
};

// First match wins, so the o200k families come before the "gpt-4" prefix.
constexpr std::array kBuiltinRules = {
    Rule{"gpt-4o*", EncodingId::o200k_base},        Rule{"chatgpt-4o*", EncodingId::o200k_base},
    Rule{"gpt-4.1*", EncodingId::o200k_base},       Rule{"gpt-4.5*", EncodingId::o200k_base},
    Rule{"gpt-5*", EncodingId::o200k_base},         Rule{"o1*", EncodingId::o200k_base},
    Rule{"o3*", EncodingId::o200k_base},            Rule{"o4*", EncodingId::o200k_base},
    Rule{"gpt-image-*", EncodingId::o200k_base},    Rule{"omni-moderation*", EncodingId::o200k_base},
    Rule{"codex-*", EncodingId::o200k_base},        Rule{"computer-use-*", EncodingId::o200k_base},
    Rule{"gpt-4*", EncodingId::cl100k_base},        Rule{"gpt-3.5*", EncodingId::cl100k_base},
    Rule{"gpt-35-turbo*", EncodingId::cl100k_base}, Rule{"text-embedding-3-*", EncodingId::cl100k_base},
    Rule{"text-embedding-ada-002", EncodingId::cl100k_base},
    Rule{"davinci-002", EncodingId::cl100k_base},   Rule{"babbage-002", EncodingId::cl100k_base},
};

bool matches(std::string_view pattern, std::string_view model) {
  if (!pattern.empty() && pattern.back() == '*') {
    pattern.remove_suffix(1);
    return model.substr(0, pattern.size()) == pattern;
  }
  return model == pattern;
}

// "ft:gpt-4o-mini:org::id" -> "gpt-4o-mini"; "openai/gpt-4o" -> "gpt-4o".
std::string_view base_model(std::string_view model) {
  if (model.substr(0, 3) == "ft:") {
    model.remove_prefix(3);
    model = model.substr(0, model.find(':'));
  }
  if (const auto slash = model.rfind('/'); slash != std::string_view::npos) model.remove_prefix(slash + 1);
  return model;
}

}  // namespace

std::optional<EncodingId> builtin_encoding_for_model(std::string_view model) {
  const std::string_view base = base_model(model);
  for (const Rule& r : kBuiltinRules) {
    if (matches(r.pattern, base)) return r.encoding;
  }
  return std::nullopt;
}

void ModelMap::add(std::string pattern, EncodingId encoding) { rules_.emplace_back(std::move(pattern), encoding); }

void ModelMap::add_rule(std::string_view rule) {
  const auto eq = rule.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    throw Error("model rule '" + std::string(rule) + "' should look like MODEL=ENCODING (e.g. my-model*=o200k_base)");
  }
  const auto enc = encoding_from_name(rule.substr(eq + 1));
  if (!enc) {
    throw Error("unknown encoding '" + std::string(rule.substr(eq + 1)) + "' (known: cl100k_base, o200k_base)");
  }
  add(std::string(rule.substr(0, eq)), *enc);
}

std::optional<EncodingId> ModelMap::lookup(std::string_view model) const {
  for (auto it = rules_.rbegin(); it != rules_.rend(); ++it) {
    if (matches(it->first, model) || matches(it->first, base_model(model))) return it->second;
  }
  return builtin_encoding_for_model(model);
}

}  // namespace floodgate::tokens
