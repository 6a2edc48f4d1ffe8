// `floodgate run INPUT -o OUTPUT`: push a file of requests through the API at the rate
// limit, never over it, every outcome journaled so a re-run resumes.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "engine_flags.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/engine/engine.hpp"
#include "floodgate/store/journal.hpp"
#include "floodgate/store/run_lock.hpp"

namespace floodgate::cli {
namespace {

struct RunFlags {
  std::string input;
  std::string output;
  std::string journal;
  bool overwrite = false;
  std::string endpoint;
  bool ordered = false;
  bool retry_failed = false;
  EngineFlags engine;
  TableFlags tables;
};

int run(const RunFlags& f) {
  engine::EngineOptions o;
  o.input_path = f.input;
  o.output_path = f.output;
  o.journal_path = f.journal;
  o.overwrite = f.overwrite;
  if (!f.endpoint.empty()) {
    o.input.default_endpoint = endpoint_flag(f.endpoint);
  }

  o.ordered = f.ordered;
  o.retry_failed = f.retry_failed;
  apply_engine_flags(f.engine, o);

  // One run at a time per output: taken before any results file is opened (the engine
  // shares this lock). Without a journal for stdout the engine reports the usage error.
  std::shared_ptr<store::RunLock> lock;
  if (!o.journal_path.empty() || o.output_path != "-") {
    const std::string journal = !o.journal_path.empty() ? o.journal_path : store::default_journal_path(o.output_path);
    if (o.output_path != "-") engine::check_folder_writable(o.output_path, "output");
    engine::check_folder_writable(journal, "journal");
    lock = store::lock_run(store::lock_path_for_journal(journal), o.output_path == "-" ? "the journal " + journal : "the output " + o.output_path);
  }
  const auto tables = apply_run_table_options(f.tables, o, worst_case_completion_tokens(f.engine), f.engine.quiet);  // tables, schema, cost, budgets

  const bool json = o.progress.format == engine::LogFormat::json;
  const bool quiet = f.engine.quiet;
  engine::Engine eng(std::move(o));
  engine::SignalGuard guard(eng);
  const engine::RunSummary summary = eng.run();
  report_table_read(*tables, quiet, json);
  if (!quiet || summary.exit_code != 0) {
    const std::string text = engine::format_summary(summary, json);
    std::fputs(text.c_str(), stderr);
  }
  return finish_run_table_options(*tables, summary.exit_code, quiet, json);
}

}  // namespace

void register_run(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<RunFlags>();
  CLI::App* cmd = app.add_subcommand(
      "run",
      "Send every request of a JSONL file at the rate limit and write one output line per input line.\n\n"
      "INPUT holds one request per line in the OpenAI Batch API format\n"
      "  {\"custom_id\":\"q1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"gpt-4o-mini\",...}}\n"
      "or bare request bodies with --endpoint (the line number is then the custom_id). OUTPUT gets\n"
      "the Batch API output format, one line per input line, as results arrive (--ordered keeps\n"
      "input order). Requests are paced per model by requests/min, tokens/min, requests/day and\n"
      "tokens/day: given with --rpm/--tpm/--rpd/--tpd or --limits FILE, or learned from the\n"
      "x-ratelimit-* headers (--limits auto, the default). --max-in-flight bounds concurrency,\n"
      "separately from the rate. Retryable failures (429 rate_limit_exceeded, 5xx, 408, 409,\n"
      "timeouts, connection errors, malformed bodies) are retried with backoff honouring\n"
      "retry-after; 400/401/403/404/413/422 are not.\n\n"
      "Every outcome goes to a journal (OUTPUT.journal, SQLite). Re-running the same command after\n"
      "a crash, Ctrl-C or an exhausted quota resumes: finished lines are skipped and OUTPUT ends\n"
      "with each custom_id exactly once. Ctrl-C drains requests in flight; twice stops at once.\n\n"
      "Examples:\n"
      "  floodgate run requests.jsonl -o results.jsonl --rpm 500 --tpm 200000\n"
      "  floodgate run prompts.jsonl -o out.jsonl --endpoint /v1/chat/completions --limits limits.json\n"
      "  OPENAI_BASE_URL=http://127.0.0.1:8080/v1 floodgate run in.jsonl -o out.jsonl\n\n"
      "Exit codes describe OUTPUT as it stands: 0 every line succeeded, 1 OUTPUT holds error lines (this\n"
      "run's or an earlier run's; --retry-failed sends them again), 2 usage or configuration error found\n"
      "before anything is sent (empty or non-JSONL input, bare bodies without --endpoint, a base URL that\n"
      "is not http/https, a missing or read-only output folder), 3 insufficient_quota (resumable),\n"
      "4 budget reached (resumable), 5 interrupted (resumable), 6 paused until a limit resets (resumable),\n"
      "7 the API never answered: wrong base URL or server down, or no answer within --timeout (--unreachable-after; resumable),\n"
      "8 the API stopped answering mid-run for longer than --outage-limit (resumable),\n"
      "9 the first answers all refused the key, URL path or model (401/403/404): fix it and re-run,\n"
      "74 cannot write OUTPUT, a results file or the journal: disk full, quota or file size limit\n"
      "(the message names the file; resumable once there is room).\n\n"
      "One run at a time per OUTPUT: a second one exits 2 naming the pid that holds OUTPUT.journal.lock.\n"
      "A re-run right after a crash starts with the rate-limit windows the crashed run left\n"
      "(recent admissions are kept in the journal).\n\n"
      "Input lines are checked before they are sent: a line that is not valid JSON (RFC 8259) is an\n"
      "invalid_input error line naming the column; a line over 25 MiB (the API's request size limit)\n"
      "is a too_large error line and is never read whole. Lines that failed may be edited before a\n"
      "--retry-failed run; a journal refuses an input whose recorded successes changed.\n\n"
      "A model the provider paused (a 429 asking to wait beyond --max-server-wait, e.g. a daily limit)\n"
      "is remembered in the journal: a re-run before that time sends nothing for it (exit 6 again)\n"
      "while other models go on, unless --ignore-pause is given.\n\n"
      "Lines that failed (after their last attempt, or at once for a 4xx) count as done: a re-run\n"
      "does not send them again unless --retry-failed is given, e.g. after fixing the base URL or\n"
      "once an outage is over. Their error lines then leave OUTPUT before they are sent again.");
  cmd->add_option("input", f->input, "requests, one JSON object per line; - for stdin")->required();
  cmd->add_option("-o,--output", f->output, "where results go (Batch API output format); - for stdout (needs --journal)")->required();
  cmd->add_option("--journal", f->journal, "the resume journal (default: OUTPUT.journal)");
  cmd->add_flag("--overwrite", f->overwrite, "start over: delete an existing OUTPUT and its journal first");
  cmd->add_option("--endpoint", f->endpoint, "where bare request bodies go, e.g. /v1/chat/completions");

  cmd->add_flag("--ordered", f->ordered,
                "write output lines in input order (bounded reorder buffer); a resumed run rewrites OUTPUT in input order at its end");
  cmd->add_flag("--retry-failed", f->retry_failed,
                "send again the lines an earlier run finished with an error (their error lines leave OUTPUT first); "
                "note that answers that failed --schema were paid for");
  add_engine_flags(cmd, f->engine);
  add_run_table_options(cmd, f->tables);  // --template, --schema, --prices, --max-cost ... (run_tables_options.cpp)
  cmd->callback([f, &exit_code] { exit_code = run(*f); });
}

}  // namespace floodgate::cli
