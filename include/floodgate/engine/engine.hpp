#pragma once
// Engine: runs one job — the requests of a RequestSource (a JSONL file ...) through the API
// at the rate limit, never over it, every outcome journaled, resumable. One thread, one
// event loop:
//
//   read (lazily, bounded look-ahead) -> estimate -> lane per model (FIFO)
//     -> admit (breaker, limiter reserve, --max-in-flight) -> Transport
//     -> classify -> retry at not-before | record (sink, then journal at a checkpoint)
//
// The design essay (admission, fairness, retries, resume and the exactly-once argument)
// is docs/engine.md. Per-request failures are output lines; configuration errors throw
// floodgate::Error before anything is sent.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/core/batch_io.hpp"
#include "floodgate/core/clock.hpp"
#include "floodgate/engine/estimator.hpp"
#include "floodgate/engine/events.hpp"
#include "floodgate/engine/progress.hpp"
#include "floodgate/engine/source.hpp"
#include "floodgate/http/transport.hpp"
#include "floodgate/limit/admission.hpp"
#include "floodgate/limit/backoff.hpp"
#include "floodgate/limit/circuit_breaker.hpp"
#include "floodgate/limit/limits.hpp"
#include "floodgate/limit/rate_limiter.hpp"
#include "floodgate/store/sink.hpp"

namespace floodgate::engine {

struct Credentials {
  std::string api_key;       // never logged, never written
  std::string organization;  // OpenAI-Organization
  std::string project;       // OpenAI-Project
};

struct EngineOptions {
  // Where the requests come from: `source` when set (input_path is then not read), else
  // the JSONL file input_path ("-" = stdin) parsed with `input`.
  std::unique_ptr<RequestSource> source;
  std::string input_path;    // "-" = stdin
  // "-" = stdout (then no reconciliation on resume). Empty: no output file, the rows go to
  // extra_sinks only (engine::Client); journal_path must then be given.
  std::string output_path;
  // Empty: default_journal_path(output_path). kJournalInMemory: a journal that lives and
  // dies with the engine (no file, no lock, no disk reserve).
  std::string journal_path;
  static constexpr const char* kJournalInMemory = ":memory:";
  // False: a stream of requests from memory, not a job to resume (engine::Client).
  // Terminal outcomes are not journaled (the journal keeps admissions and pauses only) and
  // ids are not remembered (no duplicate check), so memory does not grow with the number of
  // requests; a request the job would leave for a resume (a stop, a paused model) finishes
  // instead: as cancelled, or with the answer held for a verdict.
  bool record_outcomes = true;
  InputOptions input;
  bool overwrite = false;    // delete an existing output and journal first

  std::string base_url = "https://api.openai.com/v1";
  Credentials credentials;
  // Azure's api-version query parameter (empty: the one in base_url, else
  // http::kDefaultAzureApiVersion). The provider dialect is limits.provider.
  std::string api_version;

  limit::LimitsConfig limits;
  limit::LimiterOptions limiter;
  limit::RetryPolicy retry;
  limit::BreakerOptions breaker;
  std::size_t max_in_flight = 64;
  std::optional<Duration> max_wait;      // longest wait at the head of a lane for admission
  // A run that has not had a single HTTP answer yet, whose attempts have failed to connect
  // for this long (8 attempts at least, none answered), stops with exit code 7 instead of
  // retrying every line --max-attempts times: a wrong base URL or a server that is down.
  // Lines not finished stay unsent (resumable). Once any answer came, connection errors
  // are retried as usual. Zero turns the check off.
  Duration unreachable_after = std::chrono::seconds(10);
  // After the first answer, a run of attempts that got no answer at all across all requests
  // (limit::BreakerOptions::outage_threshold) is an outage, not bad lines: sending pauses
  // and one probe at a time checks for the server, the lines that met it keep their
  // attempts, and the first answer resumes. An outage longer than this stops the run with
  // exit code 8, every unfinished line left unsent (resumable). Zero: wait for ever.
  Duration outage_limit = std::chrono::minutes(10);
  bool ordered = false;                  // output in input order (bounded reorder buffer)
  // A resumed run sends again the lines an earlier run finished with an error (connection
  // errors, timeouts, 5xx after the last attempt, 4xx, schema violations, ...): their error
  // lines leave the output (rewritten whole, fsynced, renamed) and the journal first.
  bool retry_failed = false;
  std::size_t lookahead = 0;             // requests read ahead; 0 = max(1024, 8 x max_in_flight)
  Duration checkpoint_interval = std::chrono::milliseconds(200);
  bool fsync = false;                    // fdatasync the output at every checkpoint
  // Disk space held in "<journal>.reserve" while the job runs and freed when a write fails
  // for want of room, so that the answers of requests already sent still fit (0 = none).
  std::uint64_t disk_reserve_bytes = 1u << 20;
  // A model paused by an earlier run (journaled: the provider asked to wait beyond
  // retry.max_server_wait) gets nothing sent before the pause ends; true sends anyway.
  bool ignore_pause = false;
  // The longest pause a 429's wait may impose on a model (retry-after: 999999999 would be
  // 31 years): a longer one is capped, said so in the message and the journal, and the
  // re-run after it asks the server again.
  Duration max_pause = std::chrono::hours(24);

  http::TransportOptions transport;
  // Seams (null = the real ones). The transport every request goes through, made from the
  // options above (the engine fills in wake_fd and clock): null, libcurl (http::CurlTransport);
  // tests pass a scripted fake. The admission of each model: null, this process's limiter
  // (limit::LocalAdmission over the LimiterSet built from `limits` and `limiter`).
  std::function<std::unique_ptr<http::Transport>(const http::TransportOptions&)> make_transport;
  std::function<std::unique_ptr<limit::Admission>(const std::string& model)> make_admission;
  // Largest response body kept per attempt, for every endpoint; unset: the endpoint's
  // default_response_cap(). A larger body fails the attempt as bad_response, so memory
  // stays below --max-in-flight x the cap whatever a server sends.
  std::optional<std::size_t> max_response_bytes;
  Estimator estimator;                   // null: conservative_estimator()
  // The worst case's completion allowance for a request without max_tokens (budgets and
  // the row's estimated_tokens); the pacing charge follows limits.charge_for(model).
  std::uint64_t worst_case_completion_tokens = 4096;
  ProgressOptions progress;
  // Extra sinks (CSV, SQLite ...) written beside the JSONL output, same rows.
  std::vector<std::unique_ptr<store::Sink>> extra_sinks;

  // ---- hooks (empty = off) ----
  // Structured outputs: called on every 2xx JSON response before the outcome is final.
  // schema_violation: the same request is sent again (an attempt) up to `retry_invalid`
  // extra times, then written as that kind with the message; refusal: final at once. The
  // final Outcome keeps the response body either way.
  struct AnswerVerdict {
    ErrorKind kind = ErrorKind::none;
    std::string message;
  };
  std::function<AnswerVerdict(const Request&, std::string_view response_body)> check_answer;
  std::uint32_t retry_invalid = 0;
  // Budgets: asked before every send (first attempt and retries), after the limiter would
  // admit. not_yet: the request stays at the head of its lane until the next attempt
  // completes; stop: stop admitting (in-flight calls finish, unsent requests are left for a
  // resume), exit code 4 with budget_reason() as the stop reason.
  enum class Admit { yes, not_yet, stop };
  std::function<Admit(const Request&)> admit;
  std::function<std::string()> budget_reason;
  // After every attempt that `admit` allowed: its usage (zeros when none).
  std::function<void(const Request&, const Usage&)> settle;
  // The job-level events (events.hpp: the stops and their evidence), typed, as they happen;
  // a stopped run's last is its `stopped` event.
  std::function<void(const JobEvent&)> on_event;
  // Words for an event: its message (the log and the terminal) and, for the `stopped`
  // event, RunSummary::stop_reason; null: the event's name (events.hpp, name()). The CLI's,
  // which name its flags, are apps/floodgate/engine_words.cpp.
  std::function<std::string(const JobEvent&)> describe;
  // Words for an option that a message tells the reader to change or names as the limit
  // met ("max_wait", "ignore_pause", "transport.total_timeout": EngineOptions' names);
  // null: that name. The CLI's, its flags ("--max-wait"), are apps/floodgate/engine_words.cpp.
  std::function<std::string(std::string_view option)> option_words;
};

// `option` (an EngineOptions name, "max_wait") in opt.option_words' words.
[[nodiscard]] std::string option_name(const EngineOptions& opt, std::string_view option);

struct RunSummary {
  std::map<std::string, std::uint64_t> outcomes;  // failed lines by ErrorKind name (successes are `succeeded`, never "none")
  std::uint64_t total_lines = 0;        // request lines seen this run (blank lines excluded)
  std::uint64_t skipped_done = 0;       // already in the journal (resume)
  // The output as this run found it (after reconciliation and --retry-failed): lines an
  // earlier run finished, by outcome. The exit code describes the output as it stands, so
  // earlier error lines still in it make it 1, as this run's would.
  std::uint64_t earlier_succeeded = 0;
  std::uint64_t earlier_failed = 0;
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;
  std::uint64_t not_done = 0;           // left for a resume (interrupted, quota, paused)
  std::uint64_t attempts = 0;           // HTTP attempts sent
  // Tokens of every answered attempt (re-asks after a schema_violation included), as billed.
  std::uint64_t retries = 0;
  std::uint64_t http_429 = 0;
  std::uint64_t tokens_prompt = 0;
  std::uint64_t tokens_completion = 0;
  std::uint64_t tokens_total = 0;
  std::uint64_t reconciled_output_lines = 0;  // output lines adopted into the journal at start
  std::uint64_t retried_failed_lines = 0;     // --retry-failed: earlier error lines sent again
  double wall_seconds = 0;
  double achieved_rpm = 0;              // attempts per minute over the wall time
  double achieved_tpm = 0;
  limit::Limits limits;                 // in force at the end (first model seen)
  std::uint64_t breaker_opened = 0;
  int exit_code = 0;
  StopCause stop = StopCause::none;     // why the run ended early, typed (exit_code_for(stop))
  std::string stop_reason;              // "" or the stop in describe's words (without it: "interrupted", "paused", ...)
};

class Engine {
 public:
  explicit Engine(EngineOptions options, Clock& clock = SteadyClock::instance());
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs the job to its end (or until stopped). Throws floodgate::Error for configuration
  // problems found at start (unreadable input, foreign journal ...).
  RunSummary run();

  // The same loop driven from the caller's own event loop (engine::Client's driven mode):
  // begin() once (it throws what run() would at start), then turn() whenever something may
  // have changed (a request to read, an answer in the transport, a wakeup) and by Turn::next
  // at the latest, until a turn says the job is over; then end() for the summary. A turn
  // waits in the transport's poll() for at most `max_wait` (zero: never blocks). run() is
  // begin(), turns that wait as long as nothing is due, and end().
  struct Turn {
    bool over = false;              // the job is over: call end()
    TimePoint next = TimePoint::max();  // the next turn is due by then (a pace slot, a retry, a deadline ...)
    std::size_t answers = 0;        // answers the transport handed over (they may free room to admit more)
  };
  void begin();
  Turn turn(Duration max_wait);
  RunSummary end();

  // Asks the loop to stop admitting and drain (first call) or to stop at once (second).
  // Async-signal-safe: only sets an atomic and writes to a pipe.
  void request_stop() noexcept;

  // Asks the loop to give up the request with this custom_id; thread-safe. Queued or
  // waiting for a retry: it finishes as ErrorKind::cancelled, unsent (unless it is admitted
  // before the loop sees the request). In flight: its transfer is aborted and it finishes as
  // cancelled, except while the breaker is not closed (a probe's answer is awaited): then
  // it runs to its real outcome. Unknown or finished: nothing happens.
  void cancel(std::string custom_id);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Installs SIGINT/SIGTERM handlers that call engine.request_stop(); restores the previous
// handlers when destroyed.
class SignalGuard {
 public:
  explicit SignalGuard(Engine& engine);
  ~SignalGuard();
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;
};

// The default response body cap of an endpoint: generous (far above any real answer) but
// bounded: 128 MiB for embeddings (2,048 inputs x 3,072 floats as JSON is ~90 MB), 32 MiB
// for the others.
[[nodiscard]] std::size_t default_response_cap(Endpoint endpoint) noexcept;

// Throws floodgate::Error (exit 2) naming the folder and the reason when the folder `file`
// goes in (the output, the journal ...) is missing or not writable. The engine checks its
// own files at start; a command that opens a file first (a lock, a results table) calls it
// before.
void check_folder_writable(const std::string& file, const char* what);

// Prints the end-of-job summary (human text, or one JSON object with json = true).
[[nodiscard]] std::string format_summary(const RunSummary& summary, bool json);

}  // namespace floodgate::engine
