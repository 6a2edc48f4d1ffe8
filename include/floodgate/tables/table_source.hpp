#pragma once
// A table as the engine's input: a RequestSource that reads the rows (CSV, TSV or JSONL
// rows of fields, see row_source.hpp) one at a time and makes each good row one chat request
// (row_request.hpp), with nothing written to disk. Each item carries the row's values
// (InputRow) as its payload, so the results tables repeat the input columns next to the
// answers without looking anything up.
//
// The requests are exactly the Batch API lines
//   {"custom_id":ID,"method":"POST","url":"/v1/chat/completions","body":{...}}
// a file of them would hold, parsed as the engine parses such a file, numbered as its lines
// (the n-th request is line n): so a table's journal (keys, "@line:N", the identity and the
// first lines' fingerprints) is the one that file would have, and a resumed run skips
// exactly the rows an earlier run finished.
//
// Rows that cannot become a request (malformed rows, missing columns, bad UTF-8) are not
// items: they never reach the engine. Each is handed to `on_error_row` as an Outcome of kind
// invalid_input whose message names the row and the column, with a RowContext whose payload
// is the row's values.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "floodgate/core/outcome.hpp"
#include "floodgate/engine/source.hpp"
#include "floodgate/store/sink.hpp"
#include "floodgate/tables/row_request.hpp"
#include "floodgate/tables/row_source.hpp"

namespace floodgate::tables {

// The payload of a table's items: the row's values by column (blank where the row has none).
struct InputRow {
  std::vector<std::string> values;
};

// The values a RowContext's payload carries when it came from a TableSource; empty otherwise.
[[nodiscard]] std::vector<std::string> input_row_values(const store::RowContext& context);

struct TableStats {
  std::uint64_t rows = 0;        // data rows read
  std::uint64_t requests = 0;    // rows that became a request
  std::uint64_t error_rows = 0;  // rows handed to on_error_row
};

class TableSource final : public engine::RequestSource {
 public:
  using ErrorRowHandler = std::function<void(const Outcome&, const store::RowContext&)>;

  // Opens the table `path` ("-" = stdin; by extension, see open_rows). Throws floodgate::Error
  // when it cannot be opened or the options cannot make requests of its columns.
  TableSource(const std::string& path, RowRequestOptions options, ErrorRowHandler on_error_row);

  [[nodiscard]] const std::vector<std::string>& columns() const { return rows_->columns(); }
  // What was read so far (shared: it outlives the source, which the engine owns).
  [[nodiscard]] std::shared_ptr<const TableStats> stats() const noexcept { return stats_; }

  [[nodiscard]] engine::SourceIdentity identity() override;
  [[nodiscard]] engine::SourceStatus next(engine::SourceItem& item) override;
  [[nodiscard]] std::optional<double> fraction_read() const noexcept override;
  // The same table from its start, without error rows handed anywhere; null for stdin.
  [[nodiscard]] std::unique_ptr<engine::RequestSource> reopen() const override;

 private:
  struct Entry {
    engine::SourceItem item;
    Outcome error_row;  // when error_row.error is set, this is an error row, not an item
  };
  bool read_row(Entry& entry);  // false at the end of the table

  std::string path_;
  RowRequestOptions options_;
  ErrorRowHandler on_error_row_;
  std::unique_ptr<RowSource> rows_;
  std::optional<RowRequestBuilder> builder_;
  std::uint64_t size_bytes_ = 0;
  std::deque<Entry> ahead_;  // read for identity(), not handed out yet
  std::shared_ptr<TableStats> stats_ = std::make_shared<TableStats>();
};

// The Batch API line of a request, without its '\n'.
[[nodiscard]] std::string batch_line(const Request& request);

}  // namespace floodgate::tables
