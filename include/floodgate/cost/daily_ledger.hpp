#pragma once
// Money spent per UTC day, kept across runs for --daily-budget. One small table beside the
// journal (same SQLite file, its own connection, WAL):
//   daily_spend(day TEXT PRIMARY KEY, cost_usd REAL, tokens INTEGER)
// Each settlement adds to today's row in its own short transaction, so a crash loses at most
// the call in progress.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

struct sqlite3;

namespace floodgate::cost {

// "2026-11-22" for the UTC day containing `t`.
[[nodiscard]] std::string utc_day(std::chrono::system_clock::time_point t);

class DailyLedger {
 public:
  // Opens (creating when absent) the database at `path`; throws floodgate::Error on failure.
  explicit DailyLedger(const std::string& path);
  ~DailyLedger();
  DailyLedger(const DailyLedger&) = delete;
  DailyLedger& operator=(const DailyLedger&) = delete;

  [[nodiscard]] double spent_usd(const std::string& day) const;
  [[nodiscard]] std::uint64_t spent_tokens(const std::string& day) const;
  void add(const std::string& day, double cost_usd, std::uint64_t tokens);

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace floodgate::cost
