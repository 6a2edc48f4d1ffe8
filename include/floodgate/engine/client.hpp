#pragma once
// Client: floodgate embedded in a program. Requests come from memory instead of a file; the
// same engine paces, retries and classifies them as it does a file's lines (the Client is a
// RequestSource and a Sink of the one engine loop: nothing of the scheduler is forked).
// A Client:
//   1. starts the engine's loop on a thread of its own (the constructor), or, driven
//      (ClientOptions::driven), leaves the loop to the caller's event loop;
//   2. takes requests from any thread: submit() never blocks on the network and says at
//      once whether it took the request (Submitted) or why not (a Refusal: shut down, not a
//      request, an id already outstanding, too many outstanding). Each request taken gets
//      exactly one Completion later;
//   3. hands each Completion either to a callback (ClientOptions::on_complete, called on
//      the engine's thread: keep it short) or to the completion queue: poll() takes what is
//      there without blocking, and completion_fd() is an eventfd that is readable while the
//      queue holds something, so an asyncio loop (add_reader) or an Asio loop
//      (posix::stream_descriptor::async_wait) waits for outcomes without a thread per request;
//   4. cancels by id (cancel(), thread-safe): a request not sent yet is dropped, never sent;
//      one in flight has its transfer aborted (http::Transport::cancel); either completes as
//      ErrorKind::cancelled. One that finished first keeps its real outcome;
//   5. stops with close(): drain (every request taken runs to its outcome), cancel_queued
//      (those in flight finish, the others are cancelled) or abort (everything not finished
//      is cancelled, transfers aborted). The destructor aborts. Either joins the engine's
//      thread; when close() returns every request taken has had its Completion.
//
// Order: within one model, a higher Submission::priority is admitted first, equal ones in
// the order they were submitted (a retry goes before the requests of its priority that were
// not sent yet). Models are separate lanes (separate limits), served in turn. A
// Submission::deadline bounds the wait for a send: a request not sent by then completes as
// ErrorKind::max_wait, unsent; one whose retry could not go before it completes with its
// last attempt's failure.
//
// The engine stops for good on what would stop a file job (429 insufficient_quota, a server
// never reached within EngineOptions::unreachable_after, an outage longer than
// outage_limit, the same refusal for every answer: a bad key): what is not finished then
// completes as cancelled and submit() refuses with Refusal::closed, saying why.
//
// The journal: without ClientOptions::journal_path it lives in memory (the admissions the
// limiter counts). With one, admissions and the provider's pauses are kept on disk, so a
// process started again right after knows what the server's windows still hold; outcomes
// are never kept (a stream of submissions is not a job to resume: that is the caller's).
// The API key is only ever put in a request header: never in a Completion, a message or
// the journal. docs/embedding.md has the whole story, with an asyncio and an Asio loop.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/core/outcome.hpp"
#include "floodgate/core/request.hpp"
#include "floodgate/engine/engine.hpp"

namespace floodgate::engine {

// One request from memory.
struct Submission {
  // The caller's name for it: unique among its requests not completed yet (a second one is
  // refused), handed back in Completion::outcome.custom_id, the key of cancel().
  std::string id;
  Endpoint endpoint = Endpoint::chat_completions;
  std::string body;   // the JSON request body, sent byte for byte
  std::string model;  // the lane and the limits it counts against; empty: the body's "model"
  int priority = 0;   // higher first within the model; equal ones in submission order
  // Not sent by then: completes as ErrorKind::max_wait, unsent. On the Client's clock
  // (ClientOptions::clock; std::chrono::steady_clock by default).
  std::optional<TimePoint> deadline;
  // Handed to the transport with every attempt (http::HttpRequest::context), untouched: for
  // a transport that sends what the caller holds (floodgate serve's). With a context, an
  // audio transcription's body is not read for a file to upload (the transport has the
  // request): it only names the model and feeds the estimate.
  std::shared_ptr<void> context;
  // Sent at most this many times, whatever the retry policy (0: the policy's
  // max_attempts): 1 for a body that cannot be sent twice (an upload streamed from a socket).
  std::uint32_t max_attempts = 0;
};

enum class Refusal : std::uint8_t {
  none,          // taken
  closed,        // close() began, or the engine stopped (Submitted::reason says why)
  invalid,       // no id, or the body is not a request (not JSON, no model ...)
  duplicate_id,  // a request with this id is not completed yet
  full,          // ClientOptions::max_outstanding requests are not completed yet
};
[[nodiscard]] std::string_view to_string(Refusal refusal) noexcept;

struct Submitted {
  Refusal refusal = Refusal::none;
  std::string reason;  // words for a refusal; empty when taken
  [[nodiscard]] bool accepted() const noexcept { return refusal == Refusal::none; }
  explicit operator bool() const noexcept { return accepted(); }
};

struct Completion {
  // What a line of the JSONL output carries (format_output_line() in core/batch_io.hpp
  // writes it as one): custom_id (the Submission's id), status_code, request_id, body,
  // usage, attempts, error (ErrorKind), error_message, latency_seconds.
  Outcome outcome;
  std::chrono::nanoseconds queued{0};  // from submit() to the first send (0: never sent)
  std::chrono::nanoseconds total{0};   // from submit() to the outcome
};

struct ClientOptions {
  // What the file job has (base URL, credentials, limits, retries, breaker, max_in_flight,
  // transport and its seams, the hooks). Its input, output, journal and ordering fields
  // are the Client's business: source, input_path, output_path, journal_path,
  // record_outcomes, ordered, retry_failed, overwrite, lookahead, extra_sinks and progress
  // are ignored.
  EngineOptions engine;
  // Empty: the journal lives in memory. Else a journal file for this Client alone, locked
  // while it runs (a second Client or `floodgate run` on it is refused).
  std::string journal_path;
  // Requests taken and not completed yet, at most (then submit() refuses with `full`).
  std::size_t max_outstanding = 100'000;
  // Set: every Completion goes here and the queue stays empty. Called on the engine's
  // thread, or on the caller's for a request cancelled before the engine took it (inside
  // cancel()) or at close(): keep it short, never block in it, never call close() from it.
  std::function<void(Completion&&)> on_complete;
  // Called on the engine's thread right before a request's first attempt is sent (the
  // limiter and engine.admit let it go), with the caller's id; once per request, never for
  // one that completes unsent. What is submitted and not sent yet is the caller's to count
  // (the gateway hands the engine a request per lane only as one leaves: gateway/lanes.hpp).
  // The hooks of `engine` see the engine's own key as Request::custom_id, not this id. Keep
  // it short; never call close() from it.
  std::function<void(const std::string& id)> on_sent;
  // The engine's warnings and errors, in engine.describe's words (without it: the event's
  // name, e.g. "outage_began"); null: none. Progress lines are never written.
  std::FILE* messages = nullptr;
  Clock* clock = nullptr;  // null: the steady clock
  // Driven: the Client starts no thread; the caller's own event loop runs the engine's loop
  // a turn at a time (Engine::turn), so a request admitted at once goes out on the thread
  // that submitted it, with no hop to another thread and back. submit() and cancel() take
  // a turn themselves; call drive() when the transport has answers (a transport of the
  // caller's, which hands them over in its poll()) and when the time on_next_turn gave
  // has come (arm a timer for it: pace slots, retry delays, deadlines; it is at most 250 ms
  // away). One thread turns the engine at a time: a call that meets another thread's turn
  // (or a callback's own call, made inside a turn) leaves the work to that turn, which takes
  // one more. Callbacks (on_complete, on_sent, on_next_turn, the engine's hooks) run on the
  // thread that turns: never call close() or destroy the Client from one (the turn it is in
  // would wait for itself). close(drain) waits for the transport's answers in its turns:
  // never call it from the thread that must deliver them. A turn gives its thread back after
  // a bounded number of passes, asking on_next_turn for the rest at once.
  bool driven = false;
  // Driven only: after each turn, on the thread that turned, when the next turn is due at
  // the latest (on this Client's clock). Keep it short: arm a timer.
  std::function<void(TimePoint)> on_next_turn;
};

// How close() ends the requests not completed yet.
enum class CloseMode {
  drain,          // every request taken runs to its outcome
  cancel_queued,  // those in flight finish; the others are cancelled, unsent
  abort,          // everything not finished is cancelled, transfers in flight aborted
};

class Client {
 public:
  // Starts the engine's thread. Throws floodgate::Error for a bad configuration (a bad base
  // URL, a journal file locked by another process ...).
  explicit Client(ClientOptions options);
  ~Client();  // close(CloseMode::abort) unless closed
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Takes a request, or says why not; thread-safe, never blocks on the network. The body is
  // checked here, on the caller's thread (strict JSON, a model).
  Submitted submit(Submission submission);

  // Gives up the request with this id; thread-safe. True when it was not completed yet: its
  // Completion says cancelled (at once, inside this call, when the engine had not taken
  // it yet; else from the engine's thread), unless it finished first or is the breaker's
  // probe (answers are what the breaker waits for). False: unknown or completed.
  bool cancel(std::string_view id);

  // The completion queue (empty when ClientOptions::on_complete is set): moves up to `max`
  // completions into `out` (appended), oldest first, and returns how many; never blocks.
  std::size_t poll(std::vector<Completion>& out, std::size_t max = static_cast<std::size_t>(-1));
  // Readable (level-triggered) while the queue holds a completion; owned by the Client.
  [[nodiscard]] int completion_fd() const noexcept;
  // Blocks until the queue holds a completion or `timeout` passes; true when it holds one.
  bool wait(std::chrono::milliseconds timeout);

  // Driven (ClientOptions::driven): turns the engine until nothing is left to do now, on the
  // caller's thread (or leaves it to the thread turning it already). Thread-safe; a no-op
  // once the engine is over, and in a Client that is not driven.
  void drive();

  // Requests taken and not completed yet.
  [[nodiscard]] std::size_t outstanding() const;

  // Refuses new requests (Refusal::closed), ends the others as `mode` says, joins the
  // engine's thread and returns its summary (attempts, 429s, tokens ...). Idempotent: a
  // second call returns the same summary.
  RunSummary close(CloseMode mode = CloseMode::drain);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace floodgate::engine
