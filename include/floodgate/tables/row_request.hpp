#pragma once
// Turns each row of a table into one chat request:
//   {"model":M,"messages":[{"role":"system","content":SYSTEM},{"role":"user","content":T(row)}]
//    [,"response_format":RF][,"max_completion_tokens":K]}
// where T is the prompt template, SYSTEM the --system file's text (omitted when none) and RF
// the structured-output format (schema/structured_output.hpp). Every string is JSON-escaped;
// a row whose text is not valid UTF-8 is an error row naming the row and the column.
// The custom_id is the row's --id-column value, or its row number.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "floodgate/core/request.hpp"
#include "floodgate/tables/prompt_template.hpp"
#include "floodgate/tables/row_source.hpp"

namespace floodgate::tables {

struct RowRequestOptions {
  std::string model;
  std::string template_text;
  std::optional<std::string> system_prompt;
  std::optional<std::string> id_column;
  std::optional<std::string> response_format_json;  // inserted verbatim; must be valid JSON
  std::optional<std::uint64_t> max_completion_tokens;
};

struct RowRequest {
  Request request;    // valid when error is empty
  std::string error;  // the row's problem, naming row and column
};

class RowRequestBuilder {
 public:
  // Throws floodgate::Error for a bad template, an unknown --id-column on a CSV, or an empty
  // model.
  RowRequestBuilder(RowRequestOptions options, const std::vector<std::string>& columns, bool has_header);

  [[nodiscard]] RowRequest build(const Row& row) const;
  [[nodiscard]] const RowRequestOptions& options() const noexcept { return options_; }

 private:
  RowRequestOptions options_;
  PromptTemplate template_;
  std::vector<std::string> columns_;
  std::size_t id_index_ = static_cast<std::size_t>(-1);
};

// True when `text` is well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF).
[[nodiscard]] bool is_valid_utf8(std::string_view text) noexcept;

}  // namespace floodgate::tables
