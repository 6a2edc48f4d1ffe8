#include "support/scripted_transport.hpp"

#include <algorithm>
#include <stdexcept>

namespace floodgate::test {
namespace {

class ScriptedTransport final : public http::Transport {
 public:
  explicit ScriptedTransport(ScriptedServer& server) : server_(server) {}
  void submit(http::HttpRequest request) override { server_.submit(std::move(request)); }
  std::size_t poll(std::chrono::milliseconds timeout, std::vector<http::HttpResponse>& finished) override {
    return server_.poll(timeout, finished);
  }
  void wakeup() noexcept override {}
  void cancel_all() noexcept override { server_.cancel_all(); }
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

ScriptedServer::ScriptedServer(ManualClock& clock, Script script) : clock_(clock), script_(std::move(script)) {}
ScriptedServer::~ScriptedServer() = default;

std::function<std::unique_ptr<http::Transport>(const http::TransportOptions&)> ScriptedServer::factory() {
  return [this](const http::TransportOptions&) { return std::make_unique<ScriptedTransport>(*this); };
}

void ScriptedServer::submit(http::HttpRequest request) {
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

std::size_t ScriptedServer::poll(std::chrono::milliseconds timeout, std::vector<http::HttpResponse>& finished) {
  if (++polls_ > max_polls_) throw std::runtime_error("ScriptedServer: the engine polled more than the test's bound");
  const TimePoint now = clock_.now();
  const TimePoint until = now + timeout;
  if (due_.empty() || due_.begin()->first > until) {
    clock_.set(until);  // the whole wait, nothing answered
    return 0;
  }
  if (due_.begin()->first > now) clock_.set(due_.begin()->first);
  std::size_t n = 0;
  while (!due_.empty() && due_.begin()->first <= clock_.now()) {
    finished.push_back(std::move(due_.begin()->second));
    due_.erase(due_.begin());
    ++n;
  }
  return n;
}

}  // namespace floodgate::test
