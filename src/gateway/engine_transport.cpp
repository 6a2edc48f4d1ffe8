#include "engine_transport.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "floodgate/core/error.hpp"

namespace floodgate::gateway {

EngineBox::EngineBox() {
  event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) throw Error(std::string("cannot create the gateway's engine eventfd: ") + std::strerror(errno));
}

EngineBox::~EngineBox() { ::close(event_fd_); }

void EngineBox::finish(http::HttpResponse response) {
  {
    const std::lock_guard lock(mu_);
    if (live_.erase(response.tag) == 0) return;  // cancelled meanwhile
    done_.push_back(std::move(response));
  }
  wakeup();
}

bool EngineBox::live(std::uint64_t tag) const {
  const std::lock_guard lock(mu_);
  return live_.contains(tag);
}

void EngineBox::wakeup() noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(event_fd_, &one, sizeof one);
}

EngineTransport::EngineTransport(const http::TransportOptions& options)
    : options_(options), box_(std::make_shared<EngineBox>()) {}

EngineTransport::~EngineTransport() = default;

void EngineTransport::submit(http::HttpRequest request) {
  auto call = std::static_pointer_cast<EngineCall>(request.context);
  if (!call) throw Error("the gateway's engine got a request without its call (a bug)");
  {
    const std::lock_guard lock(box_->mu_);
    box_->live_[request.tag] = call;
  }
  call->start(box_, request.tag);
}

std::size_t EngineTransport::poll(std::chrono::milliseconds timeout, std::vector<http::HttpResponse>& finished) {
  EngineBox& b = *box_;
  bool ready = false;
  {
    const std::lock_guard lock(b.mu_);
    ready = !b.done_.empty();
  }
  if (!ready && timeout.count() > 0) {
    pollfd fds[3]{};
    nfds_t n = 0;
    for (const int fd : {b.event_fd_, options_.wake_fd, options_.ready_fd}) {
      if (fd < 0) continue;
      fds[n].fd = fd;
      fds[n].events = POLLIN;
      ++n;
    }
    ::poll(fds, n, static_cast<int>(std::min<std::int64_t>(timeout.count(), 1 << 30)));
  }
  std::uint64_t drained = 0;
  while (::read(b.event_fd_, &drained, sizeof drained) > 0) {
  }
  const std::lock_guard lock(b.mu_);
  const std::size_t count = b.done_.size();
  for (auto& r : b.done_) finished.push_back(std::move(r));
  b.done_.clear();
  return count;
}

void EngineTransport::wakeup() noexcept { box_->wakeup(); }

void EngineTransport::cancel_all() noexcept {
  std::unordered_map<std::uint64_t, std::shared_ptr<EngineCall>> all;
  {
    const std::lock_guard lock(box_->mu_);
    all.swap(box_->live_);
    box_->done_.clear();
  }
  for (auto& [tag, call] : all) call->abort(tag);
}

bool EngineTransport::cancel(std::uint64_t tag) noexcept {
  std::shared_ptr<EngineCall> call;
  {
    const std::lock_guard lock(box_->mu_);
    const auto it = box_->live_.find(tag);
    if (it == box_->live_.end()) return false;
    call = std::move(it->second);
    box_->live_.erase(it);
  }
  call->abort(tag);
  return true;
}

std::size_t EngineTransport::in_flight() const noexcept {
  const std::lock_guard lock(box_->mu_);
  return box_->live_.size();
}

}  // namespace floodgate::gateway
