#pragma once
// One source file per subcommand. Each defines a register_* function that adds its
// subcommand to the app and, when the subcommand is chosen, runs it and stores the exit
// code in `exit_code`. main.cpp calls every register_* in the order --help lists them.

#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace floodgate::engine {
struct EngineOptions;
}  // namespace floodgate::engine

namespace floodgate::cli {

// (subcommands are added here, one line each)
void register_run(CLI::App& app, int& exit_code);
void register_transcribe(CLI::App& app, int& exit_code);
void register_sim(CLI::App& app, int& exit_code);
void register_serve(CLI::App& app, int& exit_code);
void register_tokens(CLI::App& app, int& exit_code);
void register_estimate(CLI::App& app, int& exit_code);
void register_batch(CLI::App& app, int& exit_code);

// `run` flags for tables, structured outputs, cost and budgets (run_tables_options.cpp):
// cmd_run.cpp calls add_* when it builds `run`, and apply_* just before starting the engine.
struct TableFlags {
  std::string template_path;
  std::string model;
  std::string system_path;
  std::string schema_path;
  std::string schema_name = "answer";
  std::string id_column;
  std::uint32_t retry_invalid = 0;
  std::string prices_path;
  double max_cost_usd = 0;
  std::uint64_t max_tokens = 0;
  double daily_budget_usd = 0;
  std::string budget_ledger;
  std::string errors_path;
  std::uint64_t max_completion_tokens = 0;
  CLI::Option* max_cost_opt = nullptr;
  CLI::Option* max_tokens_opt = nullptr;
  CLI::Option* daily_opt = nullptr;
};
// What the table options keep for the end of the run (counts of the results rows, the
// table's rows); apply_* makes it, finish_* reads it after the engine returned.
struct TableRun;
void add_run_table_options(CLI::App* run_cmd, TableFlags& flags);
[[nodiscard]] std::shared_ptr<TableRun> apply_run_table_options(const TableFlags& flags, engine::EngineOptions& options,
                                                                std::uint64_t default_completion_tokens, bool quiet);
// After the run, before its summary: what the table's rows became ("table: R rows, N
// requests, E error rows"; the table is read while the engine runs, so only now known).
void report_table_read(const TableRun& run, bool quiet, bool json);
// After the run's summary: prints the summary's line of the table's error rows and returns
// the exit code to use.
int finish_run_table_options(const TableRun& run, int exit_code, bool quiet, bool json);

// Shared by `run` and `estimate` (run_tables_options.cpp): a prompt file's text without the
// editor's trailing newline, and a --schema file in the strict form sent to the API (errors
// name the file, the parser's line and column, or the strict-mode rule and JSON pointer).
std::string read_text_file(const std::string& path, const char* what);
std::string read_schema_file(const std::string& path);

// A --schema file as the results tables use it (`run`, `batch fetch`): the strict schema
// answers are checked against, and its top-level properties as answer columns with their
// SQLite types. Empty (no schema, no columns) for an empty path.
struct ResultSchema {
  std::optional<std::string> schema_json;
  std::vector<std::string> answer_columns;
  std::vector<std::string> answer_sql_types;
};
ResultSchema read_result_schema(const std::string& schema_path);

}  // namespace floodgate::cli
