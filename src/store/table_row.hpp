#pragma once
// Flattening one outcome into the cells of a results table (shared by the CSV and SQLite
// sinks). See include/floodgate/store/table_sink.hpp for the columns.

#include <cstdint>
#include <string>
#include <vector>

#include "floodgate/core/text.hpp"
#include "floodgate/store/sqlite_table.hpp"
#include "floodgate/store/table_sink.hpp"

namespace floodgate::store::detail {

using Cell = TableCell;  // one value of a row (sqlite_table.hpp)

class Flattener {
 public:
  Flattener(TableSinkOptions options, bool sqlite);
  [[nodiscard]] const std::vector<std::string>& columns() const noexcept { return columns_; }
  // Declared SQLite type per column ("" = none).
  [[nodiscard]] const std::vector<std::string>& sql_types() const noexcept { return sql_types_; }
  void flatten(const Outcome& outcome, const RowContext& context, std::vector<Cell>& cells) const;
  // The key of a row: its custom_id, or "@line:<N>" for input lines without one.
  [[nodiscard]] static std::string key_of(const Outcome& outcome);

 private:
  TableSinkOptions options_;
  bool sqlite_;
  std::vector<std::string> columns_;
  std::vector<std::string> sql_types_;
};

// The text of a cell as CSV writes it: integers in decimal, reals as fixed decimals
// (`digits` after the point, trailing zeros trimmed), null as "".
[[nodiscard]] std::string cell_text(const Cell& cell);


}  // namespace floodgate::store::detail
