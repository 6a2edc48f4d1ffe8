// `floodgate batch submit|status|wait|fetch|cancel|run`: the same input file as `run`,
// through OpenAI's Batch API at half the price (src/batch, include/floodgate/batch/job.hpp).
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "engine_flags.hpp"
#include "model_tokens.hpp"
#include "floodgate/batch/job.hpp"
#include "floodgate/core/duration.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/core/exit_codes.hpp"
#include "floodgate/cost/prices.hpp"

namespace floodgate::cli {
namespace {

struct BatchFlags {
  std::string input;
  std::string output;
  std::string journal;
  std::string endpoint;
  std::string job_name;
  bool overwrite = false;
  std::uint64_t max_lines = 50'000;
  std::uint64_t max_bytes = 200'000'000;
  std::vector<std::string> queue_limits;
  std::string poll_interval = "5s";
  std::string poll_max = "60s";
  std::string stuck_after = "30m";
  std::string deadline;
  std::string deadline_reserve;  // empty: from the limits
  bool retry_failed = false;
  std::string fallback = "none";
  std::string schema_path;
  std::string prices_path;
  EngineFlags engine;
};

Duration duration_flag(const std::string& text, const char* flag) {
  const auto d = parse_duration(text);
  if (!d) throw Error(std::string("invalid duration '") + text + "' for " + flag + " (e.g. 500ms, 5s, 10m)", exit_code::usage);
  return *d;
}

batch::JobOptions job_options(const BatchFlags& f) {
  batch::JobOptions o;
  o.input_path = f.input;
  o.output_path = f.output;
  o.journal_path = f.journal;
  o.overwrite = f.overwrite;
  o.job_name = f.job_name;
  if (!f.endpoint.empty()) {
    o.input.default_endpoint = endpoint_flag(f.endpoint);
  }
  if (f.max_lines == 0 || f.max_lines > 50'000) throw Error("--max-lines must be between 1 and 50000 (the Batch API's limit)", exit_code::usage);
  if (f.max_bytes < 1024 || f.max_bytes > 200'000'000) throw Error("--max-bytes must be between 1024 and 200000000 (200 MB, the Batch API's limit)", exit_code::usage);
  o.max_lines_per_file = f.max_lines;
  o.max_bytes_per_file = f.max_bytes;
  parse_model_tokens(f.queue_limits, "--queue-limit", o.queue_limits, o.queue_limit_all);
  o.poll_initial = std::chrono::duration_cast<std::chrono::milliseconds>(duration_flag(f.poll_interval, "--poll-interval"));
  o.poll_max = std::max(o.poll_initial, std::chrono::duration_cast<std::chrono::milliseconds>(duration_flag(f.poll_max, "--poll-max")));
  o.stuck_after = std::chrono::duration_cast<std::chrono::seconds>(duration_flag(f.stuck_after, "--stuck-after"));
  if (!f.deadline.empty()) {
    o.deadline = batch::parse_deadline(f.deadline, std::chrono::system_clock::now());
    if (!o.deadline) throw Error("invalid --deadline '" + f.deadline + "' (e.g. 18:00, 2026-01-02T18:00, 3h)", exit_code::usage);
  }
  if (!f.deadline_reserve.empty()) {
    o.deadline_reserve = std::chrono::duration_cast<std::chrono::seconds>(duration_flag(f.deadline_reserve, "--deadline-reserve"));
  }
  o.retry_failed = f.retry_failed;
  if (f.fallback == "realtime") {
    o.fallback = batch::Fallback::realtime;
  } else if (f.fallback != "none") {
    throw Error("--fallback is none or realtime", exit_code::usage);
  }
  o.quiet = f.engine.quiet;
  const ResultSchema result_schema = read_result_schema(f.schema_path);
  o.schema_json = result_schema.schema_json;
  o.answer_columns = result_schema.answer_columns;
  o.answer_sql_types = result_schema.answer_sql_types;
  if (!f.prices_path.empty()) o.prices = std::make_shared<const cost::PriceTable>(cost::PriceTable::load(f.prices_path));
  engine::EngineOptions eo;
  apply_engine_flags(f.engine, eo);
  o.client.base_url = eo.base_url;
  o.client.api_key = eo.credentials.api_key;
  o.client.organization = eo.credentials.organization;
  o.client.project = eo.credentials.project;
  const EngineFlags engine_flags = f.engine;
  o.realtime_options = [engine_flags] {
    engine::EngineOptions e;
    apply_engine_flags(engine_flags, e);
    return e;
  };
  return o;
}

void print_summary(const batch::JobSummary& s, bool quiet) {
  if (quiet && s.exit_code == 0) return;
  std::fprintf(stderr, "batch: %llu lines: %llu succeeded, %llu failed, %llu not done%s\n",
               static_cast<unsigned long long>(s.lines), static_cast<unsigned long long>(s.succeeded),
               static_cast<unsigned long long>(s.failed), static_cast<unsigned long long>(s.not_done),
               s.realtime > 0 ? (" (" + std::to_string(s.realtime) + " through the real-time API)").c_str() : "");
  if (!quiet && (s.cost_usd > 0 || s.realtime_price_usd > 0)) {
    std::fprintf(stderr, "batch: cost $%.6f for the answers merged now (Batch API prices%s); $%.6f at real-time prices%s\n",
                 s.cost_usd, s.realtime > 0 ? ", real-time prices for the real-time finish" : "", s.realtime_price_usd,
                 s.unpriced ? "; some models have no price and are left out" : "");
  }
}

void add_result_flags(CLI::App* cmd, BatchFlags& f) {
  cmd->add_option("--schema", f.schema_path,
                  "JSON Schema of the answers (as run's --schema): every answer is checked, a violation is an error row\n"
                  "of kind schema_violation; its properties become columns of a .csv/.sqlite OUTPUT");
  cmd->add_option("--prices", f.prices_path, "price table for cost_usd and the cost line (default: the built-in data/prices.json)");
}

CLI::App* add_common(CLI::App* cmd, BatchFlags& f, bool with_input) {
  if (with_input) cmd->add_option("input", f.input, "requests, one JSON object per line (the same file `run` takes)")->required();
  cmd->add_option("-o,--output", f.output, "where results go (run's output format); its journal lives beside it")->required();
  cmd->add_option("--journal", f.journal, "the job's journal (default: OUTPUT.journal)");
  add_engine_flags(cmd, f.engine);
  return cmd;
}

void add_submit_flags(CLI::App* cmd, BatchFlags& f) {
  cmd->add_option("--endpoint", f.endpoint, "where bare request bodies go, e.g. /v1/chat/completions");
  cmd->add_option("--job-name", f.job_name, "named in every batch's metadata (default: OUTPUT's file name)");
  cmd->add_flag("--overwrite", f.overwrite, "start over: forget OUTPUT, its journal and the job's files first");
  cmd->add_option("--max-lines", f.max_lines, "lines per uploaded file (the API allows 50000)")->capture_default_str();
  cmd->add_option("--max-bytes", f.max_bytes, "bytes per uploaded file (the API allows 200 MB)")->capture_default_str();
  cmd->add_option("--queue-limit", f.queue_limits,
                  "enqueued-token limit: TOKENS for every model or MODEL=TOKENS (repeatable), e.g. gpt-4o=90000 at "
                  "tier 1; without it the limit is learned from a token_limit_exceeded refusal");
}

void add_wait_flags(CLI::App* cmd, BatchFlags& f) {
  cmd->add_option("--poll-interval", f.poll_interval, "first wait between polls; doubles while nothing moves")->capture_default_str();
  cmd->add_option("--poll-max", f.poll_max, "longest wait between polls")->capture_default_str();
  cmd->add_option("--stuck-after", f.stuck_after, "warn about a batch whose counts have not moved for this long")->capture_default_str();
}

}  // namespace

void register_batch(CLI::App& app, int& exit_code) {
  CLI::App* batch = app.add_subcommand(
      "batch",
      "Send a JSONL file through OpenAI's Batch API (half the price, results within 24h) and merge the\n"
      "results into OUTPUT in run's formats, each custom_id exactly once: JSONL, or a results table for a .csv or\n"
      ".sqlite OUTPUT (with cost_usd at Batch prices; the JSONL goes beside it as OUTPUT.raw.jsonl); --schema\n"
      "checks every answer as run's does.\n\n"
      "  floodgate batch run in.jsonl -o out.jsonl                 submit, wait, fetch\n"
      "  floodgate batch submit in.jsonl -o out.jsonl              validate, split, upload, create\n"
      "  floodgate batch status -o out.jsonl                        one poll, a line per batch\n"
      "  floodgate batch wait -o out.jsonl                          until every batch has finished\n"
      "  floodgate batch fetch -o out.jsonl                         merge what finished batches returned\n"
      "  floodgate batch cancel -o out.jsonl                        cancel what still runs (fetch keeps its results)\n\n"
      "The journal beside OUTPUT (OUTPUT.journal) holds every file id and batch id: any step can be\n"
      "interrupted (kill -9 included) and run again without a second upload, batch or charge.\n"
      "Lines that failed or expired: --retry-failed sends them in new batches, --fallback realtime through\n"
      "the real-time API (at the rate limit, full price). --deadline 18:00 cancels what is still queued when\n"
      "the deadline comes near, leaving the time the real-time limits (--rpm/--tpm/--rpd/--tpd, --limits) need\n"
      "for the lines not finished yet, and finishes the rest in real time (--deadline-reserve fixes that time).\n\n"
      "Exit codes: 0 every line succeeded, 1 some lines failed or are not done, 2 usage error (bad input lines\n"
      "are listed with their line numbers and nothing is submitted).");
  batch->require_subcommand(1);

  const auto make = [&](const char* name, const char* help, bool input, bool submit_flags, bool wait_flags) {
    auto f = std::make_shared<BatchFlags>();
    CLI::App* cmd = add_common(batch->add_subcommand(name, help), *f, input);
    if (submit_flags) add_submit_flags(cmd, *f);
    if (wait_flags) add_wait_flags(cmd, *f);
    return std::make_pair(cmd, f);
  };

  {
    auto [cmd, f] = make("submit", "Validate, split, upload and create the batches (as many as the enqueued-token limit allows)", true, true, false);
    cmd->add_flag("--retry-failed", f->retry_failed, "after a fetch: submit again the lines that failed or expired");
    cmd->callback([f = f, &exit_code] {
      batch::Job job(job_options(*f));
      job.submit();
      exit_code = exit_code::ok;
    });
  }
  {
    auto [cmd, f] = make("status", "Poll every batch of the job once and print its state", false, false, false);
    cmd->callback([f = f, &exit_code] {
      batch::Job job(job_options(*f));
      job.status(stdout);
      exit_code = exit_code::ok;
    });
  }
  {
    auto [cmd, f] = make("wait", "Wait until every batch has finished, submitting queued parts as the limit allows", false, false, true);
    cmd->add_option("--deadline", f->deadline, "cancel what is still queued when DEADLINE (18:00, 2026-01-02T18:00 or 3h) is as near as\nthe real-time finish of the rest needs");
    cmd->add_option("--deadline-reserve", f->deadline_reserve,
                    "time kept for the real-time finish (default: what --rpm/--tpm/--rpd/--tpd or --limits need for the\n"
                    "lines not finished yet, + 2m; 10m + 2m for a model without known limits)");
    cmd->callback([f = f, &exit_code] {
      batch::Job job(job_options(*f));
      job.wait();
      exit_code = exit_code::ok;
    });
  }
  {
    auto [cmd, f] = make("fetch", "Merge the results of every finished batch into OUTPUT (streamed)", false, false, false);
    add_result_flags(cmd, *f);
    cmd->callback([f = f, &exit_code] {
      batch::Job job(job_options(*f));
      const auto s = job.fetch();
      print_summary(s, f->engine.quiet);
      exit_code = s.exit_code;
    });
  }
  {
    auto [cmd, f] = make("cancel", "Cancel every batch of the job that still runs (fetch then keeps what they did)", false, false, false);
    cmd->callback([f = f, &exit_code] {
      batch::Job job(job_options(*f));
      job.cancel();
      exit_code = exit_code::ok;
    });
  }
  {
    auto [cmd, f] = make("run", "submit + wait + fetch (+ --retry-failed / --fallback realtime / --deadline)", true, true, true);
    add_result_flags(cmd, *f);
    cmd->add_flag("--retry-failed", f->retry_failed, "send the lines that failed or expired again, in new batches");
    cmd->add_option("--fallback", f->fallback, "none, or realtime: the lines that failed or expired go through the real-time API")
        ->capture_default_str();
    cmd->add_option("--deadline", f->deadline, "finish by then: cancel what is still queued when DEADLINE is as near as the real-time\nfinish of the rest needs, and finish in real time");
    cmd->add_option("--deadline-reserve", f->deadline_reserve,
                    "time kept for the real-time finish (default: what --rpm/--tpm/--rpd/--tpd or --limits need for the\n"
                    "lines not finished yet, + 2m; 10m + 2m for a model without known limits)");
    cmd->callback([f = f, &exit_code] {
      batch::Job job(job_options(*f));
      const auto s = job.run();
      print_summary(s, f->engine.quiet);
      exit_code = s.exit_code;
    });
  }
}

}  // namespace floodgate::cli
