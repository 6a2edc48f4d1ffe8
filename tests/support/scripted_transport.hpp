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

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
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
  // The most requests in flight at once so far.
  [[nodiscard]] std::size_t max_in_flight() const noexcept { return max_in_flight_; }
  // A bound on the engine's loop: poll() throws after this many calls (a test that would
  // loop for ever in manual time fails instead).
  void set_max_polls(std::size_t n) noexcept { max_polls_ = n; }

  // The transport's side (ScriptedTransport forwards here).
  void submit(http::HttpRequest request);
  std::size_t poll(std::chrono::milliseconds timeout, std::vector<http::HttpResponse>& finished);
  void cancel_all() noexcept { due_.clear(); }
  [[nodiscard]] std::size_t in_flight() const noexcept { return due_.size(); }

 private:
  ManualClock& clock_;
  Script script_;
  std::vector<SentRequest> sent_;
  std::multimap<TimePoint, http::HttpResponse> due_;  // by completion time
  std::size_t max_in_flight_ = 0;
  std::size_t polls_ = 0;
  std::size_t max_polls_ = 1'000'000;
};

}  // namespace floodgate::test
