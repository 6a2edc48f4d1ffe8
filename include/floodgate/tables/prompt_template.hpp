#pragma once
// A prompt template: text with {column} placeholders, filled from a row.
//   "Summarise {title} in one line."   -> the row's "title" value in place
//   "{{" and "}}"                      -> a literal "{" and "}" (JSON examples in prompts)
// The rules are Python's str.format ones without format specs: a lone "}" or an unclosed
// "{" is a template error (thrown once, with the line and column in the template), so a
// typo never silently reaches thousands of requests. A placeholder name is taken verbatim
// (spaces included) and must not be empty.
//
// bind() checks the names against the input's columns: for a CSV (fixed header) a name
// that is not a column is a configuration error naming it and the columns there are. For a
// row that lacks a field, render() returns an error naming the row and the column.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/tables/row_source.hpp"

namespace floodgate::tables {

class PromptTemplate {
 public:
  PromptTemplate() = default;
  // Throws floodgate::Error for an unbalanced brace or an empty placeholder.
  [[nodiscard]] static PromptTemplate parse(std::string_view text);

  // Names of the placeholders, in order of appearance, without repeats.
  [[nodiscard]] std::vector<std::string> placeholders() const;

  // Resolves the placeholders against `columns`. With `strict` (a CSV header) an unknown
  // name throws floodgate::Error; otherwise it is looked up per row among extra keys.
  void bind(const std::vector<std::string>& columns, bool strict);

  struct Result {
    std::string text;
    std::string error;  // "row 7: column \"city\" is missing"
  };
  [[nodiscard]] Result render(const Row& row) const;

 private:
  struct Piece {
    std::string literal;         // for text pieces
    std::string name;            // for placeholders (non-empty)
    std::size_t column = npos;   // bound column index, npos when not a column
  };
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  std::vector<Piece> pieces_;
};

}  // namespace floodgate::tables
