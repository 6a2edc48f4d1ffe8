#pragma once
// A table becomes the engine's input. convert_table() streams the rows once and writes:
//   - a Batch API JSONL file, one request line per good row
//       {"custom_id":ID,"method":"POST","url":"/v1/chat/completions","body":{...}}
//     (the engine reads it like any input, so pacing, retries, journal and resume are the
//     engine's; the conversion is deterministic, so a re-run produces the same file and the
//     journal resumes it);
//   - the error rows (malformed rows, missing columns, bad UTF-8) as Outcomes of kind
//     invalid_input whose message names the row and the column, handed to `on_error_row`;
//   - each row's input values in an InputRowStore, so the results table can repeat the
//     input columns next to the answers without keeping the table in memory.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "floodgate/core/outcome.hpp"
#include "floodgate/tables/row_request.hpp"
#include "floodgate/tables/row_source.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace floodgate::tables {

// custom_id -> the row's values, on disk (SQLite), written in large transactions.
class InputRowStore {
 public:
  // Opens or creates `path`; `truncate` empties it first. Throws floodgate::Error.
  InputRowStore(const std::string& path, bool truncate);
  ~InputRowStore();
  InputRowStore(const InputRowStore&) = delete;
  InputRowStore& operator=(const InputRowStore&) = delete;

  void put(const std::string& custom_id, const std::vector<std::string>& values);
  // Commits what put() wrote (also done every 10,000 rows and by the destructor).
  void commit();
  // Empty when the id is unknown. Thread-safe.
  [[nodiscard]] std::vector<std::string> get(const std::string& custom_id) const;

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* put_ = nullptr;
  sqlite3_stmt* get_ = nullptr;
  std::size_t uncommitted_ = 0;
  bool in_transaction_ = false;
};

struct ConvertStats {
  std::uint64_t rows = 0;        // data rows read
  std::uint64_t requests = 0;    // request lines written
  std::uint64_t error_rows = 0;  // rows handed to on_error_row
};

// Throws floodgate::Error when the JSONL cannot be written.
ConvertStats convert_table(RowSource& rows, const RowRequestBuilder& builder, const std::string& jsonl_path,
                           InputRowStore* store, const std::function<void(const Outcome&)>& on_error_row);

}  // namespace floodgate::tables
