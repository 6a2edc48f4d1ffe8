#include "floodgate/tables/table_input.hpp"

#include <sqlite3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "floodgate/core/batch_io.hpp"
#include "floodgate/core/error.hpp"

namespace floodgate::tables {
namespace {

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    throw Error("input row store: " + m);
  }
}

}  // namespace

InputRowStore::InputRowStore(const std::string& path, bool truncate) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string m = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error("cannot open " + path + ": " + m);
  }
  exec(db_, "PRAGMA journal_mode=WAL");
  exec(db_, "PRAGMA synchronous=OFF");  // a scratch copy of the input: rebuilt on every run
  if (truncate) exec(db_, "DROP TABLE IF EXISTS input_rows");
  exec(db_, "CREATE TABLE IF NOT EXISTS input_rows(custom_id TEXT PRIMARY KEY, fields TEXT NOT NULL)");
  if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO input_rows(custom_id, fields) VALUES(?1, ?2)", -1, &put_,
                         nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(db_, "SELECT fields FROM input_rows WHERE custom_id = ?1", -1, &get_, nullptr) != SQLITE_OK) {
    throw Error(std::string("input row store: ") + sqlite3_errmsg(db_));
  }
}

InputRowStore::~InputRowStore() {
  try {
    commit();
  } catch (...) {  // NOLINT(bugprone-empty-catch): nothing to report from a destructor
  }
  sqlite3_finalize(put_);
  sqlite3_finalize(get_);
  sqlite3_close(db_);
}

void InputRowStore::put(const std::string& custom_id, const std::vector<std::string>& values) {
  if (!in_transaction_) {
    exec(db_, "BEGIN");
    in_transaction_ = true;
  }
  const std::string fields =
      nlohmann::json(values).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  sqlite3_reset(put_);
  sqlite3_bind_text(put_, 1, custom_id.data(), static_cast<int>(custom_id.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(put_, 2, fields.data(), static_cast<int>(fields.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(put_) != SQLITE_DONE) throw Error(std::string("input row store: ") + sqlite3_errmsg(db_));
  if (++uncommitted_ >= 10'000) commit();
}

void InputRowStore::commit() {
  if (!in_transaction_) return;
  exec(db_, "COMMIT");
  in_transaction_ = false;
  uncommitted_ = 0;
}

std::vector<std::string> InputRowStore::get(const std::string& custom_id) const {
  std::vector<std::string> out;
  sqlite3_mutex* m = sqlite3_db_mutex(db_);
  sqlite3_mutex_enter(m);
  sqlite3_reset(get_);
  sqlite3_bind_text(get_, 1, custom_id.data(), static_cast<int>(custom_id.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(get_) == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(get_, 0));
    const auto doc = nlohmann::json::parse(text != nullptr ? text : "[]", nullptr, false);
    if (doc.is_array()) {
      for (const auto& v : doc) out.push_back(v.is_string() ? v.get<std::string>() : std::string{});
    }
  }
  sqlite3_reset(get_);
  sqlite3_mutex_leave(m);
  return out;
}

ConvertStats convert_table(RowSource& rows, const RowRequestBuilder& builder, const std::string& jsonl_path,
                           InputRowStore* store, const std::function<void(const Outcome&)>& on_error_row) {
  std::FILE* out = std::fopen(jsonl_path.c_str(), "wb");
  if (out == nullptr) throw Error("cannot write " + jsonl_path + ": " + std::strerror(errno));
  ConvertStats stats;
  std::string line;
  Row row;
  const auto& columns = rows.columns();
  std::vector<std::string> values;
  auto put_values = [&](const std::string& id) {
    if (store == nullptr) return;
    values.assign(columns.size(), std::string{});
    for (std::size_t i = 0; i < columns.size(); ++i) {
      const std::string* v = row.at(i);
      if (v == nullptr) v = row.find_extra(columns[i]);
      if (v != nullptr) values[i] = *v;
    }
    store->put(id, values);
  };
  try {
    while (rows.next(row)) {
      ++stats.rows;
      RowRequest rr = builder.build(row);
      put_values(rr.request.custom_id);
      if (!rr.error.empty()) {
        ++stats.error_rows;
        Outcome o;
        o.custom_id = rr.request.custom_id;
        o.line_no = row.line;
        o.error = ErrorKind::invalid_input;
        o.error_message = std::move(rr.error);
        if (on_error_row) on_error_row(o);
        continue;
      }
      line.clear();
      line += "{\"custom_id\":";
      append_json_string(line, rr.request.custom_id);
      line += ",\"method\":\"POST\",\"url\":";
      append_json_string(line, rr.request.url);
      line += ",\"body\":";
      line += rr.request.body;
      line += "}\n";
      if (std::fwrite(line.data(), 1, line.size(), out) != line.size()) {
        throw Error("cannot write " + jsonl_path + ": " + std::strerror(errno));
      }
      ++stats.requests;
    }
  } catch (...) {
    std::fclose(out);
    throw;
  }
  if (store != nullptr) store->commit();
  if (std::fclose(out) != 0) throw Error("cannot write " + jsonl_path + ": " + std::strerror(errno));
  return stats;
}

}  // namespace floodgate::tables
