#pragma once
// One SQLite table of plain rows, as the SQLite results sink keeps it (the sink is this
// table plus the flattening of engine outcomes; see table_sink.hpp). For callers whose rows
// are not engine outcomes, e.g. `floodgate transcribe`'s one row per input file.
//
// The model: the database file is opened in WAL mode (synchronous=NORMAL, 5 s busy
// timeout); the table is created if absent with the given columns, the first one the
// PRIMARY KEY; columns an existing table lacks are added (a newer run may have more);
// upsert() inserts a row or replaces every other column of the row with the same key, so
// re-running a job never duplicates a row; rows are written in one transaction that
// flush() commits. Errors throw floodgate::Error naming the file.

#include <cstdint>
#include <string>
#include <vector>

#include "floodgate/store/sink.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace floodgate::store {

// One value of a row (NULL, INTEGER, REAL or TEXT).
struct TableCell {
  enum class Type { null, integer, real, text } type = Type::null;
  std::int64_t integer = 0;
  double real = 0;
  std::string text;
};

struct TableColumn {
  std::string name;
  std::string sql_type;  // "TEXT", "INTEGER", "REAL", or "" (no declared type)
};

class SqliteTable {
 public:
  // OpenMode::truncate drops an existing table of that name first.
  SqliteTable(const std::string& path, const std::string& table, const std::vector<TableColumn>& columns,
              OpenMode mode);
  ~SqliteTable();
  SqliteTable(const SqliteTable&) = delete;
  SqliteTable& operator=(const SqliteTable&) = delete;

  // `cells` aligned with the columns (the first is the key).
  void upsert(const std::vector<TableCell>& cells);
  // Deletes the rows with these keys (first column), committed at once.
  void remove(const std::vector<std::string>& keys);
  void flush();   // commits the rows upserted since the last flush()
  void close();   // flush() and close the file (the destructor rolls back what was not flushed)

 private:
  [[noreturn]] void fail(const char* what);
  void exec(const char* sql);

  std::string path_;
  std::string name_;        // the table's quoted name
  std::string key_column_;  // its first column's, quoted
  sqlite3* db_ = nullptr;
  sqlite3_stmt* upsert_ = nullptr;
  bool in_transaction_ = false;
  std::string failure_;  // a COMMIT that failed: every later flush() fails the same way
  int exit_code_ = 0;
};

}  // namespace floodgate::store
