// The SQLite results sink: engine outcomes flattened (table_row.hpp) into the rows of a
// SqliteTable `results` keyed by custom_id. See include/floodgate/store/table_sink.hpp.

#include "floodgate/store/sqlite_table.hpp"
#include "table_row.hpp"

namespace floodgate::store {
namespace {

std::vector<TableColumn> columns_of(const detail::Flattener& flattener) {
  std::vector<TableColumn> cols;
  for (std::size_t i = 0; i < flattener.columns().size(); ++i) {
    cols.push_back(TableColumn{flattener.columns()[i], flattener.sql_types()[i]});
  }
  return cols;
}

class SqliteSink final : public Sink {
 public:
  SqliteSink(const std::string& path, OpenMode mode, TableSinkOptions options)
      : flattener_(std::move(options), true), table_(path, "results", columns_of(flattener_), mode) {}

  void write(const Outcome& outcome, const RowContext& context) override {
    flattener_.flatten(outcome, context, cells_);
    table_.upsert(cells_);
  }
  void flush() override { table_.flush(); }
  void forget(const std::vector<std::string>& keys) override { table_.remove(keys); }
  void close() override { table_.close(); }

 private:
  detail::Flattener flattener_;
  SqliteTable table_;
  std::vector<detail::Cell> cells_;
};

}  // namespace

std::unique_ptr<Sink> make_sqlite_sink(const std::string& path, OpenMode mode, TableSinkOptions options) {
  return std::make_unique<SqliteSink>(path, mode, std::move(options));
}

}  // namespace floodgate::store
