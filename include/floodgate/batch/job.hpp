#pragma once
// A Batch API job: one JSONL input (the same file `floodgate run` takes) sent through
// OpenAI's Batch API at half the price, merged back into OUTPUT in run's format.
//
//   submit  validates every line (run's checks, line numbers in errors), splits the lines by
//           endpoint and model into files of at most 50,000 lines and 200 MB (and at most the
//           model's enqueued-token limit), uploads each from disk and creates its batch, as
//           many as fit under the enqueued-token limit (the rest wait in the queue);
//   wait    polls with backoff, submits queued parts as earlier ones finish, re-queues a
//           batch refused with token_limit_exceeded (and learns the limit from it), prints
//           a progress line, warns about a batch whose counts stopped moving;
//   fetch   streams every finished batch's output and error files into OUTPUT, each
//           custom_id exactly once; lines with status_code 0 or missing from both files
//           become error lines that say so;
//   cancel  cancels what is still running (fetch then keeps what the batches did).
// run = submit + wait + fetch, then --retry-failed (a new round of batches with the lines
// that failed or expired) or --fallback realtime (those lines through the real-time
// engine), and --deadline (cancel what is queued when the deadline comes near and finish
// the rest in real time).
//
// Crash safety: the journal beside OUTPUT (run's SQLite journal, OUTPUT.journal) holds the
// job's state (every part, file id and batch id) and every merged custom_id. An intent is
// written before each upload and create; a re-run after kill -9 finds an upload or a batch
// that happened but was not journaled (by its unique file name, by the part named in its
// metadata) instead of making a second one. Output lines are journaled after they are
// flushed; lines a crash left in OUTPUT unjournaled are adopted on the next fetch.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "floodgate/batch/client.hpp"
#include "floodgate/core/batch_io.hpp"
#include "floodgate/cost/prices.hpp"
#include "floodgate/engine/engine.hpp"
#include "floodgate/limit/limits.hpp"

namespace floodgate::batch {

enum class Fallback { none, realtime };

struct JobOptions {
  std::string input_path;    // for submit/run; the others read it from the journal
  std::string output_path;
  std::string journal_path;  // empty: OUTPUT.journal
  InputOptions input;        // --endpoint for bare request bodies
  bool overwrite = false;
  std::string job_name;      // in every batch's metadata; default: OUTPUT's file name

  std::uint64_t max_lines_per_file = 50'000;
  std::uint64_t max_bytes_per_file = 200'000'000;
  // Enqueued-token limits (input tokens of every unfinished batch of a model); 0 = unknown,
  // then learned from a token_limit_exceeded refusal.
  std::map<std::string, std::int64_t> queue_limits;
  std::int64_t queue_limit_all = 0;

  std::chrono::milliseconds poll_initial{5'000};
  std::chrono::milliseconds poll_max{60'000};
  std::chrono::seconds stuck_after{1800};
  std::optional<std::chrono::system_clock::time_point> deadline;
  // The time kept before the deadline for the real-time finish. nullopt (the default): what
  // the real-time limits need for the lines not finished yet (realtime_finish_time(), from
  // the engine options' rpm/tpm/rpd/tpd and charge rule), plus deadline_margin; recomputed at
  // every poll as the batches progress. `--deadline-reserve` fixes it.
  std::optional<std::chrono::seconds> deadline_reserve;
  std::chrono::seconds deadline_margin{120};         // the cancel taking effect, the last answers
  std::chrono::seconds deadline_unknown_limits{600};  // the reserve for a model without known limits

  bool retry_failed = false;
  Fallback fallback = Fallback::none;
  bool quiet = false;

  // Results in run's formats and sinks: OUTPUT's extension picks them (.csv, .sqlite/.db:
  // a results table, with the Batch-API JSONL beside it as OUTPUT.raw.jsonl, as `run`
  // writes; anything else: JSONL). Every 2xx chat answer is checked against `schema_json`
  // (--schema, strict form) or, without one, against the line's own response_format: a
  // violation or a refusal is an error row (schema_violation / refusal), as in `run`.
  std::optional<std::string> schema_json;
  std::vector<std::string> answer_columns;    // the table's answer columns (the schema's properties)
  std::vector<std::string> answer_sql_types;  // aligned with answer_columns
  // cost_usd of each row and the job's cost: Batch API prices for lines the batches
  // answered, real-time prices for the real-time finish. nullptr: the built-in table.
  std::shared_ptr<const cost::PriceTable> prices;

  ClientOptions client;
  // The real-time engine's options (credentials, limits ...) for the fallback; input,
  // output and journal are set by the job.
  std::function<engine::EngineOptions()> realtime_options;
};

struct JobSummary {
  std::uint64_t lines = 0;       // request lines in the input
  std::uint64_t succeeded = 0;   // in OUTPUT as successes
  std::uint64_t failed = 0;      // in OUTPUT as errors
  std::uint64_t not_done = 0;    // not in OUTPUT yet
  std::uint64_t parts = 0;
  std::uint64_t realtime = 0;    // lines sent through the real-time engine
  // What the answers merged by this command cost (Batch prices for batch lines, real-time
  // prices for real-time attempts), and what the same answers cost at real-time prices.
  double cost_usd = 0;
  double realtime_price_usd = 0;
  bool unpriced = false;         // some answer's model has no price (left out of both)
  int exit_code = 0;
};

class Job {
 public:
  explicit Job(JobOptions options);
  ~Job();
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  void submit();
  // Polls every batch once and prints one line per part.
  void status(std::FILE* out);
  // Until every part's batch is finished; false when stopped by the deadline's cancel.
  void wait();
  JobSummary fetch();
  void cancel();
  JobSummary run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What the real-time finish of the unfinished lines needs at the known limits: per model,
// the requests and the pacing charge (tokens) still to send. Whole-window pacing sends a
// window's quota at once, so the last request goes after ceil(total / limit) - 1 windows
// (60 s for per-minute limits, a day for per-day ones; 0 when one window holds it all); the
// slowest model and dimension decide. `known` is false when a model has no limit at all
// (then the time cannot be computed: the caller keeps a fixed reserve).
struct Unfinished {
  std::uint64_t requests = 0;
  std::uint64_t charged_tokens = 0;
};
struct FinishTime {
  std::chrono::seconds needed{0};
  bool known = true;
  std::string bound_by;  // "gpt-4o-mini rpm" ...; empty when nothing binds
};
[[nodiscard]] FinishTime realtime_finish_time(const std::map<std::string, Unfinished>& by_model,
                                              const limit::LimitsConfig& limits);

// "2026-01-02T18:00" / "18:00" (today, local time; tomorrow when past) / "18:00:00" or a
// duration from now ("3h", "90m"). nullopt when it is none of these.
std::optional<std::chrono::system_clock::time_point> parse_deadline(const std::string& text,
                                                                    std::chrono::system_clock::time_point now);

}  // namespace floodgate::batch
