#include "wakeups.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "floodgate/core/error.hpp"
#include "floodgate/core/exit_codes.hpp"

namespace floodgate::engine {

Wakeups::Wakeups() {
  if (::pipe2(pipe_, O_CLOEXEC | O_NONBLOCK) != 0) throw Error("cannot create a pipe: " + std::string(std::strerror(errno)), exit_code::internal);
}

Wakeups::~Wakeups() {
  ::close(pipe_[0]);
  ::close(pipe_[1]);
}

void Wakeups::wake() noexcept {
  const char c = 'w';
  [[maybe_unused]] const ssize_t n = ::write(pipe_[1], &c, 1);  // a full pipe is readable anyway
}

void Wakeups::request_stop() noexcept {
  stops_.fetch_add(1);
  wake();
}

void Wakeups::cancel(std::string custom_id) {
  const std::lock_guard lock(mu_);
  cancels_.push_back(std::move(custom_id));
  if (!cancel_pending_.exchange(true)) wake();  // one byte for all the ids the loop has not taken
}

bool Wakeups::take(int& stops, std::vector<std::string>& cancels) {
  if (stops_.load() == 0 && !cancel_pending_.load()) return false;
  const std::lock_guard lock(mu_);
  char buf[64];
  while (::read(pipe_[0], buf, sizeof buf) > 0) {
  }
  stops = stops_.load();
  if (cancel_pending_.exchange(false)) cancels.swap(cancels_);
  return true;
}

}  // namespace floodgate::engine
