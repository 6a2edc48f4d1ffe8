// The `run` flags for tables, structured outputs, cost and budgets (issue 6):
//   floodgate run data.csv --template prompt.txt --model M [--system system.txt]
//       [--schema schema.json] [--retry-invalid N] [--id-column C] [--prices FILE]
//       [--max-cost USD] [--max-tokens N] [--daily-budget USD] [--errors FILE] -o OUT.{jsonl,csv,sqlite}
// add_run_table_options() adds them to the `run` subcommand; apply_run_table_options() turns
// them into engine options just before the engine starts:
//   - a table input (.csv/.tsv, or JSONL rows with --template) becomes the engine's source
//     (tables::TableSource: rows made into requests in memory, each carrying its values to
//     the results tables); error rows go straight to the results tables;
//   - OUT.csv / OUT.sqlite become extra sinks; the engine's own JSONL goes to OUT.raw.jsonl;
//   - answers are checked against the schema (and per-line response_format) by the engine;
//   - budgets admit a request only when its worst-case cost still fits.

#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/core/exit_codes.hpp"
#include "floodgate/cost/budget_gate.hpp"
#include "floodgate/cost/prices.hpp"
#include "floodgate/engine/engine.hpp"
#include "floodgate/schema/structured_output.hpp"
#include "floodgate/store/journal.hpp"
#include "floodgate/store/table_sink.hpp"
#include "floodgate/tables/row_source.hpp"
#include "floodgate/tables/table_source.hpp"

namespace floodgate::cli {
namespace {

bool file_exists(const std::string& path) {
  std::ifstream in(path);
  return static_cast<bool>(in);
}

// SQLite column type of a JSON Schema "type".
std::string sql_type_of(const std::string& json_type) {
  if (json_type == "integer" || json_type == "boolean") return "INTEGER";
  if (json_type == "number") return "REAL";
  if (json_type == "string") return "TEXT";
  return "";
}

// The SQLite type of each input column, from one read of the whole table (a stdin table
// cannot be read twice: its columns stay TEXT).
std::vector<std::string> input_column_types(const std::string& path) {
  auto rows = tables::open_rows(path);
  store::ColumnTypes types(rows->columns().size());
  tables::Row row;
  while (rows->next(row)) {
    if (!row.error.empty()) continue;
    for (std::size_t i = 0; i < row.values.size(); ++i) types.see(i, row.values[i]);
  }
  return types.sql_types();
}

// What the results tables received, for the exit code: the engine checks the answers
// (check_answer), so a schema violation or a refusal is a failed row the engine counted too.
struct TableCounts {
  std::uint64_t ok = 0;
  std::uint64_t schema_violations = 0;
  std::uint64_t refusals = 0;
  std::uint64_t other_errors = 0;
  bool active = false;
};

// A sink decorator that counts the rows it passes on (one of the results sinks counts).
class CountingSink final : public store::Sink {
 public:
  CountingSink(std::unique_ptr<store::Sink> inner, std::shared_ptr<TableCounts> counts) : inner_(std::move(inner)), counts_(std::move(counts)) {}
  void write(const Outcome& outcome, const store::RowContext& context) override {
    if (count_) {
      if (outcome.ok()) {
        ++counts_->ok;
      } else if (outcome.error == ErrorKind::refusal) {
        ++counts_->refusals;
      } else if (outcome.error == ErrorKind::schema_violation) {
        ++counts_->schema_violations;
      } else if (outcome.error == ErrorKind::invalid_input) {
        // table error rows are counted by the table's source; the engine's own
        // invalid_input lines are in its summary and exit code
      } else {
        ++counts_->other_errors;
      }
    }
    inner_->write(outcome, context);
  }
  void flush() override { inner_->flush(); }
  void close() override { inner_->close(); }
  void forget(const std::vector<std::string>& keys) override { inner_->forget(keys); }
  void set_counting(bool on) { count_ = on; }

 private:
  std::unique_ptr<store::Sink> inner_;
  std::shared_ptr<TableCounts> counts_;
  bool count_ = false;
};

class NullSink final : public store::Sink {
 public:
  void write(const Outcome&, const store::RowContext&) override {}
  void flush() override {}
  void close() override {}
};

// Adds up the cost and usage of every attempt that got an answer (a re-asked invalid answer
// is paid for too), fed by the engine's settle hook; printed once when the run closes.
class AttemptCost {
 public:
  explicit AttemptCost(const cost::PriceTable& prices) : prices_(prices) {}
  void add(const std::string& model, const Usage& usage) {
    if (usage.total_tokens == 0 && usage.prompt_tokens == 0) return;
    if (prices_.find(model) == nullptr) {
      unpriced_ = true;
      return;
    }
    total_usd_ += cost::actual_charge(prices_, model, usage).cost_usd;
    cached_ += usage.cached_tokens;
    reasoning_ += usage.reasoning_tokens;
  }
  void print(bool json) const {
    if (json) {
      std::fprintf(stderr,
                   "{\"event\":\"cost\",\"cost_usd\":%.6f,\"prices_as_of\":\"%s\",\"unpriced_models\":%s,"
                   "\"cached_tokens\":%llu,\"reasoning_tokens\":%llu}\n",
                   total_usd_, prices_.as_of().c_str(), unpriced_ ? "true" : "false",
                   static_cast<unsigned long long>(cached_), static_cast<unsigned long long>(reasoning_));
      return;
    }
    std::fprintf(stderr, "cost: $%.4f (prices as of %s)%s; cached prompt tokens %llu, reasoning tokens %llu\n",
                 total_usd_, prices_.as_of().empty() ? "?" : prices_.as_of().c_str(),
                 unpriced_ ? ", some models unpriced" : "", static_cast<unsigned long long>(cached_),
                 static_cast<unsigned long long>(reasoning_));
  }

 private:
  const cost::PriceTable& prices_;
  double total_usd_ = 0;
  std::uint64_t cached_ = 0;
  std::uint64_t reasoning_ = 0;
  bool unpriced_ = false;
};

// Prints the attempts' cost when the sinks close (after the last outcome).
class CostLine final : public store::Sink {
 public:
  CostLine(std::shared_ptr<const AttemptCost> tally, bool quiet, bool json)
      : tally_(std::move(tally)), quiet_(quiet), json_(json) {}
  void write(const Outcome&, const store::RowContext&) override {}
  void flush() override {}
  void close() override {
    if (!quiet_) tally_->print(json_);
  }

 private:
  std::shared_ptr<const AttemptCost> tally_;
  bool quiet_;
  bool json_;
};

}  // namespace

std::string read_text_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(std::string("cannot read the ") + what + " file " + path);
  std::ostringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  // A trailing newline at the end of a prompt file is an editor's, not the user's.
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

std::string read_schema_file(const std::string& path) {
  const std::string text = read_text_file(path, "schema");
  try {
    return schema::make_strict(text);
  } catch (const Error& e) {
    throw Error("--schema " + path + ": " + e.what());
  }
}

ResultSchema read_result_schema(const std::string& path) {
  ResultSchema out;
  if (path.empty()) return out;
  // The strict form is what the API is asked for, so answers are checked against it too
  // (an optional field comes back as null).
  out.schema_json = read_schema_file(path);
  out.answer_columns = schema::top_level_properties(*out.schema_json);
  for (const auto& t : schema::top_level_property_types(*out.schema_json)) out.answer_sql_types.push_back(sql_type_of(t));
  return out;
}

void add_run_table_options(CLI::App* cmd, TableFlags& f) {
  const char* group = "Tables, structured outputs, cost and budgets";
  cmd->add_option("--template", f.template_path,
                  "prompt template file with {column} placeholders ({{ and }} for braces): each row of a\n"
                  "CSV/TSV input (or JSONL rows of fields) becomes one chat request")
      ->group(group);
  cmd->add_option("--model", f.model, "model of the requests made from a table")->group(group);
  cmd->add_option("--system", f.system_path, "system prompt file for requests made from a table")->group(group);
  cmd->add_option("--id-column", f.id_column, "input column whose value is the custom_id (default: the row number)")
      ->group(group);
  cmd->add_option("--schema", f.schema_path,
                  "JSON Schema of the answer: sent as response_format json_schema in strict form (every property\n"
                  "required, the optional ones nullable; refused with the rule and path if it cannot be) and every answer\n"
                  "is validated; a violation is an error row of kind schema_violation")
      ->group(group);
  cmd->add_option("--schema-name", f.schema_name, "name of the schema in response_format")->capture_default_str()->group(group);
  cmd->add_option("--retry-invalid", f.retry_invalid,
                                "re-ask up to N times when an answer violates the schema")
                    ->group(group);
  cmd->add_option("--max-completion-tokens", f.max_completion_tokens,
                  "max_completion_tokens of requests made from a table (bounds their worst-case cost)")
      ->group(group);
  cmd->add_option("--prices", f.prices_path, "price table (default: the built-in data/prices.json)")->group(group);
  f.max_cost_opt = cmd->add_option("--max-cost", f.max_cost_usd,
                                   "stop admitting when this run's worst-case cost would pass USD (exit 4, resumable)")
                       ->group(group);
  f.max_tokens_opt = cmd->add_option("--max-tokens", f.max_tokens,
                                     "stop admitting when this run's worst-case tokens would pass N (exit 4)")
                         ->group(group);
  f.daily_opt = cmd->add_option("--daily-budget", f.daily_budget_usd,
                                "stop admitting when today's (UTC) spend, all runs, would pass USD (exit 4)")
                    ->group(group);
  cmd->add_option("--budget-ledger", f.budget_ledger,
                  "SQLite file keeping the daily spend across runs (default: the journal)")
      ->group(group);
  cmd->add_option("--errors", f.errors_path, "write failed rows to FILE (.jsonl/.csv/.sqlite) apart from valid ones")
      ->group(group);
}

struct TableRun {
  cost::PriceTable prices;
  std::shared_ptr<TableCounts> counts = std::make_shared<TableCounts>();
  std::shared_ptr<const tables::TableStats> table;  // null: the input is not a table
};

std::shared_ptr<TableRun> apply_run_table_options(const TableFlags& f, engine::EngineOptions& o, std::uint64_t default_completion_tokens,
                                                  bool quiet) {
  auto run = std::make_shared<TableRun>();
  run->prices = f.prices_path.empty() ? cost::PriceTable::builtin() : cost::PriceTable::load(f.prices_path);

  const bool table_input = tables::is_table_path(o.input_path) || !f.template_path.empty();
  if (table_input && f.template_path.empty()) throw Error("a table input (" + o.input_path + ") needs --template FILE");
  if (!table_input && (!f.model.empty() || !f.system_path.empty() || !f.id_column.empty())) {
    throw Error("--model, --system and --id-column apply to table inputs (a .csv file, or JSONL with --template)");
  }

  const ResultSchema result_schema = read_result_schema(f.schema_path);
  const std::optional<std::string>& schema_json = result_schema.schema_json;
  auto checker = std::make_shared<schema::AnswerChecker>(schema_json);

  const std::string out_path = o.output_path;
  const auto format = store::output_format_of(out_path);
  if (table_input && out_path == "-") throw Error("a table input needs -o FILE");
  const std::string journal_path = !o.journal_path.empty() ? o.journal_path : store::default_journal_path(out_path);
  const bool resume = !o.overwrite && file_exists(journal_path);

  store::TableSinkOptions sink_options;
  sink_options.answer_columns = result_schema.answer_columns;
  sink_options.answer_sql_types = result_schema.answer_sql_types;
  const cost::PriceTable* prices = &run->prices;
  sink_options.cost_usd = [prices](const Outcome& out, const store::RowContext& ctx) {
    return cost::row_cost_usd(*prices, ctx.model, out.usage);
  };

  // The sinks a table's error rows go to (they never pass through the engine): filled below,
  // used by the source while the engine reads it.
  auto error_row_sinks = std::make_shared<std::vector<store::Sink*>>();
  std::unique_ptr<tables::TableSource> table;
  if (table_input) {
    if (f.model.empty()) throw Error("a table input needs --model");
    tables::RowRequestOptions ro;
    ro.model = f.model;
    ro.template_text = read_text_file(f.template_path, "template");
    if (!f.system_path.empty()) ro.system_prompt = read_text_file(f.system_path, "system prompt");
    if (!f.id_column.empty()) ro.id_column = f.id_column;
    if (schema_json) ro.response_format_json = schema::response_format(*schema_json, f.schema_name);
    if (f.max_completion_tokens > 0) ro.max_completion_tokens = f.max_completion_tokens;
    table = std::make_unique<tables::TableSource>(o.input_path, std::move(ro),
                                                  [error_row_sinks](const Outcome& e, const store::RowContext& ctx) {
                                                    for (store::Sink* s : *error_row_sinks) s->write(e, ctx);
                                                  });
    sink_options.input_columns = table->columns();
    const bool any_sqlite = format == store::OutputFormat::sqlite ||
                            (!f.errors_path.empty() && store::output_format_of(f.errors_path) == store::OutputFormat::sqlite);
    if (any_sqlite && o.input_path != "-") sink_options.input_sql_types = input_column_types(o.input_path);
    sink_options.input_values = [](const Outcome&, const store::RowContext& ctx) { return tables::input_row_values(ctx); };
  }

  const store::OpenMode mode = resume ? store::OpenMode::append : store::OpenMode::truncate;
  std::vector<std::unique_ptr<store::Sink>> sinks;
  bool counting = false;  // exactly one sink counts the rows
  auto wrap = [&](std::unique_ptr<store::Sink> s) -> std::unique_ptr<store::Sink> {
    auto c = std::make_unique<CountingSink>(std::move(s), run->counts);
    if (!counting) {
      c->set_counting(true);
      counting = true;
    }
    return c;
  };
  // Error rows of a table are written to every results sink. On a resume they are written
  // again: CSV skips ids already there, SQLite upserts, but a JSONL file would repeat them,
  // so JSONL sinks get them on a fresh run only.
  auto add_sink = [&](std::unique_ptr<store::Sink> s, const std::string& path) {
    if (!resume || path.empty() || store::output_format_of(path) != store::OutputFormat::jsonl) error_row_sinks->push_back(s.get());
    sinks.push_back(std::move(s));
  };
  // With a table input the user's file is ours even for .jsonl (error rows must reach it);
  // the engine's own JSONL then goes beside it.
  if (format != store::OutputFormat::jsonl || table_input) {
    auto main_sink = store::make_sink_for_path(out_path, mode, sink_options);
    if (!f.errors_path.empty()) main_sink = store::make_filtered_sink(std::move(main_sink), true);
    add_sink(wrap(std::move(main_sink)), out_path);
    o.output_path = out_path + ".raw.jsonl";
    o.journal_path = journal_path;
  }
  if (!f.errors_path.empty()) {
    auto errors = store::make_filtered_sink(store::make_sink_for_path(f.errors_path, mode, sink_options), false);
    add_sink(wrap(std::move(errors)), f.errors_path);
  }
  if (!counting) add_sink(wrap(std::make_unique<NullSink>()), "");  // counts for a .jsonl output
  auto attempt_cost = std::make_shared<AttemptCost>(run->prices);
  add_sink(std::make_unique<CostLine>(attempt_cost, quiet, o.progress.format == engine::LogFormat::json), "");
  run->counts->active = true;

  if (table) {
    run->table = table->stats();
    o.source = std::move(table);
  }
  for (auto& s : sinks) o.extra_sinks.push_back(std::move(s));

  o.check_answer = [checker](const Request& r, std::string_view body) {
    const auto v = checker->check(r.body, body);
    return engine::EngineOptions::AnswerVerdict{v.kind, v.message};
  };
  o.retry_invalid = f.retry_invalid;

  cost::BudgetLimits limits;
  if (f.max_cost_opt != nullptr && f.max_cost_opt->count() > 0) limits.max_cost_usd = f.max_cost_usd;
  if (f.max_tokens_opt != nullptr && f.max_tokens_opt->count() > 0) limits.max_tokens = f.max_tokens;
  if (f.daily_opt != nullptr && f.daily_opt->count() > 0) limits.daily_budget_usd = f.daily_budget_usd;
  if (limits.any()) {
    std::shared_ptr<cost::DailyLedger> ledger;
    if (limits.daily_budget_usd) {
      ledger = std::make_shared<cost::DailyLedger>(f.budget_ledger.empty() ? journal_path : f.budget_ledger);
    }
    auto gate = std::make_shared<cost::BudgetGate>(limits, run->prices, default_completion_tokens, ledger);
    o.admit = [gate](const Request& r) {
      switch (gate->admit(r)) {
        case cost::Admission::admitted:
          return engine::EngineOptions::Admit::yes;
        case cost::Admission::wait:
          return engine::EngineOptions::Admit::not_yet;
        case cost::Admission::exhausted:
          break;
      }
      return engine::EngineOptions::Admit::stop;
    };
    o.settle = [gate](const Request& r, const Usage& u) { gate->settle(r, u); };
    o.budget_reason = [gate] { return gate->budget().reason(); };
  }
  // Every attempt's usage, whether or not a budget is set: the cost line counts what was paid.
  o.settle = [attempt_cost, budget_settle = std::move(o.settle)](const Request& r, const Usage& u) {
    attempt_cost->add(r.model, u);
    if (budget_settle) budget_settle(r, u);
  };
  return run;
}

void report_table_read(const TableRun& run, bool quiet, bool json) {
  if (run.table && !quiet) {
    const tables::TableStats& t = *run.table;
    if (json) {
      std::fprintf(stderr, "{\"event\":\"table\",\"rows\":%llu,\"requests\":%llu,\"error_rows\":%llu}\n",
                   static_cast<unsigned long long>(t.rows), static_cast<unsigned long long>(t.requests),
                   static_cast<unsigned long long>(t.error_rows));
    } else {
      std::fprintf(stderr, "table: %llu rows, %llu requests, %llu error rows\n", static_cast<unsigned long long>(t.rows),
                   static_cast<unsigned long long>(t.requests), static_cast<unsigned long long>(t.error_rows));
    }
  }
}

int finish_run_table_options(const TableRun& run, int exit_code, bool quiet, bool json) {
  const TableCounts& c = *run.counts;
  if (!c.active) return exit_code;
  const std::uint64_t error_rows = run.table ? run.table->error_rows : 0;
  const std::uint64_t failed = error_rows + c.schema_violations + c.refusals + c.other_errors;
  // One summary: the engine's counts the requests (answers checked against the schema by its
  // hook included); what only the table knows is the rows that never became a request. Said
  // as a line of the same summary, not as a second tally of "valid" and "failed".
  if ((!quiet || exit_code != exit_code::ok) && error_rows > 0) {  // a line of the summary, printed when it is
    if (json) {
      std::fprintf(stderr, "{\"event\":\"table_rows\",\"error_rows\":%llu}\n", static_cast<unsigned long long>(error_rows));
    } else {
      std::fprintf(stderr, "  table rows    %llu could not become requests (invalid_input rows in the output, never sent)\n",
                   static_cast<unsigned long long>(error_rows));
    }
  }
  // Rows the engine counted as successes may have failed the schema check here.
  if (exit_code == exit_code::ok && failed > 0) return exit_code::some_failed;
  return exit_code;
}

}  // namespace floodgate::cli
