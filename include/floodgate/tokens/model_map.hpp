#pragma once
// Which encoding a model uses. Built-in rules follow OpenAI's published model families
// (gpt-4o*, gpt-4.1*, gpt-4.5*, gpt-5*, o1*, o3*, o4*, chatgpt-4o* -> o200k_base;
// gpt-4 (not 4o), gpt-3.5*, text-embedding-3-*, text-embedding-ada-002 -> cl100k_base).
// Users add their own rules (e.g. for a fine-tune or a compatible provider's model); a
// user rule wins over the built-in ones. A rule is an exact name, or a prefix ending in '*'.
// Fine-tuned names ("ft:gpt-4o-mini:org::id") are looked up by their base model.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "floodgate/tokens/encoding.hpp"

namespace floodgate::tokens {

class ModelMap {
 public:
  // Adds a rule: "my-model" (exact) or "my-family-*" (prefix). Later rules win.
  void add(std::string pattern, EncodingId encoding);
  // Parses "pattern=encoding" (the CLI's --model-encoding); throws floodgate::Error.
  void add_rule(std::string_view rule);

  // The user's rules first, then the built-in ones; nullopt when nothing matches.
  [[nodiscard]] std::optional<EncodingId> lookup(std::string_view model) const;
  // lookup(), or `fallback` for unknown models.
  [[nodiscard]] EncodingId lookup_or(std::string_view model, EncodingId fallback) const {
    return lookup(model).value_or(fallback);
  }

 private:
  std::vector<std::pair<std::string, EncodingId>> rules_;
};

// The built-in rules alone.
[[nodiscard]] std::optional<EncodingId> builtin_encoding_for_model(std::string_view model);

}  // namespace floodgate::tokens
