// The SQLite results sink. See include/floodgate/store/table_sink.hpp.

#include <sqlite3.h>

#include <set>

#include "floodgate/core/error.hpp"
#include "table_row.hpp"

namespace floodgate {
namespace {

using store_detail::Cell;

std::string quoted_identifier(const std::string& name) {
  std::string out = "\"";
  for (const char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

class SqliteSink final : public Sink {
 public:
  SqliteSink(const std::string& path, OpenMode mode, TableSinkOptions options)
      : path_(path), flattener_(std::move(options), true) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
      std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      throw Error("cannot open " + path + ": " + message);
    }
    sqlite3_busy_timeout(db_, 5000);
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    if (mode == OpenMode::truncate) exec("DROP TABLE IF EXISTS results");
    const auto& cols = flattener_.columns();
    const auto& types = flattener_.sql_types();
    std::string create = "CREATE TABLE IF NOT EXISTS results(";
    for (std::size_t i = 0; i < cols.size(); ++i) {
      if (i > 0) create += ", ";
      create += quoted_identifier(cols[i]);
      if (!types[i].empty()) create += " " + types[i];
      if (i == 0) create += " PRIMARY KEY";
    }
    create += ")";
    exec(create.c_str());
    // A table from an earlier run may lack columns this run has (another schema): add them.
    std::set<std::string, std::less<>> have;
    {
      sqlite3_stmt* info = nullptr;
      if (sqlite3_prepare_v2(db_, "PRAGMA table_info(results)", -1, &info, nullptr) != SQLITE_OK) fail("table_info");
      while (sqlite3_step(info) == SQLITE_ROW) {
        have.insert(reinterpret_cast<const char*>(sqlite3_column_text(info, 1)));
      }
      sqlite3_finalize(info);
    }
    for (std::size_t i = 0; i < cols.size(); ++i) {
      if (have.count(cols[i]) == 0) {
        const std::string alter = "ALTER TABLE results ADD COLUMN " + quoted_identifier(cols[i]) +
                                  (types[i].empty() ? "" : " " + types[i]);
        exec(alter.c_str());
      }
    }
    std::string insert = "INSERT INTO results(";
    std::string values = ") VALUES(";
    std::string update = ") ON CONFLICT(custom_id) DO UPDATE SET ";
    for (std::size_t i = 0; i < cols.size(); ++i) {
      if (i > 0) {
        insert += ", ";
        values += ", ";
      }
      insert += quoted_identifier(cols[i]);
      values += "?" + std::to_string(i + 1);
      if (i > 0) {
        if (i > 1) update += ", ";
        update += quoted_identifier(cols[i]) + " = excluded." + quoted_identifier(cols[i]);
      }
    }
    const std::string sql = insert + values + update;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &upsert_, nullptr) != SQLITE_OK) fail("prepare");
  }

  ~SqliteSink() override {
    if (in_transaction_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_finalize(upsert_);
    sqlite3_close(db_);
  }

  void write(const Outcome& outcome, const RowContext& context) override {
    if (db_ == nullptr) throw Error(path_ + " is closed");
    if (!in_transaction_) {
      exec("BEGIN");
      in_transaction_ = true;
    }
    flattener_.flatten(outcome, context, cells_);
    sqlite3_reset(upsert_);
    sqlite3_clear_bindings(upsert_);
    for (std::size_t i = 0; i < cells_.size(); ++i) {
      const int idx = static_cast<int>(i + 1);
      const Cell& c = cells_[i];
      switch (c.type) {
        case Cell::Type::null:
          sqlite3_bind_null(upsert_, idx);
          break;
        case Cell::Type::integer:
          sqlite3_bind_int64(upsert_, idx, c.integer);
          break;
        case Cell::Type::real:
          sqlite3_bind_double(upsert_, idx, c.real);
          break;
        case Cell::Type::text:
          sqlite3_bind_text(upsert_, idx, c.text.data(), static_cast<int>(c.text.size()), SQLITE_STATIC);
          break;
      }
    }
    if (sqlite3_step(upsert_) != SQLITE_DONE) fail("insert");
  }

  void flush() override {
    if (in_transaction_) {
      exec("COMMIT");
      in_transaction_ = false;
    }
  }

  void close() override {
    if (db_ == nullptr) return;
    flush();
    sqlite3_finalize(upsert_);
    upsert_ = nullptr;
    const int rc = sqlite3_close(db_);
    db_ = nullptr;
    if (rc != SQLITE_OK) throw Error("cannot close " + path_);
  }

 private:
  [[noreturn]] void fail(const char* what) {
    throw Error(path_ + ": " + what + ": " + (db_ != nullptr ? sqlite3_errmsg(db_) : "closed"));
  }
  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string message = err != nullptr ? err : "unknown error";
      sqlite3_free(err);
      throw Error(path_ + ": " + message);
    }
  }

  std::string path_;
  store_detail::Flattener flattener_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* upsert_ = nullptr;
  bool in_transaction_ = false;
  std::vector<Cell> cells_;
};

}  // namespace

std::unique_ptr<Sink> make_sqlite_sink(const std::string& path, OpenMode mode, TableSinkOptions options) {
  return std::make_unique<SqliteSink>(path, mode, std::move(options));
}

}  // namespace floodgate
