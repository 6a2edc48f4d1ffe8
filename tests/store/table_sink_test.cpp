#include "floodgate/store/table_sink.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "floodgate/core/error.hpp"
#include "floodgate/csv/csv.hpp"

namespace floodgate::store {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("floodgate_sink_" + std::to_string(std::random_device{}()))) {
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Outcome ok_outcome(const std::string& id, const std::string& content, std::uint64_t line = 1) {
  Outcome o;
  o.custom_id = id;
  o.line_no = line;
  o.status_code = 200;
  o.request_id = "req_" + id;
  o.body = json{{"id", "chatcmpl-1"},
                {"model", "gpt-4o-mini-2024-07-18"},
                {"choices", json::array({{{"index", 0},
                                          {"message", {{"role", "assistant"}, {"content", content}}},
                                          {"finish_reason", "stop"}}})},
                {"usage", {{"prompt_tokens", 10}, {"completion_tokens", 5}, {"total_tokens", 15}}}}
               .dump();
  o.attempts = 1;
  o.usage.prompt_tokens = 10;
  o.usage.completion_tokens = 5;
  o.usage.total_tokens = 15;
  o.latency_seconds = 0.25;
  return o;
}

Outcome error_outcome(const std::string& id, ErrorKind kind, const std::string& message) {
  Outcome o;
  o.custom_id = id;
  o.line_no = 9;
  o.error = kind;
  o.error_message = message;
  o.attempts = 3;
  return o;
}

RowContext context() {
  RowContext c;
  c.model = "gpt-4o-mini";
  c.finished_at = std::chrono::system_clock::time_point{} + std::chrono::seconds(1'795'000'000);
  return c;
}

TableSinkOptions options_with(std::map<std::string, std::vector<std::string>>* inputs) {
  TableSinkOptions o;
  o.input_columns = {"id", "text"};
  o.answer_columns = {"label", "score", "ok", "status"};
  o.answer_sql_types = {"TEXT", "REAL", "INTEGER", "TEXT"};
  o.input_values = [inputs](const Outcome& out, const RowContext&) {
    const auto it = inputs->find(out.custom_id);
    return it == inputs->end() ? std::vector<std::string>{} : it->second;
  };
  o.cost_usd = [](const Outcome& out, const RowContext&) -> std::optional<double> {
    if (!out.ok()) return std::nullopt;
    return 0.0000045;
  };
  return o;
}

TEST(TableColumns, OrderAndCollisionPrefixes) {
  std::map<std::string, std::vector<std::string>> inputs;
  const auto cols = table_columns(options_with(&inputs), false);
  ASSERT_GE(cols.size(), 8u);
  EXPECT_EQ(cols[0], "custom_id");
  EXPECT_EQ(cols[1], "status");
  EXPECT_EQ(cols[2], "id");
  EXPECT_EQ(cols[3], "text");
  EXPECT_EQ(cols[4], "label");
  EXPECT_EQ(cols[7], "answer_status");  // "status" is taken
  EXPECT_EQ(cols[8], "content");
  EXPECT_EQ(cols.back(), "error_message");
  const auto sq = table_columns(options_with(&inputs), true);
  EXPECT_EQ(sq.back(), "response_json");
  EXPECT_EQ(output_format_of("a/b.CSV"), OutputFormat::csv);
  EXPECT_EQ(output_format_of("x.sqlite"), OutputFormat::sqlite);
  EXPECT_EQ(output_format_of("x.db"), OutputFormat::sqlite);
  EXPECT_EQ(output_format_of("x.jsonl"), OutputFormat::jsonl);
  EXPECT_EQ(output_format_of("-"), OutputFormat::jsonl);
}

TEST(CsvSink, FlattensAnswersUsageCostAndErrors) {
  TempDir dir;
  std::map<std::string, std::vector<std::string>> inputs{{"a", {"a", "hello, world"}}, {"b", {"b", "x"}}};
  auto sink = make_csv_sink(dir.file("out.csv"), OpenMode::truncate, options_with(&inputs));
  sink->write(ok_outcome("a", R"({"label":"pos","score":0.5,"ok":true,"status":"fine"})"), context());
  sink->write(error_outcome("b", ErrorKind::schema_violation, "/score: not a number"), context());
  sink->close();
  const auto recs = csv::parse(slurp(dir.file("out.csv")));
  ASSERT_EQ(recs.size(), 3u);
  const auto& h = recs[0].fields;
  auto col = [&](const std::string& name) {
    return static_cast<std::size_t>(std::find(h.begin(), h.end(), name) - h.begin());
  };
  const auto& a = recs[1].fields;
  ASSERT_EQ(a.size(), h.size());
  EXPECT_EQ(a[col("custom_id")], "a");
  EXPECT_EQ(a[col("status")], "ok");
  EXPECT_EQ(a[col("text")], "hello, world");
  EXPECT_EQ(a[col("label")], "pos");
  EXPECT_EQ(a[col("score")], "0.5");
  EXPECT_EQ(a[col("ok")], "true");  // JSON's text, as the docs say (was 1: pandas read int64)
  EXPECT_EQ(a[col("answer_status")], "fine");
  EXPECT_EQ(a[col("finish_reason")], "stop");
  EXPECT_EQ(a[col("prompt_tokens")], "10");
  EXPECT_EQ(a[col("total_tokens")], "15");
  EXPECT_EQ(a[col("cost_usd")], "0.0000045");
  EXPECT_EQ(a[col("latency_s")], "0.25");
  EXPECT_EQ(a[col("model")], "gpt-4o-mini");
  EXPECT_EQ(a[col("called_at")].size(), 24u);  // 2026-11-18T...Z
  EXPECT_EQ(a[col("called_at")].back(), 'Z');
  EXPECT_EQ(a[col("error_kind")], "");
  const auto& b = recs[2].fields;
  EXPECT_EQ(b[col("status")], "error");
  EXPECT_EQ(b[col("error_kind")], "schema_violation");
  EXPECT_EQ(b[col("error_message")], "/score: not a number");
  EXPECT_EQ(b[col("label")], "");
  EXPECT_EQ(b[col("attempts")], "3");
  EXPECT_EQ(b[col("cost_usd")], "");
}

TEST(CsvSink, AppendCutsATornTailAndSkipsRowsAlreadyThere) {
  TempDir dir;
  std::map<std::string, std::vector<std::string>> inputs;
  const std::string path = dir.file("out.csv");
  {
    auto sink = make_csv_sink(path, OpenMode::truncate, options_with(&inputs));
    sink->write(ok_outcome("a", "{}"), context());
    sink->write(ok_outcome("b", "{}"), context());
    sink->close();
  }
  // A crash in the middle of writing row "c": an open quote and no line break.
  { std::ofstream(path, std::ios::app | std::ios::binary) << "c,ok,\"half a fie"; }
  {
    auto sink = make_csv_sink(path, OpenMode::append, options_with(&inputs));
    sink->write(ok_outcome("b", "{}"), context());  // already there: skipped
    sink->write(ok_outcome("c", "{}"), context());
    sink->close();
  }
  const auto recs = csv::parse(slurp(path));
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[1].fields[0], "a");
  EXPECT_EQ(recs[2].fields[0], "b");
  EXPECT_EQ(recs[3].fields[0], "c");
  for (const auto& r : recs) EXPECT_EQ(r.error, "");
  // Another header: refuse rather than mix tables.
  TableSinkOptions other;
  EXPECT_THROW((void)make_csv_sink(path, OpenMode::append, other), Error);
}

// The whole point of CSV: Python's csv module reads back exactly what we wrote.
TEST(CsvSink, PythonCsvModuleReadsBackTrickyContentIdentically) {
  if (std::system("python3 -c 'import csv' >/dev/null 2>&1") != 0) GTEST_SKIP() << "python3 not available";
  TempDir dir;
  const std::vector<std::string> tricky = {
      "comma, inside",  "\"quoted\" and \"\"doubled\"\"", "line one\nline two", "crlf\r\ninside",
      "trailing space ", " leading",                      "emoji 🙂🚀 and é ñ 中文",     "tab\there",
      "",                "=SUM(A1)",                      "back\\slash",                "mixed,\"\n\r\n ok"};
  std::map<std::string, std::vector<std::string>> inputs;
  TableSinkOptions o;
  o.input_columns = {"text"};
  o.input_values = [&inputs](const Outcome& out, const RowContext&) { return inputs[out.custom_id]; };
  const std::string path = dir.file("tricky.csv");
  {
    auto sink = make_csv_sink(path, OpenMode::truncate, o);
    for (std::size_t i = 0; i < tricky.size(); ++i) {
      const std::string id = "id," + std::to_string(i) + "\"";
      inputs[id] = {tricky[i]};
      sink->write(ok_outcome(id, tricky[tricky.size() - 1 - i]), context());
    }
    sink->close();
  }
  const std::string out = dir.file("py.json");
  const std::string cmd = "python3 -c 'import csv,json,sys; "
                          "rows=list(csv.DictReader(open(sys.argv[1], newline=\"\", encoding=\"utf-8\"))); "
                          "json.dump([[r[\"custom_id\"], r[\"text\"], r[\"content\"]] for r in rows], "
                          "open(sys.argv[2], \"w\", encoding=\"utf-8\"))' " +
                          path + " " + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const auto rows = json::parse(slurp(out));
  ASSERT_EQ(rows.size(), tricky.size());
  for (std::size_t i = 0; i < tricky.size(); ++i) {
    EXPECT_EQ(rows[i][0], "id," + std::to_string(i) + "\"");
    EXPECT_EQ(rows[i][1], tricky[i]) << i;
    EXPECT_EQ(rows[i][2], tricky[tricky.size() - 1 - i]) << i;
  }
}

struct Db {
  sqlite3* db = nullptr;
  explicit Db(const std::string& path) { EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK); }
  ~Db() { sqlite3_close(db); }
  std::vector<std::vector<std::string>> query(const std::string& sql) const {
    std::vector<std::vector<std::string>> out;
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const auto* t = sqlite3_column_text(st, i);
        row.emplace_back(t != nullptr ? reinterpret_cast<const char*>(t) : "<null>");
      }
      out.push_back(row);
    }
    sqlite3_finalize(st);
    return out;
  }
};

TEST(SqliteSink, TypedColumnsUpsertAndWal) {
  TempDir dir;
  const std::string path = dir.file("out.sqlite");
  std::map<std::string, std::vector<std::string>> inputs{{"a", {"a", "in"}}};
  {
    auto sink = make_sqlite_sink(path, OpenMode::truncate, options_with(&inputs));
    sink->write(error_outcome("a", ErrorKind::server_error, "boom"), context());
    sink->write(ok_outcome("b", R"({"label":"neg","score":2,"ok":false})"), context());
    sink->flush();
    sink->write(ok_outcome("a", R"({"label":"pos","score":0.75,"ok":true,"status":"s"})"), context());  // re-run
    sink->close();
  }
  Db db(path);
  EXPECT_EQ(db.query("PRAGMA journal_mode")[0][0], "wal");
  const auto rows = db.query(
      "SELECT custom_id, status, text, label, typeof(score), score, typeof(ok), ok, answer_status, prompt_tokens, "
      "typeof(cost_usd), error_kind, status_code, json_extract(response_json, '$.choices[0].finish_reason') "
      "FROM results ORDER BY custom_id");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"a", "ok", "in", "pos", "real", "0.75", "integer", "1", "s", "10",
                                               "real", "<null>", "200", "stop"}));
  EXPECT_EQ(rows[1][3], "neg");
  EXPECT_EQ(rows[1][4], "real");  // REAL affinity: the integer 2 is stored as 2.0
  EXPECT_EQ(rows[1][7], "0");
  EXPECT_EQ(rows[1][2], "<null>");  // no input values for b
}

// Input columns used to be TEXT whatever they held; now each gets the type its values have.
TEST(ColumnTypes, TheTypeEveryValueOfAColumnFits) {
  ColumnTypes t(7);
  for (const auto& row : std::vector<std::vector<std::string>>{
           {"1", "1.5", "02139", "x", "", "-7", "9223372036854775807"},
           {"20", "2", "10", "3", "", "0", "9223372036854775808"},
           {"", "-0.25e3", "11", "4", "", "+1", "1"}}) {
    for (std::size_t i = 0; i < row.size(); ++i) t.see(i, row[i]);
  }
  EXPECT_EQ(t.sql_types(), (std::vector<std::string>{"INTEGER", "REAL", "TEXT", "TEXT", "TEXT", "TEXT", "REAL"}));
}

TEST(SqliteSink, InputColumnsHaveTheTypeOfTheirValuesAndBooleansAreZeroOne) {
  TempDir dir;
  const std::string path = dir.file("out.sqlite");
  std::map<std::string, std::vector<std::string>> inputs{{"a", {"7", "0.5", "02139"}}, {"b", {"", "3", "x"}}};
  TableSinkOptions o = options_with(&inputs);
  o.input_columns = {"n", "price", "zip"};
  o.input_sql_types = {"INTEGER", "REAL", "TEXT"};
  {
    auto sink = make_sqlite_sink(path, OpenMode::truncate, o);
    sink->write(ok_outcome("a", R"({"label":"pos","score":1,"ok":true})"), context());
    sink->write(ok_outcome("b", R"({"label":"neg","score":2,"ok":false})"), context());
    sink->close();
  }
  Db db(path);
  const auto rows = db.query("SELECT typeof(n), n, typeof(price), price, typeof(zip), zip, typeof(ok), ok FROM results ORDER BY custom_id");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"integer", "7", "real", "0.5", "text", "02139", "integer", "1"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"null", "<null>", "real", "3.0", "text", "x", "integer", "0"}));
  const auto decl = db.query("SELECT name, type FROM pragma_table_info('results') WHERE name IN ('n','price','zip') ORDER BY cid");
  EXPECT_EQ(decl, (std::vector<std::vector<std::string>>{{"n", "INTEGER"}, {"price", "REAL"}, {"zip", "TEXT"}}));

  // CSV has no types: the input values are written as read, booleans as true/false.
  auto csv_sink = make_csv_sink(dir.file("out.csv"), OpenMode::truncate, o);
  csv_sink->write(ok_outcome("b", R"({"label":"neg","score":2,"ok":false})"), context());
  csv_sink->close();
  const auto recs = csv::parse(slurp(dir.file("out.csv")));
  ASSERT_EQ(recs.size(), 2u);
  const auto& h = recs[0].fields;
  auto col = [&](const std::string& name) { return static_cast<std::size_t>(std::find(h.begin(), h.end(), name) - h.begin()); };
  EXPECT_EQ(recs[1].fields[col("n")], "");
  EXPECT_EQ(recs[1].fields[col("price")], "3");
  EXPECT_EQ(recs[1].fields[col("ok")], "false");
}

TEST(SqliteSink, ReRunWithMoreColumnsAddsThemAndKeepsRows) {
  TempDir dir;
  const std::string path = dir.file("out.db");
  {
    auto sink = make_sqlite_sink(path, OpenMode::truncate, TableSinkOptions{});
    sink->write(ok_outcome("x", "free text"), context());
    sink->close();
  }
  {
    TableSinkOptions o;
    o.answer_columns = {"label"};
    auto sink = make_sink_for_path(path, OpenMode::append, o);
    sink->write(ok_outcome("y", R"({"label":"L"})"), context());
    sink->close();
  }
  Db db(path);
  const auto rows = db.query("SELECT custom_id, content, label FROM results ORDER BY custom_id");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"x", "free text", "<null>"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"y", "{\"label\":\"L\"}", "L"}));
}

class CountingSink final : public Sink {
 public:
  std::vector<std::string> ids;
  void write(const Outcome& o, const RowContext&) override { ids.push_back(o.custom_id); }
  void flush() override {}
  void close() override {}
};

TEST(FilteredSink, SplitsValidFromFailed) {
  auto good = std::make_unique<CountingSink>();
  auto bad = std::make_unique<CountingSink>();
  auto* g = good.get();
  auto* b = bad.get();
  auto ok_only = make_filtered_sink(std::move(good), true);
  auto errors_only = make_filtered_sink(std::move(bad), false);
  for (const auto& o : {ok_outcome("1", "x"), error_outcome("2", ErrorKind::refusal, "no"), ok_outcome("3", "y")}) {
    ok_only->write(o, context());
    errors_only->write(o, context());
  }
  EXPECT_EQ(g->ids, (std::vector<std::string>{"1", "3"}));
  EXPECT_EQ(b->ids, (std::vector<std::string>{"2"}));
}

}  // namespace
}  // namespace floodgate::store
