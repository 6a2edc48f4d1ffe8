// `floodgate run data.csv --template ... --schema ...` against `floodgate sim`: a table in,
// CSV and SQLite tables out with the schema's columns, every row once; injected schema
// violations caught and re-asked; budgets that stop the run within one request's worst case
// of the limit and resume with a larger one. The simulator (its ledger) is the judge where
// it can be; the results tables are read back with our CSV reader and with sqlite3.
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "floodgate/csv/csv.hpp"
#include "floodgate/schema/structured_output.hpp"
#include "floodgate/tables/table_source.hpp"
#include "support/files.hpp"
#include "support/sim_process.hpp"
#include "support/tables.hpp"

namespace {

namespace fs = std::filesystem;
using floodgate::test::SimProcess;
using floodgate::test::slurp;
using floodgate::test::TempDir;
using floodgate::test::Table;
using floodgate::test::read_csv;
using floodgate::test::query;
using nlohmann::json;

const char* kSchema = R"({"type":"object","properties":{
  "label":{"type":"string","enum":["positive","negative","neutral"]},
  "score":{"type":"integer","minimum":0,"maximum":10},
  "keywords":{"type":"array","items":{"type":"string"}}},
  "required":["label","score","keywords"]})";

void write_file(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// A CSV of `n` rows with commas, quotes, line breaks and UTF-8 in its text column.
std::string make_table(int n) {
  std::string out = "id,text,stars\r\n";
  for (int i = 1; i <= n; ++i) {
    floodgate::csv::append_record(out, std::vector<std::string>{
                                           "r" + std::to_string(i),
                                           "Review " + std::to_string(i) + ": \"great\", fast\nsecond line é 🙂",
                                           std::to_string(i % 5 + 1)});
  }
  return out;
}

// Runs `floodgate COMMAND ARGS` with the sim's key and URL, stdout and stderr to `log`;
// returns the exit code.
int run_command(const SimProcess& sim, const std::string& command, const std::vector<std::string>& args,
                const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::FILE* f = std::freopen(log.c_str(), "w", stderr);
    (void)f;
    ::dup2(2, 1);
    ::setenv("OPENAI_API_KEY", sim.api_key().c_str(), 1);
    ::setenv("OPENAI_BASE_URL", sim.base_url().c_str(), 1);
    std::vector<std::string> all = {FLOODGATE_BIN, command};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(FLOODGATE_BIN, argv.data());
    ::_exit(127);
  }
  int status = 0;
  for (int i = 0; i < 120 * 50; ++i) {  // at most 120 s
    if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    ::usleep(20'000);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

// Runs `floodgate run ARGS`.
int run_floodgate(const SimProcess& sim, const std::vector<std::string>& args, const std::string& log) {
  return run_command(sim, "run", args, log);
}

class TablesRun : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir.file("data.csv"), make_table(500));
    write_file(dir.file("prompt.txt"), "Rate this review ({stars} stars) as JSON {{label, score}}:\n{text}\n");
    write_file(dir.file("system.txt"), "You are a careful annotator.");
    write_file(dir.file("schema.json"), kSchema);
  }
  std::vector<std::string> table_args(const std::string& out) const {
    return {dir.file("data.csv"), "--template", dir.file("prompt.txt"), "--system", dir.file("system.txt"),
            "--model", "gpt-4o-mini", "--schema", dir.file("schema.json"), "--id-column", "id",
            "--max-completion-tokens", "64", "-q", "-o", out};
  }
  TempDir dir{"tables"};
};

TEST_F(TablesRun, FiveHundredRowsToCsvAndSqliteWithTheSchemasColumnsEveryRowOnce) {
  SimProcess sim;
  ASSERT_EQ(run_floodgate(sim, table_args(dir.file("out.csv")), dir.file("csv.log")), 0) << slurp(dir.file("csv.log"));
  const Table t = read_csv(dir.file("out.csv"));
  for (const char* col : {"custom_id", "status", "id", "text", "stars", "label", "score", "keywords", "content",
                          "prompt_tokens", "cost_usd", "model", "called_at", "error_kind"}) {
    EXPECT_NE(std::find(t.header.begin(), t.header.end(), col), t.header.end()) << col;
  }
  ASSERT_EQ(t.rows.size(), 500u);
  std::set<std::string> ids;
  const floodgate::schema::Validator validator(kSchema);
  for (const auto& r : t.rows) {
    EXPECT_TRUE(ids.insert(r.at("custom_id")).second) << "duplicate " << r.at("custom_id");
    EXPECT_EQ(r.at("status"), "ok") << r.at("custom_id") << ": " << r.at("error_message");
    EXPECT_EQ(r.at("id"), r.at("custom_id"));
    EXPECT_EQ(r.at("text").substr(0, 7), "Review ");
    EXPECT_NE(r.at("text").find("\"great\", fast\nsecond line é 🙂"), std::string::npos);
    EXPECT_TRUE(r.at("label") == "positive" || r.at("label") == "negative" || r.at("label") == "neutral") << r.at("label");
    EXPECT_EQ(validator.validate(r.at("content")), "");
    EXPECT_FALSE(r.at("cost_usd").empty());
    EXPECT_GT(std::stod(r.at("cost_usd")), 0.0);
  }
  EXPECT_EQ(ids.size(), 500u);

  ASSERT_EQ(run_floodgate(sim, table_args(dir.file("out.sqlite")), dir.file("sqlite.log")), 0)
      << slurp(dir.file("sqlite.log"));
  const auto counts = query(dir.file("out.sqlite"),
                            "SELECT count(*), count(DISTINCT custom_id), sum(status = 'ok'), sum(typeof(score) = "
                            "'integer'), sum(label IN ('positive','negative','neutral')), sum(response_json IS NOT NULL), "
                            "sum(typeof(stars) = 'integer'), sum(typeof(id) = 'text') FROM results");
  ASSERT_EQ(counts.size(), 1u);
  // The input column of numbers is INTEGER (it was TEXT, like every input column).
  EXPECT_EQ(counts[0], (std::vector<std::string>{"500", "500", "500", "500", "500", "500", "500", "500"}));
}

TEST_F(TablesRun, InjectedSchemaViolationsAreCaughtAndReAsked) {
  SimProcess sim({"--invalid-content-rate", "0.3", "--seed", "7"});
  auto args = table_args(dir.file("out.csv"));
  args.erase(std::find(args.begin(), args.end(), "-q"));  // keep the closing cost line
  args.insert(args.end(), {"--retry-invalid", "4", "--errors", dir.file("failed.csv")});
  const int rc = run_floodgate(sim, args, dir.file("run.log"));
  ASSERT_TRUE(rc == 0 || rc == 1) << rc << "\n" << slurp(dir.file("run.log"));
  const Table ok = read_csv(dir.file("out.csv"));
  const Table failed = read_csv(dir.file("failed.csv"));
  EXPECT_EQ(ok.rows.size() + failed.rows.size(), 500u);
  std::set<std::string> ids;
  const floodgate::schema::Validator validator(kSchema);
  std::uint64_t attempts = 0;
  for (const auto& r : ok.rows) {
    EXPECT_TRUE(ids.insert(r.at("custom_id")).second);
    EXPECT_EQ(r.at("status"), "ok");
    EXPECT_EQ(validator.validate(r.at("content")), "") << r.at("custom_id");  // nothing invalid slipped through
    attempts += std::stoull(r.at("attempts"));
  }
  for (const auto& r : failed.rows) {
    EXPECT_TRUE(ids.insert(r.at("custom_id")).second);
    EXPECT_EQ(r.at("error_kind"), "schema_violation") << r.at("error_message");
    EXPECT_FALSE(r.at("error_message").empty());
    EXPECT_NE(validator.validate(r.at("content")), "");  // what was caught is really invalid
    attempts += std::stoull(r.at("attempts"));
  }
  double final_rows_usd = 0;
  for (const auto* t : {&ok, &failed}) {
    for (const auto& r : t->rows) final_rows_usd += std::stod(r.at("cost_usd"));
  }
  // With 30% invalid answers about 150 first answers are invalid; re-asking 4 times leaves
  // about 500 * 0.3^5 ≈ 1 failure. Without re-asking there would be ~150.
  EXPECT_LT(failed.rows.size(), 15u);
  EXPECT_GT(attempts, 500u + 100u);
  // The sim saw every attempt.
  std::uint64_t chat_200 = 0;
  for (const auto& e : sim.ledger()) {
    if (e.value("path", "") == "/v1/chat/completions" && e.value("status", 0) == 200) ++chat_200;
  }
  EXPECT_EQ(chat_200, attempts);
  // Re-asked answers are paid for: the closing cost line counts every answered attempt, not
  // only each row's last one (rows' own cost_usd columns hold their final attempt).
  const std::string log = slurp(dir.file("run.log"));
  const auto at = log.find("cost: $");
  ASSERT_NE(at, std::string::npos) << log;
  const double run_usd = std::stod(log.substr(at + 7));
  const double ratio = static_cast<double>(attempts) / 500.0;
  EXPECT_GT(run_usd, final_rows_usd * (1.0 + (ratio - 1.0) / 2)) << "attempts " << attempts << ", rows $" << final_rows_usd;
  EXPECT_LT(run_usd, final_rows_usd * ratio * 1.5) << "attempts " << attempts << ", rows $" << final_rows_usd;
}

TEST_F(TablesRun, MaxTokensBudgetStopsWithinOneWorstCaseAndResumes) {
  SimProcess sim;
  const std::uint64_t limit = 20'000;
  auto args = table_args(dir.file("out.csv"));
  args.insert(args.end(), {"--max-tokens", std::to_string(limit), "--max-in-flight", "8"});
  const int rc = run_floodgate(sim, args, dir.file("budget.log"));
  ASSERT_EQ(rc, 4) << slurp(dir.file("budget.log"));
  // The judge: the usage the simulator reported for each call (its ledger's tokens_charged
  // is the rate-limit reservation, prompt + max_tokens, not usage), and its count of calls.
  std::uint64_t requests = 0;
  for (const auto& e : sim.ledger()) {
    if (e.value("path", "") == "/v1/chat/completions" && e.value("status", 0) == 200) ++requests;
  }
  const Table part = read_csv(dir.file("out.csv"));
  EXPECT_EQ(part.rows.size(), requests);
  std::uint64_t used = 0;
  for (const auto& r : part.rows) used += std::stoull(r.at("total_tokens"));
  EXPECT_LE(used, limit);
  EXPECT_LT(requests, 500u);
  // A request's worst case is its prompt plus the 64-token allowance; prompts here are under
  // 200 tokens, so one worst case is under 264 tokens.
  EXPECT_GT(used + 264, limit) << "stopped too early: " << used << " of " << limit;

  // Resume with a larger budget: the rest is sent, nothing twice.
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--max-tokens") args[i + 1] = "100000000";
  }
  ASSERT_EQ(run_floodgate(sim, args, dir.file("resume.log")), 0) << slurp(dir.file("resume.log"));
  const Table all = read_csv(dir.file("out.csv"));
  ASSERT_EQ(all.rows.size(), 500u);
  std::set<std::string> ids;
  for (const auto& r : all.rows) EXPECT_TRUE(ids.insert(r.at("custom_id")).second) << r.at("custom_id");
  std::uint64_t total_requests = 0;
  for (const auto& e : sim.ledger()) {
    if (e.value("path", "") == "/v1/chat/completions" && e.value("status", 0) == 200) ++total_requests;
  }
  EXPECT_EQ(total_requests, 500u);
}

TEST_F(TablesRun, MaxCostBudgetNeverPassesTheLimit) {
  SimProcess sim;
  // Round prices: $1 per 1,000 prompt tokens, $10 per 1,000 completion tokens.
  write_file(dir.file("prices.json"),
             R"({"as_of":"test","models":{"gpt-4o-mini":{"input":1000,"cached_input":1000,"output":10000}}})");
  const double limit = 5.0;
  auto args = table_args(dir.file("out.sqlite"));
  args.insert(args.end(), {"--prices", dir.file("prices.json"), "--max-cost", "5"});
  ASSERT_EQ(run_floodgate(sim, args, dir.file("cost.log")), 4) << slurp(dir.file("cost.log"));
  const auto r = query(dir.file("out.sqlite"), "SELECT count(*), sum(cost_usd), max(prompt_tokens) FROM results");
  ASSERT_EQ(r.size(), 1u);
  const double spent = std::stod(r[0][1]);
  const double worst = (std::stod(r[0][2]) * 1.1 * 1000 + 64 * 10000) / 1e6;  // prompt (+10% for the estimate) + allowance
  EXPECT_LE(spent, limit + 1e-9);
  EXPECT_GT(spent, limit - worst) << "spent " << spent << ", one worst case " << worst;
  EXPECT_LT(std::stoi(r[0][0]), 500);
}

TEST_F(TablesRun, ErrorRowsNameRowAndColumnInEveryFormatAndAreNotRepeatedOnResume) {
  SimProcess sim;
  write_file(dir.file("bad.csv"), "id,text,stars\r\nr1,fine,3\r\nr2\r\nr3,\"ok, too\",4\r\nr4,x,1,extra\r\n");
  auto args = table_args(dir.file("out.jsonl"));
  args[0] = dir.file("bad.csv");
  for (int pass = 0; pass < 2; ++pass) {  // the second run resumes: nothing new, nothing twice
    ASSERT_EQ(run_floodgate(sim, args, dir.file("bad.log")), 1) << slurp(dir.file("bad.log"));
    std::istringstream lines(slurp(dir.file("out.jsonl")));
    std::string line;
    std::map<std::string, json> by_id;
    while (std::getline(lines, line)) {
      const auto j = json::parse(line);
      EXPECT_TRUE(by_id.emplace(j["custom_id"].get<std::string>(), j).second) << line;
    }
    ASSERT_EQ(by_id.size(), 4u);
    EXPECT_TRUE(by_id["r1"]["error"].is_null());
    EXPECT_TRUE(by_id["r3"]["error"].is_null());
    EXPECT_EQ(by_id["r2"]["error"]["code"], "invalid_input");
    EXPECT_EQ(by_id["r2"]["error"]["message"].get<std::string>(), "row 2: column \"stars\" is missing");
    EXPECT_EQ(by_id["r4"]["error"]["code"], "invalid_input");
    EXPECT_NE(by_id["r4"]["error"]["message"].get<std::string>().find("row 4 (line 5): 4 fields"), std::string::npos);
  }
}

TEST_F(TablesRun, DailyBudgetCountsEarlierRunsThroughTheLedger) {
  SimProcess sim;
  write_file(dir.file("prices.json"),
             R"({"as_of":"test","models":{"gpt-4o-mini":{"input":1000,"cached_input":1000,"output":10000}}})");
  write_file(dir.file("small.csv"), make_table(40));
  const std::string ledger = dir.file("spend.sqlite");
  auto args_for = [&](const std::string& out, const std::string& budget) {
    auto a = table_args(out);
    a[0] = dir.file("small.csv");
    a.insert(a.end(), {"--prices", dir.file("prices.json"), "--daily-budget", budget, "--budget-ledger", ledger});
    return a;
  };
  ASSERT_EQ(run_floodgate(sim, args_for(dir.file("first.sqlite"), "1000"), dir.file("first.log")), 0)
      << slurp(dir.file("first.log"));
  const double first = std::stod(query(dir.file("first.sqlite"), "SELECT sum(cost_usd) FROM results")[0][0]);
  ASSERT_GT(first, 0.0);
  // Today's budget leaves room for a few more requests only.
  const double budget = first + 3.0;
  ASSERT_EQ(run_floodgate(sim, args_for(dir.file("second.sqlite"), std::to_string(budget)), dir.file("second.log")), 4)
      << slurp(dir.file("second.log"));
  const auto r = query(dir.file("second.sqlite"), "SELECT count(*), sum(cost_usd) FROM results");
  const double second = std::stod(r[0][1]);
  EXPECT_LE(first + second, budget + 1e-9);
  EXPECT_GT(std::stoi(r[0][0]), 0);
  EXPECT_LT(std::stoi(r[0][0]), 40);
  const auto ledger_rows = query(ledger, "SELECT sum(cost_usd) FROM daily_spend");
  EXPECT_NEAR(std::stod(ledger_rows[0][0]), first + second, 1e-6);
}

TEST_F(TablesRun, PerLineResponseFormatIsValidatedWithoutSchemaFlag) {
  SimProcess sim({"--invalid-content-rate", "0.3", "--seed", "11"});
  const std::string rf = floodgate::schema::response_format(kSchema, "rating");
  {
    std::ofstream in(dir.file("in.jsonl"));
    for (int i = 0; i < 200; ++i) {
      json line = {{"custom_id", "q" + std::to_string(i)},
                   {"method", "POST"},
                   {"url", "/v1/chat/completions"},
                   {"body",
                    {{"model", "gpt-4o-mini"},
                     {"messages", {{{"role", "user"}, {"content", "Rate item " + std::to_string(i)}}}},
                     {"max_tokens", 64},
                     {"response_format", json::parse(rf)}}}};
      in << line.dump() << "\n";
    }
  }
  const int rc = run_floodgate(sim, {dir.file("in.jsonl"), "-q", "-o", dir.file("out.jsonl")}, dir.file("run.log"));
  ASSERT_EQ(rc, 1) << slurp(dir.file("run.log"));
  const floodgate::schema::Validator validator(kSchema);
  std::istringstream lines(slurp(dir.file("out.jsonl")));
  std::string line;
  int ok = 0;
  int violations = 0;
  while (std::getline(lines, line)) {
    const auto j = json::parse(line);
    const std::string content = j["response"]["body"]["choices"][0]["message"]["content"].get<std::string>();
    if (j["error"].is_null()) {
      ++ok;
      EXPECT_EQ(validator.validate(content), "");
    } else {
      ++violations;
      EXPECT_EQ(j["error"]["code"], "schema_violation") << line;
      EXPECT_NE(validator.validate(content), "");
    }
  }
  EXPECT_EQ(ok + violations, 200);
  EXPECT_GT(violations, 30);  // ~60 expected at a 30% rate
  EXPECT_LT(violations, 100);
}

}  // namespace

namespace {

// A pydantic-style schema: an optional field (not in "required"), a nested object without
// additionalProperties. OpenAI's strict mode rejects it as written ("'required' is required to
// be supplied and to be an array including every key in properties"), and so does the
// simulator now: floodgate must send its strict form, and accept null for the optional field.
TEST_F(TablesRun, SchemaWithAnOptionalFieldIsSentInStrictFormAndNullAnswersAreValid) {
  SimProcess sim;
  write_file(dir.file("small.csv"), make_table(40));
  write_file(dir.file("optional.json"), R"({"title":"Review","type":"object","properties":{
    "label":{"type":"string","enum":["positive","negative","neutral"]},
    "note":{"type":"string"},
    "meta":{"type":"object","properties":{"lang":{"type":"string"}},"required":["lang"]}},
    "required":["label","meta"]})");
  auto args = table_args(dir.file("out.sqlite"));
  args[0] = dir.file("small.csv");
  *(std::find(args.begin(), args.end(), "--schema") + 1) = dir.file("optional.json");
  ASSERT_EQ(run_floodgate(sim, args, dir.file("run.log")), 0) << slurp(dir.file("run.log"));
  std::uint64_t chat_200 = 0;
  for (const auto& e : sim.ledger()) {
    EXPECT_EQ(e.value("status", 0), 200) << e.dump();
    chat_200 += e.value("status", 0) == 200 ? 1 : 0;
  }
  EXPECT_EQ(chat_200, 40u);
  const auto r = query(dir.file("out.sqlite"),
                       "SELECT count(*), sum(status = 'ok'), sum(note IS NULL), sum(json_extract(content, '$.note') IS NULL) "
                       "FROM results");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0][0], "40");
  EXPECT_EQ(r[0][1], "40");
  EXPECT_GT(std::stoi(r[0][2]), 0);  // some answers left the optional field null, and were valid
  EXPECT_LT(std::stoi(r[0][2]), 40);
  EXPECT_EQ(r[0][2], r[0][3]);

  // What strict mode cannot take is refused before anything is sent, naming rule and path.
  write_file(dir.file("open.json"), R"({"type":"object","properties":{"tags":{"type":"object","additionalProperties":true}}})");
  *(std::find(args.begin(), args.end(), "--schema") + 1) = dir.file("open.json");
  args.back() = dir.file("open.sqlite");
  EXPECT_EQ(run_floodgate(sim, args, dir.file("open.log")), 2);
  const std::string log = slurp(dir.file("open.log"));
  EXPECT_NE(log.find("open.json: /properties/tags: strict mode needs \"additionalProperties\": false"), std::string::npos) << log;
  EXPECT_EQ(sim.ledger().size(), 40u);

  // A schema file with a syntax error names the file, the line and the column.
  write_file(dir.file("broken.json"), "{\n  \"type\": \"object\",\n  \"properties\": {,}\n}\n");
  *(std::find(args.begin(), args.end(), "--schema") + 1) = dir.file("broken.json");
  EXPECT_EQ(run_floodgate(sim, args, dir.file("broken.log")), 2);
  const std::string broken = slurp(dir.file("broken.log"));
  EXPECT_NE(broken.find("broken.json: the schema is not valid JSON: parse error at line 3, column 18"), std::string::npos) << broken;
}

// `floodgate estimate` reads the table as `run` does: the same numbers as for a JSONL of the
// requests `run` sends for it (made here by the source `run` reads, with run's options).
TEST_F(TablesRun, EstimateReadsATableWithTheTemplateAsRunDoes) {
  SimProcess sim;
  write_file(dir.file("small.csv"), make_table(30) + "r31,\"never closed,2\r\n");
  auto args = table_args(dir.file("out.csv"));
  args[0] = dir.file("small.csv");
  ASSERT_EQ(run_floodgate(sim, args, dir.file("run.log")), 1) << slurp(dir.file("run.log"));  // one error row
  floodgate::tables::RowRequestOptions ro;
  ro.model = "gpt-4o-mini";
  ro.template_text = "Rate this review ({stars} stars) as JSON {{label, score}}:\n{text}";  // the file without its last newline
  ro.system_prompt = "You are a careful annotator.";
  ro.id_column = "id";
  ro.response_format_json = floodgate::schema::response_format(floodgate::schema::make_strict(kSchema), "answer");
  ro.max_completion_tokens = 64;
  floodgate::tables::TableSource requests(dir.file("small.csv"), ro, nullptr);
  std::string lines;
  floodgate::engine::SourceItem item;
  while (requests.next(item) == floodgate::engine::SourceStatus::item) lines += floodgate::tables::batch_line(*item.parsed.request) + "\n";
  write_file(dir.file("requests.jsonl"), lines);
  ASSERT_EQ(run_command(sim, "estimate", {dir.file("requests.jsonl"), "--json"}, dir.file("jsonl.txt")), 0)
      << slurp(dir.file("jsonl.txt"));
  std::vector<std::string> est = {dir.file("small.csv"), "--json"};
  for (const char* flag : {"--template", "--system", "--model", "--schema", "--max-completion-tokens"}) {
    const auto at = std::find(args.begin(), args.end(), flag);
    est.insert(est.end(), {at[0], at[1]});
  }
  ASSERT_EQ(run_command(sim, "estimate", est, dir.file("table.txt")), 0) << slurp(dir.file("table.txt"));
  const json from_jsonl = json::parse(slurp(dir.file("jsonl.txt")));
  const json from_table = json::parse(slurp(dir.file("table.txt")));
  EXPECT_EQ(from_table["requests"], 30);
  EXPECT_EQ(from_table["error_rows"], 1);
  for (const char* k : {"requests", "prompt_tokens", "completion_tokens_max", "total_tokens_max", "cost_usd_max"}) {
    EXPECT_EQ(from_table[k], from_jsonl[k]) << k;
  }
  EXPECT_EQ(from_table["completion_tokens_max"], 30 * 64);
  // Without --template a table is refused with the flag to add.
  EXPECT_EQ(run_command(sim, "estimate", {dir.file("small.csv")}, dir.file("no_template.txt")), 2);
  EXPECT_NE(slurp(dir.file("no_template.txt")).find("needs --template"), std::string::npos);
}

// Messages: an unknown flag of `run` points to `floodgate run --help`; with --log-format json
// every line on stderr is JSON (the cost line was text); a table run prints one summary (a
// second "results:" tally disagreed with the engine's).
TEST_F(TablesRun, MessagesOfATableRunReadRight) {
  SimProcess sim;
  EXPECT_EQ(run_floodgate(sim, {"--no-such-flag", dir.file("data.csv"), "-o", dir.file("x.csv")}, dir.file("flag.log")), 2);
  EXPECT_NE(slurp(dir.file("flag.log")).find("Run 'floodgate run --help' for usage."), std::string::npos)
      << slurp(dir.file("flag.log"));

  write_file(dir.file("bad.csv"), "id,text,stars\r\nr1,fine,3\r\nr2\r\nr3,\"ok, too\",4\r\nr4,x,1,extra\r\n");
  auto args = table_args(dir.file("out.csv"));
  args[0] = dir.file("bad.csv");
  args.erase(std::find(args.begin(), args.end(), "-q"));
  auto json_args = args;
  json_args.back() = dir.file("json.csv");
  json_args.insert(json_args.end(), {"--log-format", "json"});
  ASSERT_EQ(run_floodgate(sim, json_args, dir.file("json.log")), 1) << slurp(dir.file("json.log"));
  std::istringstream lines(slurp(dir.file("json.log")));
  std::string line;
  bool cost = false;
  while (std::getline(lines, line)) {
    const auto j = json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
    if (!j.is_discarded() && j.value("event", "") == "cost") cost = j.contains("cost_usd");
  }
  EXPECT_TRUE(cost) << slurp(dir.file("json.log"));

  ASSERT_EQ(run_floodgate(sim, args, dir.file("text.log")), 1) << slurp(dir.file("text.log"));
  const std::string text = slurp(dir.file("text.log"));
  EXPECT_EQ(text.find("results:"), std::string::npos) << text;
  EXPECT_NE(text.find("  table rows    2 could not become requests"), std::string::npos) << text;
}

}  // namespace
