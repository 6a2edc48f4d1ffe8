#pragma once
// The transport the gateway gives its engine::Client (EngineOptions::make_transport): the
// engine decides when an attempt goes (its limiter, retry policy, breaker), the gateway's
// own Beast relay (proxy.hpp) sends it, on the event loop of the client connection the call
// belongs to, so every byte of the answer still goes straight to the client as it arrives.
//
//   submit(request)   (in a turn of the engine: the gateway drives its engines on the
//                     connections' threads, engine::ClientOptions::driven) finds the gateway
//                     call by HttpRequest::context (an EngineCall, the Submission's context)
//                     and tells it that attempt `tag` may go: the call posts that to its
//                     connection's executor (no wake-up when that thread is the one turning);
//   finish(response)  (EngineBox, any thread: the connection's, after the attempt) queues
//                     the answer and makes the eventfd readable; the box is shared with the
//                     calls, so an answer that comes after its transport is gone is dropped;
//                     the connection then turns the engine, whose poll() takes it;
//   poll(timeout)     (in a turn) hands over what is queued; only close(drain)'s turns wait
//                     (timeout > 0), on that eventfd, TransportOptions::wake_fd and ready_fd;
//   cancel(tag)       (in a turn) forgets the attempt (its answer, if one comes, is
//                     dropped) and asks its call to close the upstream connection;
//                     cancel_all() does it for every attempt in flight.
// What an attempt reports (server.cpp): an answer the engine may retry (408, 409, 429, 5xx)
// is held whole and not relayed; anything else was relayed, and the engine gets its status,
// every upstream header (lower-cased: the limiter's re-sync) and a JSON body with the usage
// the relay settled (a stream's last chunk, a JSON answer's `usage`).

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "floodgate/http/transport.hpp"

namespace floodgate::gateway {

class EngineCall;

// The attempts in flight and the answers not handed over yet: shared by the transport and
// its calls. Thread-safe.
class EngineBox {
 public:
  EngineBox();
  ~EngineBox();
  EngineBox(const EngineBox&) = delete;
  EngineBox& operator=(const EngineBox&) = delete;
  // The answer of attempt response.tag; dropped when the attempt was cancelled meanwhile.
  void finish(http::HttpResponse response);
  // The attempt is still wanted (not cancelled, not finished).
  [[nodiscard]] bool live(std::uint64_t tag) const;

 private:
  friend class EngineTransport;
  void wakeup() noexcept;
  int event_fd_ = -1;
  mutable std::mutex mu_;
  std::unordered_map<std::uint64_t, std::shared_ptr<EngineCall>> live_;  // under mu_
  std::vector<http::HttpResponse> done_;                                 // under mu_
};

// A gateway call as the transport sees it (the Submission's context). Both are called in a
// turn of the engine (on whichever connection's thread turns it) and must only post work
// to the call's own executor.
class EngineCall {
 public:
  virtual ~EngineCall() = default;
  // Attempt `tag` may go now; its answer comes back through box->finish().
  virtual void start(const std::shared_ptr<EngineBox>& box, std::uint64_t tag) = 0;
  // Attempt `tag` is given up: close its upstream connection (its answer is not wanted).
  virtual void abort(std::uint64_t tag) = 0;
};

class EngineTransport final : public http::Transport {
 public:
  explicit EngineTransport(const http::TransportOptions& options);
  ~EngineTransport() override;
  EngineTransport(const EngineTransport&) = delete;
  EngineTransport& operator=(const EngineTransport&) = delete;

  // Throws floodgate::Error when the request has no EngineCall context (a bug: only the
  // gateway submits to this Client).
  void submit(http::HttpRequest request) override;
  std::size_t poll(std::chrono::milliseconds timeout, std::vector<http::HttpResponse>& finished) override;
  void wakeup() noexcept override;
  void cancel_all() noexcept override;
  bool cancel(std::uint64_t tag) noexcept override;
  [[nodiscard]] std::size_t in_flight() const noexcept override;

 private:
  http::TransportOptions options_;
  std::shared_ptr<EngineBox> box_;
};

}  // namespace floodgate::gateway
