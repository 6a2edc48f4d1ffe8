#pragma once
// A table of inputs, read one row at a time. Two sources:
//   - CSV (RFC 4180, see csv/csv.hpp): the first record is the header and names the columns;
//   - JSONL rows of fields: one JSON object per line; the first object's keys, in order, are
//     the columns; later rows may add keys (usable in templates, not output as columns).
//     Strings are taken as they are, numbers/booleans/objects as their JSON text, null as "".
// Rows stream: memory is bounded by the largest row, never by the number of rows.
//
// A row that cannot be read (a CSV record with more fields than the header, an unclosed
// quote, a JSONL line that is not an object) comes back with `error` set, naming the row, and
// reading goes on. A row with fewer fields than the header is not an error by itself: a
// template that needs a missing field makes it one (naming the row and the column).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace floodgate::tables {

struct Row {
  std::uint64_t number = 0;          // 1-based data row (CSV: header not counted; JSONL: line number)
  std::uint64_t line = 0;            // 1-based line of the input where the row starts
  std::vector<std::string> values;   // by column index; may be shorter than columns()
  std::vector<std::pair<std::string, std::string>> extra;  // JSONL keys that are not columns
  std::string error;                 // set when the row is malformed: "row 7 (line 9): ..."

  // The value of column `index` / named `name` (extra keys included); nullptr when absent.
  [[nodiscard]] const std::string* at(std::size_t index) const noexcept {
    return index < values.size() ? &values[index] : nullptr;
  }
  [[nodiscard]] const std::string* find_extra(std::string_view name) const noexcept;
};

class RowSource {
 public:
  virtual ~RowSource() = default;
  [[nodiscard]] virtual const std::vector<std::string>& columns() const = 0;
  // The next row; false at the end.
  [[nodiscard]] virtual bool next(Row& row) = 0;
  // Whether the columns are fixed by a header (CSV) or only by the first row (JSONL).
  [[nodiscard]] virtual bool has_header() const = 0;
  [[nodiscard]] virtual std::uint64_t bytes_read() const = 0;
};

// Opens a CSV file ("-" for stdin). Throws floodgate::Error when the file cannot be opened,
// has no header, or the header repeats or leaves empty a column name.
[[nodiscard]] std::unique_ptr<RowSource> open_csv_rows(const std::string& path, char delimiter = ',');
// Opens a JSONL file of objects. The columns come from the first valid row.
[[nodiscard]] std::unique_ptr<RowSource> open_jsonl_rows(const std::string& path);
// By extension: .csv -> CSV, .tsv -> CSV with tabs, anything else -> JSONL rows.
[[nodiscard]] std::unique_ptr<RowSource> open_rows(const std::string& path);
// True when `path` names a table by its extension (.csv or .tsv).
[[nodiscard]] bool is_table_path(std::string_view path) noexcept;

}  // namespace floodgate::tables
