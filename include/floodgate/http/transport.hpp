#pragma once
// Transport: every HTTP exchange of a job; CurlTransport drives them through one libcurl multi handle, driven by one
// event loop on the caller's thread.
//
//   submit(request)            adds a transfer (never blocks, never sends synchronously);
//   poll(timeout, finished)    waits up to `timeout` for socket activity, a timer, or a
//                              wake-up, drives all transfers, and appends every finished
//                              exchange to `finished` (read in a deferred step after
//                              curl_multi_perform, so no callback re-enters the caller);
//   wakeup()                   interrupts a poll() from another thread (curl_multi_wakeup);
//                              a file descriptor given in TransportOptions::wake_fd (a
//                              signal self-pipe) interrupts it too.
//
// Connections are reused across transfers (the multi handle's connection cache) and HTTP/2
// streams are multiplexed over one connection when the server offers h2 (ALPN over TLS).
// Proxies come from the environment (http_proxy, https_proxy, no_proxy), as libcurl does.
// A request body is either bytes (shared, never copied: retries reuse them) or a curl_mime
// built by a callback (multipart uploads streamed from disk with curl_mime_filedata). Every
// response's headers are captured (names lower-cased) for the limiter's re-sync.
//
// A request is sent at most once per submit(): libcurl 7.x silently sends a request again
// on a fresh connection when a reused one dies before any byte of the answer ("Connection
// died, retrying a fresh connect", up to 5 times, Curl_retry_request), and after an HTTP/2
// REFUSED_STREAM or HTTP_1_1_REQUIRED. Such a request may have reached the server, so the
// pre-request callback refuses every send after the first one of a transfer: the transfer
// fails as TransportError::connection ("connection closed after the request was sent")
// and the caller decides whether to send it again, as a new attempt it can count and pace.
//
// Secrets: request headers (Authorization) are never logged. Error texts come from
// libcurl's error buffer, which names hosts and causes, not headers; the optional debug
// trace redacts the Authorization header.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "floodgate/core/clock.hpp"

using CURL = void;
struct curl_mime;

namespace floodgate::http {

struct TransportOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds total_timeout{600'000};  // one attempt, first byte sent to last received
  std::chrono::milliseconds idle_timeout{120'000};   // no byte received for this long: abort
  long max_connections = 0;   // connection cache size; 0 = libcurl's default heuristic
  bool http2 = true;          // negotiate HTTP/2 over TLS and multiplex streams
  int wake_fd = -1;           // when readable, poll() returns (e.g. a signal self-pipe)
  int ready_fd = -1;          // the same, a second one (e.g. a request source's readiness)
  const Clock* clock = nullptr;  // measures each attempt's elapsed time; null: the steady clock
  // Trace of each exchange (request/response headers) to this function, Authorization
  // redacted. Null: no trace.
  std::function<void(std::string_view)> debug_trace;
  std::string user_agent = "floodgate";
  // Largest response body kept (decoded bytes); a larger one (announced by Content-Length
  // or counted as it arrives, chunked or not) ends the transfer as TransportError::too_large,
  // so memory stays below in-flight x cap whatever the server sends. 0 = no cap.
  std::size_t max_response_bytes = 64u << 20;
};

// Builds the multipart body of a transfer on the given easy handle; the Transport frees
// the returned mime when the transfer ends. Return null to fail the transfer.
using MimeBuilder = std::function<curl_mime*(CURL* easy)>;

struct HttpRequest {
  std::uint64_t tag = 0;                      // returned with the response
  std::string url;
  // "Name: value" lines shared by many requests (credentials, Content-Type): built once by
  // the caller and never copied per request; sent before `headers`.
  std::shared_ptr<const std::vector<std::string>> common_headers;
  std::vector<std::string> headers;           // "Name: value", this request's own
  std::shared_ptr<const std::string> body;    // bytes to POST (Content-Type set by the caller)
  MimeBuilder mime;                           // or a multipart body (takes precedence)
  std::optional<std::chrono::milliseconds> total_timeout;  // overrides the option for this one
  std::optional<std::size_t> max_response_bytes;            // overrides the option for this one
  // When set, the response body goes here piece by piece instead of into HttpResponse::body
  // (a download of any size in bounded memory, not counted against max_response_bytes);
  // returning false aborts the transfer.
  std::function<bool(std::string_view)> body_sink;
  // The caller's own, handed through untouched from engine::Submission::context (null for a
  // file's lines): a transport that sends requests it did not build (the gateway's, whose
  // bytes are still in a client's socket) finds by it what the request belongs to.
  std::shared_ptr<void> context;
};

enum class TransportError : std::uint8_t {
  none,        // an HTTP response was received (any status)
  timeout,     // connect, idle or total timeout
  connection,  // refused, reset, DNS, TLS, send/receive failure
  too_large,   // the response body passed the cap (max_response_bytes): not read further
  other,       // anything else libcurl reports
};

struct HttpResponse {
  std::uint64_t tag = 0;
  int status = 0;  // 0 when no response was received
  TransportError error = TransportError::none;
  std::string error_message;  // empty when error == none
  // The server began answering (a status line arrived) before the exchange failed: it was
  // reached and is alive, only slow or cut off (a timeout or a reset mid-body).
  bool answer_started = false;
  // The status line received before a failure (0 when none); `status` stays 0 then.
  int partial_status = 0;
  // The request went out on a connection (libcurl counted bytes of it sent): the server was
  // connected to, so a timeout without an answer is a slow server, not an unreachable one.
  bool request_sent = false;
  // The final response's header lines, names lower-cased and values trimmed, kept in one
  // buffer (two allocations per response rather than two per header line).
  struct HeaderSpan {
    std::uint32_t name_at = 0;
    std::uint32_t name_size = 0;
    std::uint32_t value_at = 0;
    std::uint32_t value_size = 0;
  };
  std::string header_bytes;
  std::vector<HeaderSpan> header_spans;
  std::string body;
  std::chrono::nanoseconds elapsed{0};
  std::string http_version;  // "1.1", "2"

  // The first header with this lower-case name.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view lowercase_name) const noexcept;
  [[nodiscard]] std::size_t header_count() const noexcept { return header_spans.size(); }
  [[nodiscard]] std::string_view header_name(std::size_t i) const noexcept {
    return std::string_view(header_bytes).substr(header_spans[i].name_at, header_spans[i].name_size);
  }
  [[nodiscard]] std::string_view header_value(std::size_t i) const noexcept {
    return std::string_view(header_bytes).substr(header_spans[i].value_at, header_spans[i].value_size);
  }
  // Adds a header line (name lower-cased, both trimmed by the caller).
  void add_header(std::string_view name, std::string_view value);
};

// The seam the engine sends through: CurlTransport below is the real one, a scripted fake
// (tests/support/scripted_transport.hpp) answers from a script on a manual clock. One
// virtual call per submit and per poll, never per byte.
class Transport {
 public:
  virtual ~Transport() = default;

  // Starts a transfer. Throws floodgate::Error only when no transfer can be set up.
  virtual void submit(HttpRequest request) = 0;
  // Drives transfers; waits at most `timeout` when nothing is ready. Finished exchanges are
  // appended to `finished`; returns how many.
  virtual std::size_t poll(std::chrono::milliseconds timeout, std::vector<HttpResponse>& finished) = 0;
  // Interrupts a poll() in progress (callable from any thread).
  virtual void wakeup() noexcept = 0;
  // Aborts every transfer in flight; they are not reported.
  virtual void cancel_all() noexcept = 0;
  // Aborts the transfer of the request with this tag; it is not reported. False when no
  // transfer has the tag (finished, or never submitted), or the transport cannot abort one
  // transfer alone (then it runs to its end and is reported as usual).
  virtual bool cancel(std::uint64_t /*tag*/) noexcept { return false; }

  [[nodiscard]] virtual std::size_t in_flight() const noexcept = 0;
};

// The libcurl multi implementation described at the top of this file.
class CurlTransport final : public Transport {
 public:
  explicit CurlTransport(TransportOptions options = {});
  ~CurlTransport() override;
  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;

  void submit(HttpRequest request) override;
  std::size_t poll(std::chrono::milliseconds timeout, std::vector<HttpResponse>& finished) override;
  void wakeup() noexcept override;
  void cancel_all() noexcept override;
  bool cancel(std::uint64_t tag) noexcept override;
  [[nodiscard]] std::size_t in_flight() const noexcept override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace floodgate::http
