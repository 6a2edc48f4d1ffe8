#pragma once
// Upstream: where the gateway sends what its lanes admitted. submit() is thread-safe and
// never blocks on the network; each request gets exactly one call of its Done, on the
// upstream's own thread (keep it short: the server posts it to the connection's loop).
//
// PLACEHOLDER (issue 16 groundwork): TransportUpstream sends each request once through the
// project's libcurl http::CurlTransport on a thread of its own: no limiter, no retries, no
// pacing, the whole answer buffered (a streamed answer arrives in one piece). It exists so
// that the HTTP front can be built and tested end to end before issue 14's engine::Client
// is on main. The Client replaces it: same shape (submit from any thread, one completion
// each, cancel), with the engine's limiter, retry policy and journal behind it; the lanes
// (lanes.hpp) then pull against the engine's room instead of this in-flight cap.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace floodgate::gateway {

struct UpstreamRequest {
  std::string target;                       // "/chat/completions?x=1": the path after the base URL's /v1
  std::vector<std::string> headers;         // "Name: value" lines of the client's worth passing on
  std::shared_ptr<const std::string> body;  // null: a GET
};

struct UpstreamResponse {
  int status = 0;               // 0: no answer (error_message says why; never names a key)
  std::string error_message;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
  std::string body;
  std::chrono::nanoseconds elapsed{0};
};

class Upstream {
 public:
  using Done = std::function<void(UpstreamResponse)>;
  virtual ~Upstream() = default;
  virtual void submit(UpstreamRequest request, Done done) = 0;
};

struct TransportUpstreamOptions {
  std::string base_url;      // "https://api.openai.com/v1" (OPENAI_BASE_URL's form)
  std::string api_key;       // sent as "Authorization: Bearer ..."; never logged
  std::string organization;  // OpenAI-Organization, when set
  std::string project;       // OpenAI-Project, when set
  std::chrono::milliseconds timeout{600'000};
};

class TransportUpstream final : public Upstream {
 public:
  explicit TransportUpstream(TransportUpstreamOptions options);
  // Stops the thread; requests not answered yet are dropped (their Done is never called).
  ~TransportUpstream() override;
  TransportUpstream(const TransportUpstream&) = delete;
  TransportUpstream& operator=(const TransportUpstream&) = delete;

  void submit(UpstreamRequest request, Done done) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace floodgate::gateway
