#pragma once
// Results as a table: one row per request, flattened, in CSV or SQLite.
//
// Columns, in order:
//   custom_id, status ("ok" | "error"),
//   the input row's columns (from a table input),
//   each top-level property of the answer's JSON Schema (strings as they are, booleans as
//   true/false, other values as their JSON text; in SQLite integers and numbers keep their
//   type and booleans are INTEGER 0/1, SQLite's booleans),
//   content (the assistant message as text), finish_reason,
//   prompt_tokens, completion_tokens, total_tokens, cached_tokens, reasoning_tokens,
//   cost_usd (blank when the model has no price), latency_s, attempts, model,
//   called_at (UTC, ISO 8601, when the final attempt was sent), error_kind, error_message.
// SQLite adds status_code, request_id, line_no and response_json (the raw body). In SQLite the
// input columns have the type their values have (input_sql_types, see ColumnTypes): INTEGER
// and REAL columns hold numbers (an empty value is NULL), TEXT columns the text as read.
// docs/tables.md lists what pandas read_csv / read_sql gets for each column.
// A name that would repeat an earlier column gets a prefix ("input_" / "answer_").
//
// CSV (RFC 4180, CRLF, quoted where needed, UTF-8 kept as is): the header is written once;
// appending (resume) keeps the rows there, cuts a torn last record, checks the header is the
// same, and skips custom_ids already present so every row appears once.
// SQLite: table `results`, custom_id PRIMARY KEY, re-runs upsert; WAL; rows are written in
// one transaction per flush(); columns a newer run adds are added to an existing table.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/store/sink.hpp"

namespace floodgate::store {

struct TableSinkOptions {
  std::vector<std::string> input_columns;
  // SQLite types of the input columns ("INTEGER", "REAL", "TEXT"; "" or missing = TEXT),
  // aligned with input_columns; see ColumnTypes.
  std::vector<std::string> input_sql_types;
  std::vector<std::string> answer_columns;
  // SQLite column types of the answer columns ("INTEGER", "REAL", "TEXT", "" = any), aligned
  // with answer_columns; may be empty.
  std::vector<std::string> answer_sql_types;
  // The input values of the row an outcome belongs to, aligned with input_columns (shorter:
  // the rest are blank), e.g. from the context's payload. May be empty (no input columns).
  std::function<std::vector<std::string>(const Outcome&, const RowContext&)> input_values;
  // What the call cost in USD; nullopt when unknown (left blank / NULL).
  std::function<std::optional<double>(const Outcome&, const RowContext&)> cost_usd;
};

// The SQLite type that fits every value of each input column, seen one value at a time:
// INTEGER when every non-empty value is a decimal integer as JSON writes one (no "+", no
// leading zero, so "02139" stays text) that fits 64 bits, REAL when every non-empty value is
// a JSON number, TEXT otherwise (and for a column with no value at all).
class ColumnTypes {
 public:
  explicit ColumnTypes(std::size_t columns) : kinds_(columns, Kind::none) {}
  void see(std::size_t column, std::string_view value);
  [[nodiscard]] std::vector<std::string> sql_types() const;

 private:
  enum class Kind { none, integer, real, text };
  std::vector<Kind> kinds_;
};

// The header the table sinks write (CSV flavour: without the SQLite-only columns).
[[nodiscard]] std::vector<std::string> table_columns(const TableSinkOptions& options, bool sqlite);

[[nodiscard]] std::unique_ptr<Sink> make_csv_sink(const std::string& path, OpenMode mode, TableSinkOptions options);
[[nodiscard]] std::unique_ptr<Sink> make_sqlite_sink(const std::string& path, OpenMode mode, TableSinkOptions options);

enum class OutputFormat { jsonl, csv, sqlite };
// By extension: .csv -> csv; .sqlite, .sqlite3, .db -> sqlite; anything else (.jsonl, "-") -> jsonl.
[[nodiscard]] OutputFormat output_format_of(const std::string& path) noexcept;
// Opens the sink the path's extension names.
[[nodiscard]] std::unique_ptr<Sink> make_sink_for_path(const std::string& path, OpenMode mode,
                                                       TableSinkOptions options, bool fsync_on_flush = false);

// Passes on only successes (ok = true) or only failures (ok = false): --errors FILE writes
// the failures apart from the valid rows.
[[nodiscard]] std::unique_ptr<Sink> make_filtered_sink(std::unique_ptr<Sink> inner, bool ok);

}  // namespace floodgate::store
