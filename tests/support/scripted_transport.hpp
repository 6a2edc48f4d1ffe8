#pragma once
// A fake server for unit tests of the engine: an http::Transport that answers every request
// from a script, on a ManualClock, with no socket and no sleeping.
//
//   ManualClock clock;
//   ScriptedServer server(clock, [](const SentRequest& r, std::size_t i) {
//     return i == 0 ? ScriptedReply::status_json(429, kRateLimited, {{"retry-after", "7"}}) : ScriptedReply::ok();
//   });
//   options.make_transport = server.factory();
//   Engine engine(std::move(options), clock);
//
// Time: a reply completes `latency` after its submit. poll(timeout) is the only place the
// engine waits, so that is where time passes: it jumps the clock to the earliest reply due
// within `timeout` and returns every reply due by then, or, when none is, advances the clock
// by the whole `timeout` (the wait the real transport would have done). The engine's loop
// thus runs at full speed through minutes of manual time.
//
// The server outlives the transports it makes (the engine owns its transport): keep it in
// the test and read sent() after run().
//
// Manual time (use_manual_time(), for an engine on a thread of its own: engine::Client):
// time passes only when the test says so (advance()). poll() returns the replies due by
// the clock; when none is, it blocks (on the engine's wake and ready fds and the test's
// advance()) instead of moving the clock. settle() waits until the engine's loop blocks
// with nothing left to do at the current time, so that what the test checks or does next
// meets a known state: nothing in the test depends on how fast either thread runs.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "floodgate/core/clock.hpp"
#include "floodgate/http/transport.hpp"

namespace floodgate::test {

struct ScriptedReply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;
  // none: an HTTP answer. connection: no answer, never connected (refused). timeout: no
  // answer within the attempt's time (request_sent: the server took the request first).
  http::TransportError error = http::TransportError::none;
  bool request_sent = false;
  Duration latency = std::chrono::milliseconds(100);

  // A 200 chat completion with usage (prompt 10, completion 5).
  static ScriptedReply ok();
  static ScriptedReply status_json(int status, std::string body, std::vector<std::pair<std::string, std::string>> headers = {});
  // A 429 rate_limit_exceeded, with these headers (e.g. {"retry-after", "7"}).
  static ScriptedReply rate_limited(std::vector<std::pair<std::string, std::string>> headers = {});
  static ScriptedReply insufficient_quota();
  static ScriptedReply connection_refused();
};

struct SentRequest {
  std::uint64_t tag = 0;
  std::string url;
  std::string body;
  std::string client_request_id;  // the x-client-request-id header
  TimePoint at{};                 // the clock when submitted
};

class ScriptedServer {
 public:
  // `index`: 0 for the first request submitted, 1 for the next ...
  using Script = std::function<ScriptedReply(const SentRequest& request, std::size_t index)>;

  ScriptedServer(ManualClock& clock, Script script);
  ~ScriptedServer();
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  // For EngineOptions::make_transport.
  [[nodiscard]] std::function<std::unique_ptr<http::Transport>(const http::TransportOptions&)> factory();

  [[nodiscard]] const std::vector<SentRequest>& sent() const noexcept { return sent_; }
  // A copy of sent(), safe while the engine runs on another thread.
  [[nodiscard]] std::vector<SentRequest> sent_copy() const;
  // The most requests in flight at once so far.
  [[nodiscard]] std::size_t max_in_flight() const noexcept { return max_in_flight_; }

  // ---- manual time (see above) ----
  // Before the engine starts.
  void use_manual_time() noexcept { manual_ = true; }
  // Moves the clock on and wakes the engine's poll().
  void advance(Duration d);
  // Blocks until the engine waits in poll() with none of its fds readable and no reply due
  // (true), or `limit` of real time passes (false: the test fails on it).
  [[nodiscard]] bool settle(std::chrono::milliseconds limit = std::chrono::seconds(20));
  // Replies not delivered yet (in flight at the server).
  [[nodiscard]] std::size_t pending() const;
  // A bound on the engine's loop: poll() throws after this many calls (a test that would
  // loop for ever in manual time fails instead).
  void set_max_polls(std::size_t n) noexcept { max_polls_ = n; }

  // The transport's side (ScriptedTransport forwards here).
  void submit(http::HttpRequest request);
  std::size_t poll(std::chrono::milliseconds timeout, std::vector<http::HttpResponse>& finished);
  void cancel_all() noexcept;
  // Drops the transfer of this tag (its reply never comes); false when none is pending.
  bool cancel(std::uint64_t tag) noexcept;
  [[nodiscard]] std::size_t in_flight() const noexcept { return pending(); }
  // The fds the engine's poll() waits on in manual time (TransportOptions::wake_fd, ready_fd).
  void watch(int wake_fd, int ready_fd) noexcept;

 private:
  ManualClock& clock_;
  Script script_;
  std::vector<SentRequest> sent_;
  std::multimap<TimePoint, http::HttpResponse> due_;  // by completion time
  std::size_t max_in_flight_ = 0;
  std::size_t polls_ = 0;
  std::size_t max_polls_ = 1'000'000;

  // Manual time: the engine's thread and the test's meet here.
  std::size_t take_due(std::vector<http::HttpResponse>& finished);  // mu_ held
  [[nodiscard]] bool fds_readable() const;
  bool manual_ = false;
  mutable std::mutex mu_;  // guards sent_, due_ and waiting_
  std::condition_variable waits_;
  bool waiting_ = false;            // the engine blocks in poll()
  std::uint64_t wait_count_ = 0;    // how many times it began to
  int wake_fd_ = -1;
  int ready_fd_ = -1;
  int kick_fd_ = -1;                // an eventfd: advance() wakes the engine's poll()
};

}  // namespace floodgate::test
