#pragma once
// `floodgate serve`: the gateway's HTTP front on Boost.Beast + Asio, shaped as the
// simulator's server: one io_context per thread, each with its own acceptor on the same
// port (SO_REUSEPORT), every connection a coroutine, no thread per connection.
//
// Each request:
//   1. is routed (routing.hpp): /healthz, /metrics, the OpenAI paths, the rest of /v1/
//      (proxied as is); anything else gets OpenAI's 404 ("Invalid URL ..."). A JSON body is
//      read whole (up to max_body_bytes; larger: 413); an audio upload or a proxied body
//      stays in the socket and is streamed upstream once the request is admitted;
//   2. is authorised: with a keys file its Bearer key must be in it (else 401), without one
//      any key is accepted (serve refuses to start without a keys file off loopback);
//   2b. if it spends the upstream's limits: a key whose budget is spent (its recorded cost
//      plus the worst case of its calls in flight) gets 429 insufficient_quota; a key over a
//      sub-limit (keys file: requests/tokens per minute, or shares of the upstream's) waits
//      for it as long as its lane's max_wait allows, else 429 with retry-after (key_limits.hpp);
//   3. if it spends the upstream's limits, waits in its lane (lanes.hpp) until the lanes
//      hand it upstream, or is answered 429 in OpenAI's shape with retry-after when its
//      lane is full or its wait reaches the lane's deadline;
//   4. goes upstream (proxy.hpp; the Authorization header is the gateway's own key, the
//      client's never leaves) and its answer is relayed as it arrives with the upstream's
//      status and headers (hop-by-hop ones dropped), plus x-floodgate-lane; a streamed chat
//      answer event by event (relay.hpp: usage asked for upstream, settled from the last
//      chunk, removed when the client did not ask). A client that hangs up meanwhile ends
//      the upstream call (its connection is closed).
// One access-log line per request (no key, no query string: a key is shown by its log id),
// and, after the key check, one row in the usage store (usage.hpp). GET /v1/floodgate/usage
// shows the totals per key: a key its own row; every row to a key with "sees_all_usage",
// and to every caller without a keys file (loopback only).
// SIGINT/SIGTERM: stop accepting, /healthz answers 503, keep-alive ends after the answer
// in progress, and the process waits up to `grace` for requests queued or in flight.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/core/clock.hpp"
#include "floodgate/cost/prices.hpp"
#include "floodgate/gateway/keys.hpp"
#include "floodgate/gateway/lanes.hpp"
#include "floodgate/gateway/upstream.hpp"
#include "floodgate/gateway/usage.hpp"

namespace floodgate::engine {
struct EngineOptions;
}

namespace floodgate::gateway {

struct ServeOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  unsigned threads = 0;  // 0: one per core
  UpstreamOptions upstream;
  std::vector<LaneConfig> lanes = default_lanes();
  std::optional<ClientKeys> keys;  // none: any key, loopback only
  // Non-streamed JSON calls through issue 14's engine::Client (its limiter and retry
  // policy: an upstream 429 waits in the gateway); false: everything through the relay.
  bool engine = true;
  // Calls upstream at once at most: the engine's max_in_flight, and the relay's room (the
  // lanes hand the engine requests as it sends them: Room in lanes.hpp). A streamed answer
  // holds its slot to its last byte: at 64, sixty-four 20-second streams capped a gateway at
  // 192 calls a minute whatever the limit. The limiter paces requests and tokens; this only
  // bounds concurrency (and memory: a call in flight holds little, its answer is relayed).
  std::size_t max_in_flight = 512;
  // Fills the engine's options the gateway does not decide (the upstream's limits, their
  // pacing and charge, the token estimate, retries and the breaker: `serve`'s --rpm, --tpm,
  // --limits ...). Called with base_url and credentials already set; the gateway then sets
  // its own (max_in_flight, no job-level stops for an upstream that is down, the timeout,
  // the completions). Null: the engine's defaults (limits learned from the upstream's
  // x-ratelimit-* headers). May throw floodgate::Error before the gateway listens.
  std::function<void(engine::EngineOptions&)> configure_engine;
  // After the engine stopped on the upstream's insufficient_quota or a refusal of the
  // gateway's key, paced calls get that error at once for this long; then a fresh engine
  // sends the next one upstream to check again (--stop-recheck).
  Duration stop_recheck = std::chrono::seconds(60);
  Duration grace = std::chrono::seconds(30);
  std::uint64_t max_body_bytes = 32ull << 20;
  // One line per request, without its newline; null: no access log. Called from the
  // server's threads, one call at a time.
  std::function<void(std::string_view)> access_log;
  // Every call after the key check is recorded here (usage.hpp): /v1/floodgate/usage, the
  // budgets; null: nothing recorded, no budget enforced. The caller opens it (so a place
  // that cannot be written fails at start) and closes it after run_gateway returns.
  std::shared_ptr<UsageStore> usage;
  const cost::PriceTable* prices = nullptr;  // the calls' cost; null: the built-in table
  // A line for the operator, once per occurrence (e.g. a key's share of an upstream limit
  // that is not known); null: dropped.
  std::function<void(std::string_view)> notice;
  const Clock* clock = nullptr;  // the lanes' time; null: the steady clock
};

// Binds, calls `on_listening(base_url)` once ("http://127.0.0.1:PORT/v1"), serves until
// SIGINT/SIGTERM, drains and returns the exit code (0). Throws floodgate::Error when it
// cannot bind, or for a configuration that cannot be served (no keys file off loopback).
int run_gateway(ServeOptions options, const std::function<void(const std::string&)>& on_listening);

}  // namespace floodgate::gateway
