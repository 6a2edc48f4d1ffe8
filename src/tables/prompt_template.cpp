#include "floodgate/tables/prompt_template.hpp"

#include <algorithm>

#include "floodgate/core/error.hpp"

namespace floodgate::tables {
namespace {

std::string where(std::string_view text, std::size_t offset) {
  std::size_t line = 1;
  std::size_t col = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

}  // namespace

PromptTemplate PromptTemplate::parse(std::string_view text) {
  PromptTemplate t;
  std::string literal;
  auto flush_literal = [&] {
    if (!literal.empty()) t.pieces_.push_back(Piece{std::move(literal), {}, npos});
    literal.clear();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '{') {
      if (i + 1 < text.size() && text[i + 1] == '{') {
        literal.push_back('{');
        ++i;
        continue;
      }
      const std::size_t close = text.find_first_of("{}", i + 1);
      if (close == std::string_view::npos || text[close] != '}') {
        throw Error("template: the \"{\" at " + where(text, i) +
                    " is not closed (write \"{{\" for a literal brace)");
      }
      std::string name(text.substr(i + 1, close - i - 1));
      if (name.empty()) throw Error("template: empty placeholder \"{}\" at " + where(text, i));
      flush_literal();
      t.pieces_.push_back(Piece{{}, std::move(name), npos});
      i = close;
    } else if (c == '}') {
      if (i + 1 < text.size() && text[i + 1] == '}') {
        literal.push_back('}');
        ++i;
        continue;
      }
      throw Error("template: single \"}\" at " + where(text, i) + " (write \"}}\" for a literal brace)");
    } else {
      literal.push_back(c);
    }
  }
  flush_literal();
  return t;
}

std::vector<std::string> PromptTemplate::placeholders() const {
  std::vector<std::string> out;
  for (const auto& p : pieces_) {
    if (!p.name.empty() && std::find(out.begin(), out.end(), p.name) == out.end()) out.push_back(p.name);
  }
  return out;
}

void PromptTemplate::bind(const std::vector<std::string>& columns, bool strict) {
  for (auto& p : pieces_) {
    if (p.name.empty()) continue;
    const auto it = std::find(columns.begin(), columns.end(), p.name);
    if (it != columns.end()) {
      p.column = static_cast<std::size_t>(it - columns.begin());
    } else if (strict) {
      std::string list;
      for (const auto& c : columns) list += (list.empty() ? "" : ", ") + c;
      throw Error("template: placeholder {" + p.name + "} names no column of the input (columns: " + list + ")");
    } else {
      p.column = npos;
    }
  }
}

PromptTemplate::Result PromptTemplate::render(const Row& row) const {
  Result r;
  for (const auto& p : pieces_) {
    if (p.name.empty()) {
      r.text += p.literal;
      continue;
    }
    const std::string* v = p.column != npos ? row.at(p.column) : nullptr;
    if (v == nullptr) v = row.find_extra(p.name);
    if (v == nullptr) {
      r.text.clear();
      r.error = "row " + std::to_string(row.number) + ": column \"" + p.name + "\" is missing";
      return r;
    }
    r.text += *v;
  }
  return r;
}

}  // namespace floodgate::tables
