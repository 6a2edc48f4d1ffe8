#pragma once
// The gateway's HTTP client to its upstream (private to src/gateway): Beast/Asio on the
// event loop of the client connection it serves, so that a call is one coroutine from the
// client's request to the last byte of its answer:
//   - the request goes upstream with the gateway's key (the client's Authorization, Host,
//     hop-by-hop headers, Accept-Encoding and x-floodgate-* stay behind), its body either
//     from memory (a JSON body the gateway read, perhaps rewritten) or read from the client
//     socket piece by piece as it is written upstream (multipart uploads: never held whole;
//     the client's Content-Length, or chunked when it had none);
//   - the answer is relayed as it arrives: status and headers (hop-by-hop ones and cookies
//     dropped), then each piece of the body as soon as it is read (Content-Length kept when
//     the bytes are unchanged, chunked otherwise); server-sent events go through an SseRelay
//     (relay.hpp) that notes usage and, when the gateway asked for usage the client did not,
//     removes it;
//   - a 401 is never relayed, on any route: it is about the gateway's own key, and OpenAI's
//     words for it name part of that key; it is read whole (call.held) and the caller
//     answers the client with an error of the gateway's own;
//   - once the request is sent, the client socket is watched: a client that hangs up (end of
//     stream, not a pipelined request) closes the upstream connection, which ends the call
//     upstream at once, queued bytes and all;
//   - connections are kept per event-loop thread for reuse (HTTP/1.1 keep-alive); a pooled
//     one the upstream has closed meanwhile is seen (a non-blocking peek) and dropped before
//     use, and a request is never sent twice: a failure is the caller's to answer (502).
// https:// upstreams go through OpenSSL (peer and host name verified, SNI).

// <utility> first: Boost 1.74's asio/awaitable.hpp uses std::exchange without including it.
#include <utility>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "floodgate/gateway/relay.hpp"
#include "floodgate/gateway/upstream.hpp"

namespace floodgate::gateway::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using StreamedBody = bhttp::request_parser<bhttp::buffer_body>;

struct Conn;

// Idle upstream connections of one event-loop thread; touched only on that thread.
class Pool {
 public:
  Pool();
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  std::vector<std::unique_ptr<Conn>> idle;
};

// Lets the engine give up an attempt from another thread: what it posts to the call's
// executor closes the upstream connection (set while the call has one).
struct Abort {
  beast::tcp_stream* upstream = nullptr;
  bool requested = false;
};

// The statuses the engine may retry (engine/classifier: 408, 409, 429, 5xx): an engine
// attempt holds such an answer instead of relaying it.
[[nodiscard]] constexpr bool retryable_status(int status) noexcept {
  return status == 408 || status == 409 || status == 429 || status >= 500;
}
// What an engine attempt holds rather than relays: what the engine may retry, and a 401 (it
// is about the gateway's own key, and OpenAI's words for it name part of that key: every
// call holds a 401, engine attempt or not).
[[nodiscard]] constexpr bool held_status(int status) noexcept { return retryable_status(status) || status == 401; }

// Not relayed to the client: hop-by-hop, framing (the gateway frames its own), cookies.
[[nodiscard]] bool kept_for_client(std::string_view name);

struct Call {
  // The request.
  const bhttp::request_header<>* head = nullptr;  // the client's request line and headers
  bool client_keep_alive = true;                  // the client's request allows a next one
  std::string target;                             // what follows the base URL's path ("/chat/completions?x=1")
  std::string_view body;                          // a body read whole (unless `streamed`)
  std::string body_storage;                       // a rewritten body `body` views
  StreamedBody* streamed = nullptr;               // or the client's body, still in its socket
  bool strip_usage = false;                       // an SSE answer loses the usage the gateway asked for
  std::vector<std::pair<std::string, std::string>> own_headers;  // added to the answer
  // Every call: a 401 is read whole (up to kHeldBodyCap, else an error) into held_body and
  // not relayed. An engine attempt: a body read whole (not `streamed`) whose answer has a
  // held_status() is too (up to kHeldBodyCap; a larger one is relayed, but for a 401); every
  // answer's headers are kept in upstream_headers; a relayed error's body (not events, up to
  // kHeldBodyCap) in error_body.
  bool engine_attempt = false;
  std::shared_ptr<Abort> abort;  // engine attempts: the engine's way to close the connection
  static constexpr std::size_t kHeldBodyCap = 1u << 20;

  // What happened.
  int status = 0;               // the upstream's; 0: no answer (error says why, never a key)
  std::string error;
  bool answer_started = false;  // bytes of the answer were written to the client
  bool client_gone = false;     // the client hung up (or its body broke off): the call was cut
  bool body_too_large = false;  // the streamed body passed its parser's limit
  bool keep_alive = false;      // the client connection can take a next request
  std::uint64_t bytes_out = 0;  // body bytes written to the client
  bool request_sent = false;    // the request went upstream whole
  bool timed_out = false;       // --upstream-timeout ended it
  bool held = false;            // the answer was held, not relayed (a 401; an engine attempt's held_status())
  std::string held_body;        // its body
  std::string error_body;       // engine attempt: a relayed non-2xx answer's body (bounded)
  std::vector<std::pair<std::string, std::string>> upstream_headers;  // engine attempt: names lower-cased
  std::optional<Usage> usage;
  std::chrono::nanoseconds elapsed{0};
  // Of that, waiting for the upstream's bytes (its answer's head and body reads): what is
  // not the gateway's own time.
  std::chrono::nanoseconds upstream_wait{0};
};

class Upstream {
 public:
  explicit Upstream(UpstreamOptions options);  // throws floodgate::Error for a bad URL
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  // Sends `call` upstream through a connection of `pool` and relays its answer to `client`.
  // When no byte of an answer was written (call.answer_started false), the caller answers.
  asio::awaitable<void> call(Pool& pool, tcp::socket& client, beast::flat_buffer& client_buffer, Call& call);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace floodgate::gateway::proxy
