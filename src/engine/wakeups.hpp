#pragma once
// Wakeups: what other threads (and signal handlers) hand the engine's loop, and the pipe
// that wakes its wait (the transport's poll) when they do: stop requests
// (Engine::request_stop(), async-signal-safe: an atomic and a write) and cancels
// (Engine::cancel(), from any thread). The loop takes them once per turn.
//
// No request is missed and the pipe never stays readable for nothing. A cancel pushes its
// id, and writes a byte when none is pending, under the lock; the loop drains the pipe and
// takes the ids under the same lock, so a cancel's byte and its id are always taken
// together. A stop (no lock: it must be async-signal-safe) counts up before its byte: a
// byte drained means its count is seen; a byte written after the drain keeps the pipe
// readable, and since stops are for good the next turn drains again.

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

namespace floodgate::engine {

class Wakeups {
 public:
  Wakeups();  // throws floodgate::Error when the kernel gives no pipe
  ~Wakeups();
  Wakeups(const Wakeups&) = delete;
  Wakeups& operator=(const Wakeups&) = delete;

  // Readable when something was asked (for TransportOptions::wake_fd).
  [[nodiscard]] int fd() const noexcept { return pipe_[0]; }

  void request_stop() noexcept;
  void cancel(std::string custom_id);

  // The loop's side. False (and no system call) when nothing is pending; else `stops` is the
  // number of stop requests so far (it only grows) and `cancels` the ids asked since the
  // last call.
  bool take(int& stops, std::vector<std::string>& cancels);

 private:
  void wake() noexcept;

  int pipe_[2] = {-1, -1};
  std::atomic<int> stops_{0};
  std::atomic<bool> cancel_pending_{false};
  std::mutex mu_;  // guards cancels_, and the pipe's cancel byte with them
  std::vector<std::string> cancels_;
};

}  // namespace floodgate::engine
