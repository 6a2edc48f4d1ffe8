#pragma once
// Reading results tables back in integration tests (`run` and `batch` write them): a CSV
// file with our CSV reader, a SQLite file with sqlite3.
//
//   const auto t = floodgate::test::read_csv(dir.file("out.csv"));   // t.rows[i].at("custom_id")
//   const auto r = floodgate::test::query(dir.file("out.sqlite"), "SELECT count(*) FROM results");

#include <map>
#include <string>
#include <vector>

namespace floodgate::test {

struct Table {
  std::vector<std::string> header;
  std::vector<std::map<std::string, std::string>> rows;  // column -> text
};

// Every record after the header as column -> text (EXPECTs each record parses and has the
// header's width).
Table read_csv(const std::string& path);

// The rows of `sql` as text ("<null>" for NULL).
std::vector<std::vector<std::string>> query(const std::string& db_path, const std::string& sql);

}  // namespace floodgate::test
