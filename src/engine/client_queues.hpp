#pragma once
// What engine::Client's threads hand each other (include/floodgate/engine/client.hpp):
//   ReadyFlag        an eventfd kept as a level, not a counter: set while a queue holds
//                    something. The rule that keeps it exact without a write per item: a
//                    push onto an empty queue sets it, and only a pop that finds the queue
//                    empty clears it, both under the queue's lock. So a reader woken by the
//                    fd finds an item or clears a flag no push can have set in between, and
//                    a waiter never misses one. The requests on their way to the engine wait
//                    behind one (the engine's source's ready_fd), and so do the completions.
//   CompletionQueue  the engine's thread pushes outcomes, callers pop them (poll()).

#include <chrono>
#include <cstddef>
#include <mutex>
#include <vector>

#include "floodgate/engine/client.hpp"

namespace floodgate::engine {

// An eventfd (non-blocking, close-on-exec) used as a level. Throws floodgate::Error when
// the kernel gives none.
class ReadyFlag {
 public:
  ReadyFlag();
  ~ReadyFlag();
  ReadyFlag(const ReadyFlag&) = delete;
  ReadyFlag& operator=(const ReadyFlag&) = delete;

  [[nodiscard]] int fd() const noexcept { return fd_; }
  void set() noexcept;
  void clear() noexcept;

 private:
  int fd_ = -1;
};

// Waits until `fd` is readable or `timeout` passes (poll(2), EINTR retried); true when readable.
bool wait_readable(int fd, std::chrono::milliseconds timeout);

class CompletionQueue {
 public:
  void push(Completion completion);
  // Moves up to `max` completions into `out`, oldest first; returns how many.
  std::size_t pop(std::vector<Completion>& out, std::size_t max);
  [[nodiscard]] int ready_fd() const noexcept { return ready_.fd(); }

 private:
  std::mutex mu_;
  std::vector<Completion> items_;
  std::size_t head_ = 0;  // items_[head_..] are waiting
  ReadyFlag ready_;
};

}  // namespace floodgate::engine
