#include "sim/token_estimate.hpp"

#include <nlohmann/json.hpp>

#include "floodgate/tokens/encoding.hpp"

namespace floodgate::sim {
namespace {

constexpr std::int64_t kPriming = 3;
constexpr std::int64_t kPerMessageExact = 3;  // plus the role's tokens
constexpr std::int64_t kPerMessageBytes = 4;  // role folded in
constexpr std::int64_t kPerName = 1;          // exact only
constexpr std::int64_t kImagePart = 85;

std::int64_t text_tokens(std::string_view text, const tokens::Encoding* encoding) {
  if (encoding == nullptr) return estimate_text_tokens(text);
  return static_cast<std::int64_t>(encoding->count(text));
}

std::int64_t content_tokens(const nlohmann::json& content, const tokens::Encoding* encoding) {
  if (content.is_string()) return text_tokens(content.get_ref<const std::string&>(), encoding);
  if (content.is_array()) {
    std::int64_t total = 0;
    for (const auto& part : content) {
      if (!part.is_object()) continue;
      const auto text = part.find("text");
      if (text != part.end() && text->is_string()) {
        total += text_tokens(text->get_ref<const std::string&>(), encoding);
      } else if (part.contains("image_url") || part.contains("input_audio")) {
        total += kImagePart;
      }
    }
    return total;
  }
  return 0;
}

std::int64_t message_tokens(const nlohmann::json& message, const tokens::Encoding* encoding) {
  if (encoding == nullptr) {
    std::int64_t total = kPerMessageBytes;
    const auto content = message.find("content");
    if (content != message.end()) total += content_tokens(*content, encoding);
    const auto name = message.find("name");
    if (name != message.end() && name->is_string()) total += estimate_text_tokens(name->get_ref<const std::string&>());
    return total;
  }
  // The cookbook: every field's text, +1 when a name is present.
  std::int64_t total = kPerMessageExact;
  for (const auto& [key, value] : message.items()) {
    if (key == "content") {
      total += content_tokens(value, encoding);
      continue;
    }
    if (value.is_null()) continue;
    if (key == "name") total += kPerName;
    total += value.is_string() ? text_tokens(value.get_ref<const std::string&>(), encoding)
                               : text_tokens(value.dump(), encoding);
  }
  return total;
}

}  // namespace

std::int64_t estimate_text_tokens(std::string_view text) noexcept {
  return static_cast<std::int64_t>((text.size() + 3) / 4);
}

std::int64_t estimate_chat_prompt_tokens(const nlohmann::json& request, const tokens::Encoding* encoding) {
  std::int64_t total = kPriming;
  const auto messages = request.find("messages");
  if (messages != request.end() && messages->is_array()) {
    for (const auto& message : *messages) {
      if (message.is_object()) total += message_tokens(message, encoding);
    }
  }
  for (const char* key : {"tools", "functions"}) {
    const auto it = request.find(key);
    if (it != request.end() && !it->is_null()) total += text_tokens(it->dump(), encoding);
  }
  const auto format = request.find("response_format");
  if (format != request.end() && format->is_object() && format->contains("json_schema")) {
    total += text_tokens(format->at("json_schema").dump(), encoding);
  }
  return total;
}

std::int64_t estimate_embedding_input_tokens(const nlohmann::json& input, const tokens::Encoding* encoding) {
  if (input.is_string()) return text_tokens(input.get_ref<const std::string&>(), encoding);
  if (!input.is_array() || input.empty()) return -1;
  std::int64_t total = 0;
  for (const auto& item : input) {
    if (item.is_string()) {
      total += text_tokens(item.get_ref<const std::string&>(), encoding);
    } else if (item.is_number_integer()) {
      total += 1;
    } else if (item.is_array()) {
      for (const auto& id : item) {
        if (!id.is_number_integer()) return -1;
      }
      total += static_cast<std::int64_t>(item.size());
    } else {
      return -1;
    }
  }
  return total;
}

}  // namespace floodgate::sim
