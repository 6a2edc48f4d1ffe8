#include "support/scripted_transport.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

namespace floodgate::test {
namespace {

class ScriptedTransport final : public http::Transport {
 public:
  ScriptedTransport(ScriptedServer& server, const http::TransportOptions& options) : server_(server) {
    server_.watch(options.wake_fd, options.ready_fd);
  }
  void submit(http::HttpRequest request) override { server_.submit(std::move(request)); }
  std::size_t poll(std::chrono::milliseconds timeout, std::vector<http::HttpResponse>& finished) override {
    return server_.poll(timeout, finished);
  }
  void wakeup() noexcept override {}
  void cancel_all() noexcept override { server_.cancel_all(); }
  bool cancel(std::uint64_t tag) noexcept override { return server_.cancel(tag); }
  [[nodiscard]] std::size_t in_flight() const noexcept override { return server_.in_flight(); }

 private:
  ScriptedServer& server_;
};

std::string error_json(const std::string& type, const std::string& code, const std::string& message) {
  return R"({"error":{"message":")" + message + R"(","type":")" + type + R"(","param":null,"code":")" + code + R"("}})";
}

}  // namespace

ScriptedReply ScriptedReply::ok() {
  ScriptedReply r;
  r.body = R"({"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},)"
           R"("finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}})";
  return r;
}

ScriptedReply ScriptedReply::status_json(int status, std::string body, std::vector<std::pair<std::string, std::string>> headers) {
  ScriptedReply r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

ScriptedReply ScriptedReply::rate_limited(std::vector<std::pair<std::string, std::string>> headers) {
  return status_json(429, error_json("requests", "rate_limit_exceeded", "Rate limit reached for requests"), std::move(headers));
}

ScriptedReply ScriptedReply::insufficient_quota() {
  return status_json(429, error_json("insufficient_quota", "insufficient_quota", "You exceeded your current quota"));
}

ScriptedReply ScriptedReply::connection_refused() {
  ScriptedReply r;
  r.status = 0;
  r.error = http::TransportError::connection;
  r.latency = std::chrono::milliseconds(1);
  return r;
}

ScriptedServer::ScriptedServer(ManualClock& clock, Script script)
    : clock_(clock), script_(std::move(script)), kick_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (kick_fd_ < 0) throw std::runtime_error("ScriptedServer: no eventfd");
}

ScriptedServer::~ScriptedServer() { ::close(kick_fd_); }

std::function<std::unique_ptr<http::Transport>(const http::TransportOptions&)> ScriptedServer::factory() {
  return [this](const http::TransportOptions& options) { return std::make_unique<ScriptedTransport>(*this, options); };
}

std::vector<SentRequest> ScriptedServer::sent_copy() const {
  const std::lock_guard lock(mu_);
  return sent_;
}

std::size_t ScriptedServer::pending() const {
  const std::lock_guard lock(mu_);
  return due_.size();
}

void ScriptedServer::watch(int wake_fd, int ready_fd) noexcept {
  const std::lock_guard lock(mu_);
  wake_fd_ = wake_fd;
  ready_fd_ = ready_fd;
}

void ScriptedServer::cancel_all() noexcept {
  const std::lock_guard lock(mu_);
  due_.clear();
}

bool ScriptedServer::cancel(std::uint64_t tag) noexcept {
  const std::lock_guard lock(mu_);
  for (auto it = due_.begin(); it != due_.end(); ++it) {
    if (it->second.tag != tag) continue;
    due_.erase(it);
    return true;
  }
  return false;
}

void ScriptedServer::submit(http::HttpRequest request) {
  const std::lock_guard lock(mu_);
  SentRequest s;
  s.tag = request.tag;
  s.url = request.url;
  if (request.body) s.body = *request.body;
  for (const std::string& h : request.headers) {
    if (h.starts_with("x-client-request-id: ")) s.client_request_id = h.substr(21);
  }
  s.at = clock_.now();
  const ScriptedReply reply = script_(s, sent_.size());
  sent_.push_back(std::move(s));

  http::HttpResponse r;
  r.tag = request.tag;
  r.elapsed = reply.latency;
  r.request_sent = reply.error == http::TransportError::none || reply.request_sent;
  if (reply.error == http::TransportError::none) {
    r.status = reply.status;
    r.http_version = "1.1";
    for (const auto& [name, value] : reply.headers) r.add_header(name, value);
    r.body = reply.body;
  } else {
    r.error = reply.error;
    r.error_message = reply.error == http::TransportError::timeout ? "Operation timed out (scripted)"
                                                                   : "Failed to connect to 127.0.0.1 port 9: Connection refused (scripted)";
  }
  due_.emplace(clock_.now() + reply.latency, std::move(r));
  max_in_flight_ = std::max(max_in_flight_, due_.size());
}

std::size_t ScriptedServer::take_due(std::vector<http::HttpResponse>& finished) {
  std::size_t n = 0;
  while (!due_.empty() && due_.begin()->first <= clock_.now()) {
    finished.push_back(std::move(due_.begin()->second));
    due_.erase(due_.begin());
    ++n;
  }
  return n;
}

bool ScriptedServer::fds_readable() const {
  pollfd fds[3]{};
  nfds_t n = 0;
  for (const int fd : {wake_fd_, ready_fd_, kick_fd_}) {
    if (fd >= 0) fds[n++] = pollfd{fd, POLLIN, 0};
  }
  return ::poll(fds, n, 0) > 0;
}

std::size_t ScriptedServer::poll(std::chrono::milliseconds timeout, std::vector<http::HttpResponse>& finished) {
  if (++polls_ > max_polls_) throw std::runtime_error("ScriptedServer: the engine polled more than the test's bound");
  if (manual_) {
    std::unique_lock lock(mu_);
    if (const std::size_t n = take_due(finished); n > 0 || timeout.count() == 0) return n;
    waiting_ = true;
    ++wait_count_;
    waits_.notify_all();
    lock.unlock();
    pollfd fds[3]{};
    nfds_t nfds = 0;
    for (const int fd : {wake_fd_, ready_fd_, kick_fd_}) {
      if (fd >= 0) fds[nfds++] = pollfd{fd, POLLIN, 0};
    }
    // A safety net only: the test's settle() and its own bounds fail first.
    ::poll(fds, nfds, 60'000);
    std::uint64_t kicks = 0;
    [[maybe_unused]] const ssize_t r = ::read(kick_fd_, &kicks, sizeof kicks);
    lock.lock();
    waiting_ = false;
    return take_due(finished);
  }
  const std::lock_guard lock(mu_);
  const TimePoint now = clock_.now();
  const TimePoint until = now + timeout;
  if (due_.empty() || due_.begin()->first > until) {
    clock_.set(until);  // the whole wait, nothing answered
    return 0;
  }
  if (due_.begin()->first > now) clock_.set(due_.begin()->first);
  return take_due(finished);
}

void ScriptedServer::advance(Duration d) {
  {
    const std::lock_guard lock(mu_);
    clock_.advance(d);
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t w = ::write(kick_fd_, &one, sizeof one);
}

bool ScriptedServer::settle(std::chrono::milliseconds limit) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  std::unique_lock lock(mu_);
  for (;;) {
    // The engine blocks, nothing can wake it, and no reply is due: it is done with `now`.
    const bool due = !due_.empty() && due_.begin()->first <= clock_.now();
    if (waiting_ && !due && !fds_readable()) return true;
    const std::uint64_t seen = wait_count_;
    if (!waits_.wait_until(lock, give_up, [&] { return wait_count_ != seen; })) return false;
  }
}

}  // namespace floodgate::test
