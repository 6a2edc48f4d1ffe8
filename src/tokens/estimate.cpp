// Request cost estimation: the formula is documented in estimate.hpp and docs/tokens.md.

#include <algorithm>
#include <nlohmann/json.hpp>

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
    case Endpoint::embeddings: {
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

std::uint64_t completion_allowance(Endpoint endpoint, const Json& body, std::uint64_t default_tokens) {
  if (endpoint == Endpoint::embeddings || endpoint == Endpoint::audio_transcriptions) return 0;
  if (endpoint == Endpoint::completions) default_tokens = 16;  // the legacy API's default
  std::uint64_t per_choice = default_tokens;
  for (const char* key : {"max_completion_tokens", "max_tokens", "max_output_tokens"}) {
    if (body.contains(key) && body[key].is_number()) {
      per_choice = uint_field(body, key, default_tokens);
      break;
    }
  }
  const std::uint64_t choices = std::max<std::uint64_t>({1, uint_field(body, "n", 1), uint_field(body, "best_of", 1)});
  return per_choice * choices;
}

}  // namespace

std::uint64_t prompt_tokens(Endpoint endpoint, std::string_view body_json, const Encoding& encoding) {
  Json body = Json::parse(body_json, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return encoding.count(body_json);
  return prompt_tokens_of(endpoint, body, encoding);
}

RequestEstimate estimate_request(Endpoint endpoint, std::string_view body_json, const EstimateOptions& options) {
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
  if (body.is_discarded()) {
    e.body_parsed = false;
    e.prompt_tokens = enc->count(body_json);
    e.completion_allowance_tokens =
        endpoint == Endpoint::embeddings || endpoint == Endpoint::audio_transcriptions ? 0 : options.default_completion_tokens;
  } else {
    e.prompt_tokens = prompt_tokens_of(endpoint, body, *enc);
    e.completion_allowance_tokens =
        body.is_object() ? completion_allowance(endpoint, body, options.default_completion_tokens) : 0;
  }
  e.total_tokens = e.prompt_tokens + e.completion_allowance_tokens;
  return e;
}

}  // namespace floodgate::tokens
