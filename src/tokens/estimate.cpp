// Request cost estimation: the formula is documented in estimate.hpp and docs/tokens.md.

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <optional>

#include "floodgate/tokens/estimate.hpp"

namespace floodgate::tokens {

namespace {

using Json = nlohmann::json;

std::uint64_t count_json_text(const Json& v, const Encoding& enc) {
  if (v.is_string()) return enc.count(v.get_ref<const std::string&>());
  if (v.is_null()) return 0;
  return enc.count(v.dump());
}

// A message's content: a string, or parts ({"type":"text","text":...}, images, audio...).
std::uint64_t count_content(const Json& content, const Encoding& enc) {
  if (content.is_string()) return enc.count(content.get_ref<const std::string&>());
  if (!content.is_array()) return count_json_text(content, enc);
  std::uint64_t n = 0;
  for (const Json& part : content) {
    if (part.is_string()) {
      n += enc.count(part.get_ref<const std::string&>());
      continue;
    }
    if (!part.is_object()) continue;
    const auto type = part.value("type", std::string());
    const auto text = part.find("text");
    if (text != part.end() && text->is_string()) {
      n += enc.count(text->get_ref<const std::string&>());
    } else if (type == "image_url" || type == "input_image" || type == "image") {
      n += kImageTokens;
    } else if (const auto refusal = part.find("refusal"); refusal != part.end() && refusal->is_string()) {
      n += enc.count(refusal->get_ref<const std::string&>());
    } else {
      n += count_json_text(part, enc);  // audio, files...: their JSON text, an over-estimate
    }
  }
  return n;
}

// OpenAI cookbook: 3 tokens per message, every string field's tokens, +1 for a name.
std::uint64_t count_messages(const Json& messages, const Encoding& enc) {
  std::uint64_t n = 0;
  if (!messages.is_array()) return count_json_text(messages, enc);
  for (const Json& m : messages) {
    n += kTokensPerMessage;
    if (!m.is_object()) {
      n += count_json_text(m, enc);
      continue;
    }
    for (const auto& [key, value] : m.items()) {
      if (key == "content") {
        n += count_content(value, enc);
      } else if (key == "name") {
        n += kTokensPerName + count_json_text(value, enc);
      } else if (key == "type" && value == "message") {
        // Responses API item marker, not sent to the model.
      } else {
        n += count_json_text(value, enc);  // role, tool_call_id, tool_calls, ...
      }
    }
  }
  return n;
}

// embeddings input / legacy prompt: string, [string], [int], [[int]].
std::uint64_t count_input(const Json& input, const Encoding& enc) {
  if (input.is_string()) return enc.count(input.get_ref<const std::string&>());
  if (!input.is_array()) return count_json_text(input, enc);
  std::uint64_t n = 0;
  for (const Json& item : input) {
    if (item.is_string()) {
      n += enc.count(item.get_ref<const std::string&>());
    } else if (item.is_number_integer()) {
      n += 1;
    } else if (item.is_array()) {
      n += item.size();
    } else {
      n += count_json_text(item, enc);
    }
  }
  return n;
}

std::uint64_t count_tools(const Json& body, const Encoding& enc) {
  std::uint64_t n = 0;
  for (const char* key : {"tools", "functions"}) {
    if (const auto it = body.find(key); it != body.end() && !it->is_null()) n += count_json_text(*it, enc);
  }
  if (const auto it = body.find("response_format"); it != body.end() && it->is_object() && it->contains("json_schema")) {
    n += count_json_text(*it, enc);
  }
  if (const auto it = body.find("text"); it != body.end() && it->is_object() && it->contains("format")) {
    n += count_json_text(*it, enc);  // Responses API structured output
  }
  return n;
}

std::uint64_t prompt_tokens_of(Endpoint endpoint, const Json& body, const Encoding& enc) {
  if (!body.is_object()) return count_json_text(body, enc);
  switch (endpoint) {
    case Endpoint::chat_completions: {
      std::uint64_t n = kReplyPrimingTokens;
      if (const auto it = body.find("messages"); it != body.end()) n += count_messages(*it, enc);
      return n + count_tools(body, enc);
    }
    case Endpoint::responses: {
      std::uint64_t n = kReplyPrimingTokens;
      if (const auto it = body.find("instructions"); it != body.end()) n += count_json_text(*it, enc);
      if (const auto it = body.find("input"); it != body.end()) {
        n += it->is_array() ? count_messages(*it, enc) : count_json_text(*it, enc);
      }
      return n + count_tools(body, enc);
    }
    case Endpoint::embeddings:
    case Endpoint::moderations: {
      const auto it = body.find("input");
      return it == body.end() ? 0 : count_input(*it, enc);
    }
    case Endpoint::completions: {
      const auto it = body.find("prompt");
      return it == body.end() ? 0 : count_input(*it, enc);
    }
    case Endpoint::audio_transcriptions:
      return 0;
  }
  return 0;
}

std::uint64_t uint_field(const Json& body, const char* key, std::uint64_t fallback) {
  const auto it = body.find(key);
  if (it == body.end() || !it->is_number()) return fallback;
  if (it->is_number_unsigned()) return it->get<std::uint64_t>();
  if (it->is_number_integer()) return static_cast<std::uint64_t>(std::max<std::int64_t>(0, it->get<std::int64_t>()));
  return static_cast<std::uint64_t>(std::max(0.0, it->get<double>()));
}

// What the body sets: the first of max_completion_tokens, max_tokens, max_output_tokens.
std::optional<std::uint64_t> explicit_max(Endpoint endpoint, const Json& body) {
  for (const char* key : {"max_completion_tokens", "max_tokens", "max_output_tokens"}) {
    if (body.contains(key) && body[key].is_number()) return uint_field(body, key, 0);
  }
  if (endpoint == Endpoint::completions) return 16;  // the legacy API's default
  return std::nullopt;
}

std::uint64_t choices_of(const Json& body) {
  return std::max<std::uint64_t>({1, uint_field(body, "n", 1), uint_field(body, "best_of", 1)});
}

bool generates(Endpoint endpoint) {
  return endpoint != Endpoint::embeddings && endpoint != Endpoint::audio_transcriptions && endpoint != Endpoint::moderations;
}

// The fast path for the common chat shape: every message an object of string fields, no
// tools/functions/response_format/text and no repeated keys. It reads the body with
// simdjson's reused per-thread parser instead of building an nlohmann DOM (the largest
// per-request cost of `floodgate run`'s exact estimate) and returns exactly what the
// general path returns for such a body (tests/tokens/estimate_test.cpp compares them);
// anything else returns nullopt and takes the general path.
std::optional<std::uint64_t> plain_number(simdjson::dom::element v) {
  switch (v.type()) {
    case simdjson::dom::element_type::UINT64: return v.get_uint64().value_unsafe();
    case simdjson::dom::element_type::INT64: return static_cast<std::uint64_t>(std::max<std::int64_t>(0, v.get_int64().value_unsafe()));
    case simdjson::dom::element_type::DOUBLE: return static_cast<std::uint64_t>(std::max(0.0, v.get_double().value_unsafe()));
    default: return std::nullopt;
  }
}

// Remembers up to N keys of one object; false on a repeat or when full (the caller falls back).
template <std::size_t N>
struct KeySet {
  std::array<std::string_view, N> keys{};
  std::size_t size = 0;
  bool insert(std::string_view k) noexcept {
    if (size == N) return false;
    for (std::size_t i = 0; i < size; ++i) {
      if (keys[i] == k) return false;
    }
    keys[size++] = k;
    return true;
  }
};

const Encoding& encoding_for(const EstimateOptions& options, std::optional<std::string_view> model) {
  if (options.encoding != nullptr) return *options.encoding;
  EncodingId id = options.default_encoding;
  if (model) id = options.models ? options.models->lookup_or(*model, id) : builtin_encoding_for_model(*model).value_or(id);
  return Encoding::get(id);
}

std::optional<RequestEstimate> estimate_plain_chat(std::string_view body_json, const EstimateOptions& options) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body_json.data(), body_json.size()).get(root) != simdjson::SUCCESS) return std::nullopt;
  simdjson::dom::object body;
  if (root.get_object().get(body) != simdjson::SUCCESS) return std::nullopt;
  KeySet<64> top;
  std::optional<std::string_view> model;
  std::optional<simdjson::dom::array> messages;
  std::array<std::optional<std::uint64_t>, 3> max_keys{};  // max_completion_tokens, max_tokens, max_output_tokens
  std::uint64_t n = 1;
  std::uint64_t best_of = 1;
  for (const auto field : body) {
    const std::string_view key = field.key;
    if (!top.insert(key)) return std::nullopt;
    if (key == "messages") {
      simdjson::dom::array a;
      if (field.value.get_array().get(a) != simdjson::SUCCESS) return std::nullopt;
      messages = a;
    } else if (key == "tools" || key == "functions" || key == "response_format" || key == "text") {
      return std::nullopt;
    } else if (key == "model") {
      std::string_view m;
      if (field.value.get_string().get(m) == simdjson::SUCCESS) model = m;
    } else if (key == "max_completion_tokens") {
      max_keys[0] = plain_number(field.value);
    } else if (key == "max_tokens") {
      max_keys[1] = plain_number(field.value);
    } else if (key == "max_output_tokens") {
      max_keys[2] = plain_number(field.value);
    } else if (key == "n") {
      n = plain_number(field.value).value_or(1);
    } else if (key == "best_of") {
      best_of = plain_number(field.value).value_or(1);
    }
  }
  const Encoding& enc = encoding_for(options, model);
  RequestEstimate e;
  std::uint64_t prompt = kReplyPrimingTokens;
  if (messages) {
    for (const simdjson::dom::element m : *messages) {
      simdjson::dom::object fields;
      if (m.get_object().get(fields) != simdjson::SUCCESS) return std::nullopt;
      prompt += kTokensPerMessage;
      KeySet<16> seen;
      for (const auto field : fields) {
        std::string_view text;
        if (!seen.insert(field.key) || field.value.get_string().get(text) != simdjson::SUCCESS) return std::nullopt;
        if (field.key == "name") {
          prompt += kTokensPerName + enc.count(text);
        } else if (field.key == "type" && text == "message") {
          // Responses API item marker, not sent to the model.
        } else {
          prompt += enc.count(text);  // content, role, tool_call_id, ...
        }
      }
    }
  }
  for (const auto& v : max_keys) {
    if (v) {
      e.max_tokens_per_choice = *v;
      break;
    }
  }
  e.prompt_tokens = prompt;
  e.choices = std::max<std::uint64_t>({1, n, best_of});
  e.completion_allowance_tokens = e.max_tokens_per_choice.value_or(options.default_completion_tokens) * e.choices;
  e.total_tokens = e.prompt_tokens + e.completion_allowance_tokens;
  return e;
}

}  // namespace

std::uint64_t prompt_tokens(Endpoint endpoint, std::string_view body_json, const Encoding& encoding) {
  Json body = Json::parse(body_json, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return encoding.count(body_json);
  return prompt_tokens_of(endpoint, body, encoding);
}

RequestEstimate estimate_request(Endpoint endpoint, std::string_view body_json, const EstimateOptions& options) {
  if (endpoint == Endpoint::chat_completions) {
    if (auto fast = estimate_plain_chat(body_json, options)) return *fast;
  }
  RequestEstimate e;
  Json body = Json::parse(body_json, nullptr, /*allow_exceptions=*/false);
  const Encoding* enc = options.encoding;
  if (enc == nullptr) {
    EncodingId id = options.default_encoding;
    if (!body.is_discarded() && body.is_object()) {
      if (const auto m = body.find("model"); m != body.end() && m->is_string()) {
        const auto& model = m->get_ref<const std::string&>();
        id = options.models ? options.models->lookup_or(model, id) : builtin_encoding_for_model(model).value_or(id);
      }
    }
    enc = &Encoding::get(id);
  }
  e.generates = generates(endpoint);
  if (body.is_discarded()) {
    e.body_parsed = false;
    e.prompt_tokens = enc->count(body_json);
    e.completion_allowance_tokens = e.generates ? options.default_completion_tokens : 0;
  } else {
    e.prompt_tokens = prompt_tokens_of(endpoint, body, *enc);
    if (body.is_object() && e.generates) {
      e.max_tokens_per_choice = explicit_max(endpoint, body);
      e.choices = choices_of(body);
      e.completion_allowance_tokens = e.max_tokens_per_choice.value_or(options.default_completion_tokens) * e.choices;
    }
  }
  e.total_tokens = e.prompt_tokens + e.completion_allowance_tokens;
  return e;
}

}  // namespace floodgate::tokens
