// See include/floodgate/store/sqlite_table.hpp.
#include "floodgate/store/sqlite_table.hpp"

#include <sqlite3.h>

#include <set>

#include "floodgate/core/error.hpp"

namespace floodgate::store {
namespace {

std::string quoted_identifier(const std::string& name) {
  std::string out = "\"";
  for (const char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace

SqliteTable::SqliteTable(const std::string& path, const std::string& table, const std::vector<TableColumn>& cols,
                         OpenMode mode)
    : path_(path) {
  if (cols.empty()) throw Error(path + ": a table needs at least one column");
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error("cannot open " + path + ": " + message);
  }
  try {
    const std::string name = quoted_identifier(table);
    name_ = name;
    key_column_ = quoted_identifier(cols[0].name);
    sqlite3_busy_timeout(db_, 5000);
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    if (mode == OpenMode::truncate) exec(("DROP TABLE IF EXISTS " + name).c_str());
    std::string create = "CREATE TABLE IF NOT EXISTS " + name + "(";
    for (std::size_t i = 0; i < cols.size(); ++i) {
      if (i > 0) create += ", ";
      create += quoted_identifier(cols[i].name);
      if (!cols[i].sql_type.empty()) create += " " + cols[i].sql_type;
      if (i == 0) create += " PRIMARY KEY";
    }
    create += ")";
    exec(create.c_str());
    // A table from an earlier run may lack columns this run has (another schema): add them.
    std::set<std::string, std::less<>> have;
    {
      sqlite3_stmt* info = nullptr;
      const std::string pragma = "PRAGMA table_info(" + name + ")";
      if (sqlite3_prepare_v2(db_, pragma.c_str(), -1, &info, nullptr) != SQLITE_OK) fail("table_info");
      while (sqlite3_step(info) == SQLITE_ROW) {
        have.insert(reinterpret_cast<const char*>(sqlite3_column_text(info, 1)));
      }
      sqlite3_finalize(info);
    }
    for (const auto& c : cols) {
      if (have.count(c.name) == 0) {
        const std::string alter = "ALTER TABLE " + name + " ADD COLUMN " + quoted_identifier(c.name) +
                                  (c.sql_type.empty() ? "" : " " + c.sql_type);
        exec(alter.c_str());
      }
    }
    std::string insert = "INSERT INTO " + name + "(";
    std::string values = ") VALUES(";
    std::string update = ") ON CONFLICT(" + quoted_identifier(cols[0].name) + ") DO ";
    update += cols.size() == 1 ? "NOTHING" : "UPDATE SET ";
    for (std::size_t i = 0; i < cols.size(); ++i) {
      if (i > 0) {
        insert += ", ";
        values += ", ";
      }
      insert += quoted_identifier(cols[i].name);
      values += "?" + std::to_string(i + 1);
      if (i > 0) {
        if (i > 1) update += ", ";
        update += quoted_identifier(cols[i].name) + " = excluded." + quoted_identifier(cols[i].name);
      }
    }
    const std::string sql = insert + values + update;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &upsert_, nullptr) != SQLITE_OK) fail("prepare");
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

SqliteTable::~SqliteTable() {
  if (in_transaction_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_finalize(upsert_);
  sqlite3_close(db_);
}

void SqliteTable::upsert(const std::vector<TableCell>& cells) {
  if (db_ == nullptr) throw Error(path_ + " is closed");
  if (!in_transaction_) {
    exec("BEGIN");
    in_transaction_ = true;
  }
  sqlite3_reset(upsert_);
  sqlite3_clear_bindings(upsert_);
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const int idx = static_cast<int>(i + 1);
    const TableCell& c = cells[i];
    switch (c.type) {
      case TableCell::Type::null:
        sqlite3_bind_null(upsert_, idx);
        break;
      case TableCell::Type::integer:
        sqlite3_bind_int64(upsert_, idx, c.integer);
        break;
      case TableCell::Type::real:
        sqlite3_bind_double(upsert_, idx, c.real);
        break;
      case TableCell::Type::text:
        sqlite3_bind_text(upsert_, idx, c.text.data(), static_cast<int>(c.text.size()), SQLITE_STATIC);
        break;
    }
  }
  if (sqlite3_step(upsert_) != SQLITE_DONE) fail("insert");
}

void SqliteTable::remove(const std::vector<std::string>& keys) {
  if (db_ == nullptr) throw Error(path_ + " is closed");
  if (keys.empty()) return;
  flush();
  sqlite3_stmt* del = nullptr;
  const std::string sql = "DELETE FROM " + name_ + " WHERE " + key_column_ + " = ?1";
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &del, nullptr) != SQLITE_OK) fail("prepare delete");
  try {
    exec("BEGIN");
    in_transaction_ = true;
    for (const auto& k : keys) {
      sqlite3_reset(del);
      sqlite3_bind_text(del, 1, k.data(), static_cast<int>(k.size()), SQLITE_STATIC);
      if (sqlite3_step(del) != SQLITE_DONE) fail("delete");
    }
  } catch (...) {
    sqlite3_finalize(del);
    throw;
  }
  sqlite3_finalize(del);
  flush();
}

void SqliteTable::flush() {
  if (!failure_.empty()) throw Error(failure_, exit_code_);
  if (in_transaction_) {
    try {
      exec("COMMIT");
    } catch (const Error& e) {
      // SQLite may have rolled the transaction back (a full disk): its rows are gone, so
      // this table takes nothing more. The engine then keeps them out of the output and
      // the journal too, and a resume sends them again.
      failure_ = e.what();
      exit_code_ = e.exit_code();
      throw;
    }
    in_transaction_ = false;
  }
}

void SqliteTable::close() {
  if (db_ == nullptr) return;
  flush();
  sqlite3_finalize(upsert_);
  upsert_ = nullptr;
  const int rc = sqlite3_close(db_);
  db_ = nullptr;
  if (rc != SQLITE_OK) throw Error("cannot close " + path_);
}

void SqliteTable::fail(const char* what) {
  throw Error(path_ + ": " + what + ": " + (db_ != nullptr ? sqlite3_errmsg(db_) : "closed"));
}

void SqliteTable::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string message = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    const int code = sqlite3_errcode(db_) == SQLITE_FULL ? exit_code::disk_full : write_failure_exit_code(sqlite3_system_errno(db_));
    throw Error(path_ + ": " + message, code == exit_code::internal ? exit_code::usage : code);
  }
}

}  // namespace floodgate::store
