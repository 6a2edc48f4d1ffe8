#include "floodgate/store/journal.hpp"

#include <sqlite3.h>

#include <chrono>

#include "floodgate/core/error.hpp"

namespace floodgate::store {
namespace {

std::string sqlite_error(sqlite3* db, const std::string& where) {
  if (db == nullptr) return "journal: " + where + ": out of memory";
  const char* file = sqlite3_db_filename(db, "main");
  return "journal \"" + std::string(file != nullptr ? file : "") + "\": " + where + ": " + sqlite3_errmsg(db);
}

void bind_text(sqlite3_stmt* st, int i, std::string_view text) {
  sqlite3_bind_text(st, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

}  // namespace

std::string default_journal_path(const std::string& output_path) { return output_path + ".journal"; }

Journal::Journal(const std::string& path, const std::string& run_identity) : path_(path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    const std::string msg = sqlite_error(db_, "cannot open \"" + path + "\"");
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  try {
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    exec(
        "CREATE TABLE IF NOT EXISTS outcomes("
        " custom_id TEXT PRIMARY KEY,"
        " line_no INTEGER NOT NULL,"
        " status_code INTEGER NOT NULL,"
        " error_kind TEXT NOT NULL,"
        " attempts INTEGER NOT NULL,"
        " prompt_tokens INTEGER NOT NULL,"
        " completion_tokens INTEGER NOT NULL,"
        " total_tokens INTEGER NOT NULL,"
        " output_written INTEGER NOT NULL,"
        " finished_at REAL NOT NULL) WITHOUT ROWID");
    exec("CREATE TABLE IF NOT EXISTS pauses(model TEXT PRIMARY KEY, until_unix_ms INTEGER NOT NULL, reason TEXT NOT NULL)");
    exec("CREATE TABLE IF NOT EXISTS admissions(model TEXT NOT NULL, unix_second INTEGER NOT NULL, requests INTEGER NOT NULL,"
         " tokens INTEGER NOT NULL, PRIMARY KEY(model, unix_second)) WITHOUT ROWID");
    auto existing = meta("run_identity");
    if (!existing) {
      set_meta("run_identity", run_identity);
    } else if (*existing != run_identity) {
      throw Error("the journal \"" + path + "\" belongs to a different input or endpoint (run identity " + *existing +
                  ", this run " + run_identity + "); resume with the same input, or pass --overwrite to start over");
    }
    if (sqlite3_prepare_v3(db_,
                           "INSERT OR REPLACE INTO outcomes(custom_id,line_no,status_code,error_kind,attempts,prompt_tokens,"
                           "completion_tokens,total_tokens,output_written,finished_at) VALUES(?,?,?,?,?,?,?,?,1,?)",
                           -1, SQLITE_PREPARE_PERSISTENT, &insert_, nullptr) != SQLITE_OK ||
        sqlite3_prepare_v3(db_, "SELECT 1 FROM outcomes WHERE custom_id=?", -1, SQLITE_PREPARE_PERSISTENT, &lookup_, nullptr) != SQLITE_OK) {
      throw Error(sqlite_error(db_, "prepare"));
    }
    resumed_ = count() > 0;
  } catch (...) {
    sqlite3_finalize(insert_);
    sqlite3_finalize(lookup_);
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

Journal::~Journal() {
  try {
    if (!pending_.empty()) commit();
  } catch (...) {  // NOLINT: nothing to report from a destructor
  }
  sqlite3_finalize(insert_);
  sqlite3_finalize(lookup_);
  sqlite3_finalize(add_admission_);
  sqlite3_finalize(begin_);
  sqlite3_finalize(commit_);
  sqlite3_close(db_);
}

void Journal::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = "journal \"" + path_ + "\": " + (err != nullptr ? err : "error");
    sqlite3_free(err);
    throw Error(msg, failure_exit_code());
  }
}

// sqlite3_exec() parses its SQL text at every call, and the engine opens and commits a
// transaction at every turn of its loop that admitted something: BEGIN and COMMIT are
// prepared once instead. Fails as exec() does.
void Journal::run_cached(sqlite3_stmt*& st, const char* sql) {
  if (st == nullptr && sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) != SQLITE_OK) {
    st = nullptr;
    throw Error("journal \"" + path_ + "\": " + sqlite3_errmsg(db_), failure_exit_code());
  }
  if (sqlite3_step(st) != SQLITE_DONE) {
    std::string msg = "journal \"" + path_ + "\": " + sqlite3_errmsg(db_);
    const int code = failure_exit_code();
    sqlite3_reset(st);
    throw Error(msg, code);
  }
  sqlite3_reset(st);
}

int Journal::failure_exit_code() const noexcept {
  if (db_ != nullptr && sqlite3_errcode(db_) == SQLITE_FULL) return exit_code::disk_full;
  return write_failure_exit_code(db_ != nullptr ? sqlite3_system_errno(db_) : 0);
}

std::string Journal::key_of(const Outcome& outcome) {
  if (!outcome.custom_id.empty()) return outcome.custom_id;
  return "@line:" + std::to_string(outcome.line_no);
}

bool Journal::is_done(std::string_view custom_id) {
  sqlite3_reset(lookup_);
  bind_text(lookup_, 1, custom_id);
  const int rc = sqlite3_step(lookup_);
  sqlite3_reset(lookup_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) throw Error(sqlite_error(db_, "lookup"), exit_code::internal);
  return false;
}

void Journal::record(const Outcome& o) {
  pending_.push_back(Row{key_of(o), o.line_no, o.status_code, std::string(to_string(o.error)), o.attempts, o.usage});
}

void Journal::commit() {
  if (pending_.empty()) return;
  const double now_s = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  run_cached(begin_, "BEGIN IMMEDIATE");
  try {
    for (const Row& r : pending_) {
      sqlite3_reset(insert_);
      bind_text(insert_, 1, r.key);
      sqlite3_bind_int64(insert_, 2, static_cast<sqlite3_int64>(r.line_no));
      sqlite3_bind_int(insert_, 3, r.status_code);
      bind_text(insert_, 4, r.error);
      sqlite3_bind_int64(insert_, 5, r.attempts);
      sqlite3_bind_int64(insert_, 6, static_cast<sqlite3_int64>(r.usage.prompt_tokens));
      sqlite3_bind_int64(insert_, 7, static_cast<sqlite3_int64>(r.usage.completion_tokens));
      sqlite3_bind_int64(insert_, 8, static_cast<sqlite3_int64>(r.usage.total_tokens));
      sqlite3_bind_double(insert_, 9, now_s);
      if (sqlite3_step(insert_) != SQLITE_DONE) throw Error(sqlite_error(db_, "insert"), failure_exit_code());
    }
    sqlite3_reset(insert_);
    run_cached(commit_, "COMMIT");
  } catch (...) {
    sqlite3_reset(insert_);
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  pending_.clear();
}

std::uint64_t Journal::count() {
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "SELECT count(*) FROM outcomes", -1, &st, nullptr);
  std::uint64_t n = 0;
  if (st != nullptr && sqlite3_step(st) == SQLITE_ROW) n = static_cast<std::uint64_t>(sqlite3_column_int64(st, 0));
  sqlite3_finalize(st);
  return n;
}

std::uint64_t Journal::count_ok() {
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "SELECT count(*) FROM outcomes WHERE error_kind='none'", -1, &st, nullptr);
  std::uint64_t n = 0;
  if (st != nullptr && sqlite3_step(st) == SQLITE_ROW) n = static_cast<std::uint64_t>(sqlite3_column_int64(st, 0));
  sqlite3_finalize(st);
  return n;
}

std::optional<bool> Journal::succeeded(std::string_view key) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT error_kind='none' FROM outcomes WHERE custom_id=?", -1, &st, nullptr) != SQLITE_OK) {
    throw Error(sqlite_error(db_, "lookup"), exit_code::internal);
  }
  bind_text(st, 1, key);
  std::optional<bool> ok;
  if (sqlite3_step(st) == SQLITE_ROW) ok = sqlite3_column_int(st, 0) != 0;
  sqlite3_finalize(st);
  return ok;
}

void Journal::for_each_key(const std::function<void(std::string_view)>& fn) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT custom_id FROM outcomes", -1, &st, nullptr) != SQLITE_OK) {
    throw Error(sqlite_error(db_, "scan"), exit_code::internal);
  }
  while (sqlite3_step(st) == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    fn(std::string_view(text != nullptr ? text : "", static_cast<std::size_t>(sqlite3_column_bytes(st, 0))));
  }
  sqlite3_finalize(st);
}

void Journal::remove(const std::vector<std::string>& keys) {
  if (keys.empty()) return;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "DELETE FROM outcomes WHERE custom_id=?", -1, &st, nullptr) != SQLITE_OK) {
    throw Error(sqlite_error(db_, "delete"), exit_code::internal);
  }
  run_cached(begin_, "BEGIN IMMEDIATE");
  for (const auto& k : keys) {
    sqlite3_reset(st);
    bind_text(st, 1, k);
    sqlite3_step(st);
  }
  sqlite3_finalize(st);
  run_cached(commit_, "COMMIT");
}

void Journal::set_pause(const Pause& pause) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO pauses(model,until_unix_ms,reason) VALUES(?,?,?)", -1, &st, nullptr) != SQLITE_OK) {
    throw Error(sqlite_error(db_, "pause"), exit_code::internal);
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(pause.until.time_since_epoch()).count();
  bind_text(st, 1, pause.model);
  sqlite3_bind_int64(st, 2, static_cast<sqlite3_int64>(ms));
  bind_text(st, 3, pause.reason);
  const int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) throw Error(sqlite_error(db_, "pause"), exit_code::internal);
}

void Journal::clear_pause(std::string_view model) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "DELETE FROM pauses WHERE model=?", -1, &st, nullptr) != SQLITE_OK) {
    throw Error(sqlite_error(db_, "pause"), exit_code::internal);
  }
  bind_text(st, 1, model);
  const int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) throw Error(sqlite_error(db_, "pause"), exit_code::internal);
}

std::vector<Journal::Pause> Journal::pauses() {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT model,until_unix_ms,reason FROM pauses ORDER BY model", -1, &st, nullptr) != SQLITE_OK) {
    throw Error(sqlite_error(db_, "pause"), exit_code::internal);
  }
  std::vector<Pause> out;
  auto text = [st](int col) {
    const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(st, col));
    return std::string(t != nullptr ? t : "", static_cast<std::size_t>(sqlite3_column_bytes(st, col)));
  };
  while (sqlite3_step(st) == SQLITE_ROW) {
    Pause p;
    p.model = text(0);
    p.until = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::milliseconds(sqlite3_column_int64(st, 1))));
    p.reason = text(2);
    out.push_back(std::move(p));
  }
  sqlite3_finalize(st);
  return out;
}

void Journal::set_meta(const std::string& key, const std::string& value) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO meta(key,value) VALUES(?,?)", -1, &st, nullptr) != SQLITE_OK) {
    throw Error(sqlite_error(db_, "meta"), exit_code::internal);
  }
  bind_text(st, 1, key);
  bind_text(st, 2, value);
  const int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) throw Error(sqlite_error(db_, "meta"), exit_code::internal);
}

std::optional<std::string> Journal::meta(const std::string& key) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT value FROM meta WHERE key=?", -1, &st, nullptr) != SQLITE_OK) return std::nullopt;
  bind_text(st, 1, key);
  std::optional<std::string> out;
  if (sqlite3_step(st) == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    out = std::string(text != nullptr ? text : "");
  }
  sqlite3_finalize(st);
  return out;
}

// ---- admissions ------------------------------------------------------------------------------

void Journal::record_admission(std::string_view model, std::chrono::system_clock::time_point at, std::uint64_t requests,
                               std::uint64_t tokens) {
  const std::int64_t second = std::chrono::duration_cast<std::chrono::seconds>(at.time_since_epoch()).count();
  if (!admissions_.empty() && admissions_.back().model == model && admissions_.back().unix_second == second) {
    admissions_.back().requests += requests;
    admissions_.back().tokens += tokens;
    return;
  }
  admissions_.push_back(Admission{std::string(model), second, requests, tokens});
}

void Journal::commit_admissions() {
  if (admissions_.empty()) return;
  if (add_admission_ == nullptr &&
      sqlite3_prepare_v3(db_,
                         "INSERT INTO admissions(model,unix_second,requests,tokens) VALUES(?,?,?,?) ON CONFLICT(model,unix_second) "
                         "DO UPDATE SET requests = requests + excluded.requests, tokens = tokens + excluded.tokens",
                         -1, SQLITE_PREPARE_PERSISTENT, &add_admission_, nullptr) != SQLITE_OK) {
    throw Error(sqlite_error(db_, "admissions"), exit_code::internal);
  }
  run_cached(begin_, "BEGIN IMMEDIATE");
  try {
    for (const Admission& a : admissions_) {
      sqlite3_reset(add_admission_);
      bind_text(add_admission_, 1, a.model);
      sqlite3_bind_int64(add_admission_, 2, a.unix_second);
      sqlite3_bind_int64(add_admission_, 3, static_cast<sqlite3_int64>(a.requests));
      sqlite3_bind_int64(add_admission_, 4, static_cast<sqlite3_int64>(a.tokens));
      if (sqlite3_step(add_admission_) != SQLITE_DONE) throw Error(sqlite_error(db_, "admissions"), failure_exit_code());
    }
    sqlite3_reset(add_admission_);
    run_cached(commit_, "COMMIT");
  } catch (...) {
    sqlite3_reset(add_admission_);
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  admissions_.clear();
}

// The rows of a "SELECT model,unix_second,requests,tokens FROM admissions ..." statement.
std::vector<Journal::Admission> Journal::admission_rows(sqlite3_stmt* st) {
  std::vector<Admission> out;
  while (sqlite3_step(st) == SQLITE_ROW) {
    const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    out.push_back(Admission{std::string(t != nullptr ? t : "", static_cast<std::size_t>(sqlite3_column_bytes(st, 0))),
                            sqlite3_column_int64(st, 1), static_cast<std::uint64_t>(sqlite3_column_int64(st, 2)),
                            static_cast<std::uint64_t>(sqlite3_column_int64(st, 3))});
  }
  return out;
}

std::vector<Journal::Admission> Journal::admissions_since(std::chrono::system_clock::time_point since) {
  const std::int64_t first = std::chrono::duration_cast<std::chrono::seconds>(since.time_since_epoch()).count();
  sqlite3_stmt* st = nullptr;
  // Older rows can no longer count in any window: they go.
  if (sqlite3_prepare_v2(db_, "DELETE FROM admissions WHERE unix_second < ?", -1, &st, nullptr) != SQLITE_OK) {
    throw Error(sqlite_error(db_, "admissions"), exit_code::internal);
  }
  sqlite3_bind_int64(st, 1, first);
  const int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) throw Error(sqlite_error(db_, "admissions"), failure_exit_code());
  if (sqlite3_prepare_v2(db_, "SELECT model,unix_second,requests,tokens FROM admissions ORDER BY unix_second", -1, &st, nullptr) !=
      SQLITE_OK) {
    throw Error(sqlite_error(db_, "admissions"), exit_code::internal);
  }
  std::vector<Admission> out = admission_rows(st);
  sqlite3_finalize(st);
  return out;
}

std::vector<Journal::Admission> Journal::read_admissions(const std::string& path,
                                                         std::chrono::system_clock::time_point since) {
  std::vector<Admission> out;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return out;
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT model,unix_second,requests,tokens FROM admissions WHERE unix_second >= ? ORDER BY unix_second",
                         -1, &st, nullptr) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, std::chrono::duration_cast<std::chrono::seconds>(since.time_since_epoch()).count());
    out = admission_rows(st);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

}  // namespace floodgate::store
