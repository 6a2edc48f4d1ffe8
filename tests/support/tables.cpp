#include "support/tables.hpp"

#include <sqlite3.h>

#include <gtest/gtest.h>

#include "floodgate/csv/csv.hpp"
#include "support/files.hpp"

namespace floodgate::test {

Table read_csv(const std::string& path) {
  Table t;
  const auto recs = floodgate::csv::parse(slurp(path));
  EXPECT_FALSE(recs.empty());
  if (recs.empty()) return t;
  t.header = recs[0].fields;
  for (std::size_t i = 1; i < recs.size(); ++i) {
    EXPECT_EQ(recs[i].error, "");
    EXPECT_EQ(recs[i].fields.size(), t.header.size());
    std::map<std::string, std::string> row;
    for (std::size_t c = 0; c < t.header.size() && c < recs[i].fields.size(); ++c) row[t.header[c]] = recs[i].fields[c];
    t.rows.push_back(std::move(row));
  }
  return t;
}

std::vector<std::vector<std::string>> query(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::vector<std::vector<std::string>> out;
  EXPECT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  while (st != nullptr && sqlite3_step(st) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int i = 0; i < sqlite3_column_count(st); ++i) {
      const auto* t = sqlite3_column_text(st, i);
      row.emplace_back(t != nullptr ? reinterpret_cast<const char*>(t) : "<null>");
    }
    out.push_back(row);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

}  // namespace floodgate::test
