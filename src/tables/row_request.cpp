#include "floodgate/tables/row_request.hpp"

#include <algorithm>

#include "floodgate/core/batch_io.hpp"
#include "floodgate/core/error.hpp"

namespace floodgate::tables {

bool is_valid_utf8(std::string_view text) noexcept {
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

RowRequestBuilder::RowRequestBuilder(RowRequestOptions options, const std::vector<std::string>& columns,
                                     bool has_header)
    : options_(std::move(options)), template_(PromptTemplate::parse(options_.template_text)), columns_(columns) {
  if (options_.model.empty()) throw Error("a table input needs --model");
  template_.bind(columns, has_header);
  if (options_.id_column) {
    const auto it = std::find(columns.begin(), columns.end(), *options_.id_column);
    if (it != columns.end()) {
      id_index_ = static_cast<std::size_t>(it - columns.begin());
    } else if (has_header) {
      throw Error("--id-column \"" + *options_.id_column + "\" is not a column of the input");
    }
  }
  if (!is_valid_utf8(options_.template_text)) throw Error("the template is not valid UTF-8");
  if (options_.system_prompt && !is_valid_utf8(*options_.system_prompt)) {
    throw Error("the system prompt is not valid UTF-8");
  }
}

RowRequest RowRequestBuilder::build(const Row& row) const {
  RowRequest out;
  Request& req = out.request;
  req.line_no = row.line;
  req.url = std::string(endpoint_path(Endpoint::chat_completions));
  req.endpoint = Endpoint::chat_completions;
  req.model = options_.model;
  const std::string label = "row " + std::to_string(row.number);
  if (options_.id_column) {
    const std::string* id = id_index_ != static_cast<std::size_t>(-1) ? row.at(id_index_) : nullptr;
    if (id == nullptr) id = row.find_extra(*options_.id_column);
    if (id == nullptr || id->empty()) {
      out.error = label + ": id column \"" + *options_.id_column + "\" is " + (id == nullptr ? "missing" : "empty");
      req.custom_id = "row-" + std::to_string(row.number);
      return out;
    }
    req.custom_id = *id;
  } else {
    req.custom_id = std::to_string(row.number);
  }
  if (!row.error.empty()) {
    out.error = row.error;
    return out;
  }
  auto rendered = template_.render(row);
  if (!rendered.error.empty()) {
    out.error = std::move(rendered.error);
    return out;
  }
  if (!is_valid_utf8(rendered.text)) {
    // Name the column that carries the bad bytes (the template itself is checked text).
    for (const auto& name : template_.placeholders()) {
      const auto it = std::find(columns_.begin(), columns_.end(), name);
      const std::string* v = it != columns_.end() ? row.at(static_cast<std::size_t>(it - columns_.begin())) : nullptr;
      if (v == nullptr) v = row.find_extra(name);
      if (v != nullptr && !is_valid_utf8(*v)) {
        out.error = label + ": column \"" + name + "\" is not valid UTF-8";
        return out;
      }
    }
    out.error = label + ": the prompt is not valid UTF-8";
    return out;
  }
  std::string& b = req.body;
  b.reserve(rendered.text.size() + 128);
  b += "{\"model\":";
  append_json_string(b, options_.model);
  b += ",\"messages\":[";
  if (options_.system_prompt) {
    b += "{\"role\":\"system\",\"content\":";
    append_json_string(b, *options_.system_prompt);
    b += "},";
  }
  b += "{\"role\":\"user\",\"content\":";
  append_json_string(b, rendered.text);
  b += "}]";
  if (options_.response_format_json) {
    b += ",\"response_format\":";
    b += *options_.response_format_json;
  }
  if (options_.max_completion_tokens) {
    b += ",\"max_completion_tokens\":";
    b += std::to_string(*options_.max_completion_tokens);
  }
  b += '}';
  return out;
}

}  // namespace floodgate::tables
