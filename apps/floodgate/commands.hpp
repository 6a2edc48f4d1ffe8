#pragma once
// One source file per subcommand. Each defines a register_* function that adds its
// subcommand to the app and, when the subcommand is chosen, runs it and stores the exit
// code in `exit_code`. main.cpp calls every register_* in the order --help lists them.

#include <CLI/CLI.hpp>

#include <cstdint>
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
void add_run_table_options(CLI::App* run_cmd);
void apply_run_table_options(engine::EngineOptions& options, std::uint64_t default_completion_tokens, bool quiet);
// After the run: prints what the results tables got and returns the exit code to use.
int finish_run_table_options(int exit_code, bool quiet, bool json);

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
