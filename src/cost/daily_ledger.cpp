#include "floodgate/cost/daily_ledger.hpp"

#include <sqlite3.h>

#include <ctime>

#include "floodgate/core/error.hpp"

namespace floodgate::cost {

std::string utc_day(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

namespace {

void exec(sqlite3* db, const char* sql, const std::string& path) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string message = err ? err : "unknown error";
    sqlite3_free(err);
    throw Error("daily budget ledger " + path + ": " + message);
  }
}

struct Statement {
  sqlite3_stmt* stmt = nullptr;
  Statement(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
      throw Error(std::string("daily budget ledger: ") + sqlite3_errmsg(db));
    }
  }
  ~Statement() { sqlite3_finalize(stmt); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
};

}  // namespace

DailyLedger::DailyLedger(const std::string& path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error("cannot open the daily budget ledger " + path + ": " + message);
  }
  sqlite3_busy_timeout(db_, 5000);
  exec(db_, "PRAGMA journal_mode=WAL", path);
  exec(db_, "PRAGMA synchronous=NORMAL", path);  // WAL: durable at checkpoints, no fsync per call
  exec(db_,
       "CREATE TABLE IF NOT EXISTS daily_spend(day TEXT PRIMARY KEY, cost_usd REAL NOT NULL DEFAULT 0,"
       " tokens INTEGER NOT NULL DEFAULT 0)",
       path);
}

DailyLedger::~DailyLedger() { sqlite3_close(db_); }

double DailyLedger::spent_usd(const std::string& day) const {
  Statement s(db_, "SELECT cost_usd FROM daily_spend WHERE day = ?1");
  sqlite3_bind_text(s.stmt, 1, day.c_str(), -1, SQLITE_TRANSIENT);
  return sqlite3_step(s.stmt) == SQLITE_ROW ? sqlite3_column_double(s.stmt, 0) : 0.0;
}

std::uint64_t DailyLedger::spent_tokens(const std::string& day) const {
  Statement s(db_, "SELECT tokens FROM daily_spend WHERE day = ?1");
  sqlite3_bind_text(s.stmt, 1, day.c_str(), -1, SQLITE_TRANSIENT);
  return sqlite3_step(s.stmt) == SQLITE_ROW ? static_cast<std::uint64_t>(sqlite3_column_int64(s.stmt, 0)) : 0;
}

void DailyLedger::add(const std::string& day, double cost_usd, std::uint64_t tokens) {
  Statement s(db_,
              "INSERT INTO daily_spend(day, cost_usd, tokens) VALUES(?1, ?2, ?3) ON CONFLICT(day) DO UPDATE SET"
              " cost_usd = cost_usd + excluded.cost_usd, tokens = tokens + excluded.tokens");
  sqlite3_bind_text(s.stmt, 1, day.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_double(s.stmt, 2, cost_usd);
  sqlite3_bind_int64(s.stmt, 3, static_cast<sqlite3_int64>(tokens));
  if (sqlite3_step(s.stmt) != SQLITE_DONE) {
    throw Error(std::string("daily budget ledger: ") + sqlite3_errmsg(db_));
  }
}

}  // namespace floodgate::cost
