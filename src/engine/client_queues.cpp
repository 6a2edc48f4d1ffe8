#include "client_queues.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "floodgate/core/error.hpp"
#include "floodgate/core/exit_codes.hpp"

namespace floodgate::engine {

ReadyFlag::ReadyFlag() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw Error("cannot create an eventfd: " + std::string(std::strerror(errno)), exit_code::internal);
}

ReadyFlag::~ReadyFlag() { ::close(fd_); }

void ReadyFlag::set() noexcept {
  const std::uint64_t one = 1;
  // Cannot fail short of a counter at 2^64-2, which one write per empty -> non-empty never reaches.
  [[maybe_unused]] const ssize_t n = ::write(fd_, &one, sizeof one);
}

void ReadyFlag::clear() noexcept {
  std::uint64_t value = 0;
  [[maybe_unused]] const ssize_t n = ::read(fd_, &value, sizeof value);  // EAGAIN when already clear
}

bool wait_readable(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    const int n = ::poll(&p, 1, static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 1 << 30)));
    if (n >= 0) return n > 0;
    if (errno != EINTR) return false;
  }
}

void CompletionQueue::push(Completion completion) {
  const std::lock_guard lock(mu_);
  const bool was_empty = head_ == items_.size();
  items_.push_back(std::move(completion));
  if (was_empty) ready_.set();
}

std::size_t CompletionQueue::pop(std::vector<Completion>& out, std::size_t max) {
  const std::lock_guard lock(mu_);
  const std::size_t n = std::min(max, items_.size() - head_);
  for (std::size_t i = 0; i < n; ++i) out.push_back(std::move(items_[head_ + i]));
  head_ += n;
  if (head_ == items_.size()) {
    items_.clear();
    head_ = 0;
    ready_.clear();
  } else if (head_ >= 1024 && 2 * head_ >= items_.size()) {
    // A reader that takes a few at a time: drop the taken ones now and then.
    items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  return n;
}

}  // namespace floodgate::engine
