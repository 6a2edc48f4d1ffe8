// <utility> first: Boost 1.74's asio/awaitable.hpp uses std::exchange without including it.
#include <utility>

#include "floodgate/gateway/server.hpp"

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "floodgate/core/error.hpp"
#include "floodgate/core/text.hpp"
#include "floodgate/gateway/metrics.hpp"
#include "floodgate/gateway/routing.hpp"
#include "net/listeners.hpp"

namespace floodgate::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using Request = bhttp::request<bhttp::string_body>;

constexpr std::string_view kLaneHeader = "x-floodgate-lane";

// What the gateway answers a client.
struct Answer {
  int status = 200;  // 499 (as nginx logs it): the client hung up, nothing is written
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

Answer error_answer(int status, std::string_view message, std::string_view type, std::string_view code) {
  return Answer{status, "application/json", openai_error_body(message, type, code), {}};
}

// The upstream's headers a client may see: not the hop-by-hop ones, not those that
// describe the upstream connection's encoding (the transport decoded the body), no cookies.
bool relayed(std::string_view name) {
  static constexpr std::string_view kDropped[] = {"connection", "keep-alive", "transfer-encoding", "content-length",
                                                  "content-encoding", "set-cookie", "upgrade", "te", "trailer",
                                                  "proxy-authenticate", "proxy-connection"};
  for (const auto dropped : kDropped) {
    if (name == dropped) return false;
  }
  return true;
}

std::string_view field(const Request& req, std::string_view name) {
  const auto it = req.find(beast::string_view(name.data(), name.size()));
  return it == req.end() ? std::string_view{} : std::string_view(it->value().data(), it->value().size());
}

// The Bearer token of an Authorization header ("" when there is none).
std::string_view bearer_of(std::string_view authorization) {
  authorization = trim(authorization);
  if (authorization.size() < 7 || !iequals(authorization.substr(0, 7), "bearer ")) return {};
  return trim(authorization.substr(7));
}

// A request waiting for its lane, then for its upstream answer. Touched only on its
// connection's executor: what is decided under Gateway::mu_ reaches it through asio::post,
// which runs after the connection's coroutine has suspended on `timer` (same thread), so no
// wake-up is lost.
struct Waiter {
  explicit Waiter(const asio::any_io_executor& ex) : executor(ex), timer(ex) {}
  enum class State { waiting, admitted, refused, cancelled, answered };
  asio::any_io_executor executor;
  asio::steady_timer timer;
  State state = State::waiting;
  Refusal refusal;
  Duration waited{0};
  UpstreamResponse response;

  static void wake(const std::shared_ptr<Waiter>& w) { w->timer.cancel(); }
};

class Gateway {
 public:
  explicit Gateway(ServeOptions options)
      : options_(std::move(options)),
        clock_(options_.clock != nullptr ? *options_.clock : SteadyClock::instance()),
        lanes_(options_.lanes),
        upstream_(std::make_unique<TransportUpstream>(options_.upstream)) {}

  [[nodiscard]] const ServeOptions& options() const noexcept { return options_; }
  [[nodiscard]] bool stopping() const noexcept { return stopping_; }
  void begin_stop() noexcept { stopping_ = true; }
  [[nodiscard]] std::int64_t active() const noexcept { return active_; }

  // Before the io_contexts go: the upstream thread and every waiter (their timers belong
  // to the contexts).
  void release() {
    upstream_.reset();
    const std::lock_guard lock(mu_);
    waiters_.clear();
  }

  asio::awaitable<Answer> handle(const Request& req, tcp::socket& socket);

  std::atomic<std::int64_t> active_{0};
  std::atomic<std::int64_t> connections_{0};

 private:
  // Waits for the lane: nullopt when admitted, the refusal when refused; the Waiter's state
  // says cancelled when the client hung up meanwhile.
  asio::awaitable<std::optional<Refusal>> wait_for_lane(const std::shared_ptr<Waiter>& w, std::size_t lane,
                                                        tcp::socket& socket);
  void watch_hang_up(const std::shared_ptr<Waiter>& w, TicketId id, tcp::socket& socket);
  asio::awaitable<void> forward(const std::shared_ptr<Waiter>& w, const Request& req);
  // Hands upstream what the room allows and tells the expired; under mu_.
  void pump_locked(TimePoint now);
  void refuse_locked(const Expired& expired);
  Answer relay(const std::shared_ptr<Waiter>& w, std::size_t lane) const;
  void log(const Request& req, const Answer& answer, std::string_view lane, const std::string& key_id,
           const std::shared_ptr<Waiter>& w);

  ServeOptions options_;
  const Clock& clock_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  Lanes lanes_;                                                     // under mu_
  std::unordered_map<TicketId, std::shared_ptr<Waiter>> waiters_;  // under mu_: waiting in a lane
  std::size_t in_flight_ = 0;                                       // under mu_
  TicketId next_id_ = 0;                                            // under mu_
  HttpCounts counts_;                                               // under mu_
  std::mutex log_mu_;
  std::unique_ptr<Upstream> upstream_;
};

void Gateway::pump_locked(TimePoint now) {
  while (in_flight_ < options_.max_in_flight) {
    const auto next = lanes_.pull(now);
    if (!next) break;
    ++in_flight_;
    const auto it = waiters_.find(next->id);
    if (it == waiters_.end()) continue;
    std::shared_ptr<Waiter> w = std::move(it->second);
    waiters_.erase(it);
    asio::post(w->executor, [w, waited = next->waited] {
      w->state = Waiter::State::admitted;
      w->waited = waited;
      Waiter::wake(w);
    });
  }
  for (const auto& expired : lanes_.expire(now)) refuse_locked(expired);
}

void Gateway::refuse_locked(const Expired& expired) {
  const auto it = waiters_.find(expired.id);
  if (it == waiters_.end()) return;
  std::shared_ptr<Waiter> w = std::move(it->second);
  waiters_.erase(it);
  asio::post(w->executor, [w, refusal = expired.refusal] {
    w->state = Waiter::State::refused;
    w->refusal = refusal;
    Waiter::wake(w);
  });
}

// A client that hangs up while its request waits in a lane gives its place back: the socket
// turns readable, and a peek finds the end of the stream (or a reset) rather than a next
// request. Runs on the connection's executor, as the Waiter's state wants.
void Gateway::watch_hang_up(const std::shared_ptr<Waiter>& w, TicketId id, tcp::socket& socket) {
  socket.async_wait(tcp::socket::wait_read, [this, w, id, &socket](boost::system::error_code ec) {
    if (ec || w->state != Waiter::State::waiting) return;
    char byte = 0;
    const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))) return;  // a pipelined request
    const std::lock_guard lock(mu_);
    if (!lanes_.cancel(id)) return;  // admitted or refused meanwhile: that verdict is on its way
    waiters_.erase(id);
    w->state = Waiter::State::cancelled;
    Waiter::wake(w);
  });
}

asio::awaitable<std::optional<Refusal>> Gateway::wait_for_lane(const std::shared_ptr<Waiter>& w, std::size_t lane,
                                                               tcp::socket& socket) {
  TicketId id = 0;
  {
    const std::lock_guard lock(mu_);
    id = ++next_id_;
    if (auto refused = lanes_.enqueue(id, lane, clock_.now())) co_return refused;
    waiters_.emplace(id, w);
    pump_locked(clock_.now());
  }
  watch_hang_up(w, id, socket);
  // The lane's deadline (and a little): then expire() refuses it, if nothing else did.
  w->timer.expires_after(lanes_.config(lane).max_wait + std::chrono::milliseconds(1));
  while (w->state == Waiter::State::waiting) {
    boost::system::error_code ec;
    co_await w->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (w->state != Waiter::State::waiting || ec) continue;
    const std::lock_guard lock(mu_);
    for (const auto& expired : lanes_.expire(clock_.now())) refuse_locked(expired);
    w->timer.expires_after(std::chrono::milliseconds(10));  // its refusal is posted: it cancels this wait
  }
  boost::system::error_code ignored;
  socket.cancel(ignored);  // the hang-up watch
  if (w->state == Waiter::State::refused) co_return w->refusal;
  co_return std::nullopt;
}

asio::awaitable<void> Gateway::forward(const std::shared_ptr<Waiter>& w, const Request& req) {
  UpstreamRequest up;
  const std::string_view target(req.target().data(), req.target().size());
  up.target = std::string(target.substr(3));  // without "/v1": the base URL has it
  for (const std::string_view name : {"content-type", "accept", "openai-beta"}) {
    const auto value = field(req, name);
    if (!value.empty()) up.headers.push_back(std::string(name) + ": " + std::string(value));
  }
  if (req.method() == bhttp::verb::post) up.body = std::make_shared<const std::string>(req.body());
  w->state = Waiter::State::waiting;
  upstream_->submit(std::move(up), [w](UpstreamResponse response) {
    asio::post(w->executor, [w, response = std::move(response)]() mutable {
      w->response = std::move(response);
      w->state = Waiter::State::answered;
      Waiter::wake(w);
    });
  });
  w->timer.expires_at(asio::steady_timer::time_point::max());
  while (w->state != Waiter::State::answered) {
    boost::system::error_code ec;
    co_await w->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

Answer Gateway::relay(const std::shared_ptr<Waiter>& w, std::size_t lane) const {
  const UpstreamResponse& r = w->response;
  Answer answer;
  if (r.status == 0) {
    answer = error_answer(502, "The gateway could not get an answer from the upstream API: " + r.error_message,
                          "server_error", "upstream_error");
  } else {
    answer.status = r.status;
    answer.body = r.body;
    answer.content_type.clear();
    for (const auto& [name, value] : r.headers) {
      if (name == "content-type") {
        answer.content_type = value;
      } else if (relayed(name)) {
        answer.headers.emplace_back(name, value);
      }
    }
  }
  answer.headers.emplace_back(std::string(kLaneHeader), lanes_.config(lane).name);
  return answer;
}

asio::awaitable<Answer> Gateway::handle(const Request& req, tcp::socket& socket) {
  const std::string_view method(req.method_string().data(), req.method_string().size());
  const std::string_view target(req.target().data(), req.target().size());
  const Route route = route_of(method, target);
  std::string key_id = "-";
  std::string_view lane_name = "-";
  std::shared_ptr<Waiter> w;
  Answer answer;

  const auto finish = [&](Answer a) {
    {
      const std::lock_guard lock(mu_);
      ++counts_.responses[{std::string(to_string(route)), a.status}];
    }
    log(req, a, lane_name, key_id, w);
    return a;
  };

  if (route == Route::healthz) {
    co_return finish(stopping_ ? Answer{503, "application/json", R"({"status":"draining"})", {}}
                               : Answer{200, "application/json", R"({"status":"ok"})", {}});
  }
  if (route == Route::metrics) {
    HttpCounts counts;
    std::vector<LaneStats> stats;
    {
      const std::lock_guard lock(mu_);
      counts = counts_;
      counts.upstream_in_flight = static_cast<std::int64_t>(in_flight_);
      stats = lanes_.stats();
    }
    counts.connections = connections_;
    co_return finish(Answer{200, "text/plain; version=0.0.4; charset=utf-8", render_metrics(stats, counts), {}});
  }
  if (route == Route::unknown) {
    const std::string path(target.substr(0, target.find('?')));
    co_return finish(error_answer(404, "Invalid URL (" + std::string(method) + " " + path + ")", "invalid_request_error", ""));
  }

  const std::string_view bearer = bearer_of(field(req, "authorization"));
  const ClientKey* key = nullptr;
  if (options_.keys) {
    key = options_.keys->find(bearer);
    if (key == nullptr) {
      key_id = anonymous_key_id(bearer);
      co_return finish(error_answer(401,
                                    bearer.empty() ? "You didn't provide an API key. This gateway needs one of its client keys "
                                                     "(Authorization: Bearer KEY)."
                                                   : "Incorrect API key provided: this gateway's keys file has no such key.",
                                    "invalid_request_error", bearer.empty() ? "" : "invalid_api_key"));
    }
    key_id = key->log_id;
  } else {
    key_id = anonymous_key_id(bearer);
  }

  w = std::make_shared<Waiter>(co_await asio::this_coro::executor);
  if (!is_paced(route)) {  // models: no limits spent, straight through
    co_await forward(w, req);
    UpstreamResponse& r = w->response;
    {
      const std::lock_guard lock(mu_);
      ++counts_.upstream_responses[r.status];
    }
    answer = relay(w, 0);
    answer.headers.pop_back();  // no lane
    co_return finish(std::move(answer));
  }

  const auto content_type = field(req, "content-type");
  const std::string tier = content_type.find("json") != std::string_view::npos ? service_tier_of(req.body()) : "";
  const auto choice = choose_lane(lanes_, field(req, kLaneHeader), key, tier);
  if (const auto* message = std::get_if<std::string>(&choice)) {
    co_return finish(error_answer(400, *message, "invalid_request_error", ""));
  }
  const std::size_t lane = std::get<LaneChoice>(choice).lane;
  lane_name = lanes_.config(lane).name;

  const auto refusal = co_await wait_for_lane(w, lane, socket);
  if (w->state == Waiter::State::cancelled) co_return finish(Answer{499, "", "", {}});
  if (refusal) {
    const RetryAfter retry = retry_after_values(refusal->retry_after);
    const std::string why = refusal->reason == RefusalReason::queue_full
                                ? "its queue is full (" + std::to_string(refusal->depth) + " waiting)"
                                : "it could not be sent upstream within the lane's wait";
    answer = error_answer(429,
                          "This floodgate gateway's " + std::string(lane_name) + " lane cannot take the request: " + why +
                              ". Please retry after " + retry.seconds + " s.",
                          "requests", "rate_limit_exceeded");
    answer.headers = {{"retry-after", retry.seconds}, {"retry-after-ms", retry.milliseconds},
                      {std::string(kLaneHeader), std::string(lane_name)}};
    co_return finish(std::move(answer));
  }

  co_await forward(w, req);
  {
    const std::lock_guard lock(mu_);
    --in_flight_;
    ++counts_.upstream_responses[w->response.status];
    pump_locked(clock_.now());
  }
  answer = relay(w, lane);
  answer.headers.emplace_back("x-floodgate-queue-ms",
                              std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(w->waited).count()));
  co_return finish(std::move(answer));
}

void Gateway::log(const Request& req, const Answer& answer, std::string_view lane, const std::string& key_id,
                  const std::shared_ptr<Waiter>& w) {
  if (!options_.access_log) return;
  const std::string_view target(req.target().data(), req.target().size());
  std::string line = iso8601_utc(clock_.wall_now());
  line += ' ';
  line += std::string_view(req.method_string().data(), req.method_string().size());
  line += ' ';
  line += target.substr(0, target.find('?'));  // a query string may carry a secret
  line += ' ';
  line += std::to_string(answer.status);
  line += " lane=";
  line += lane;
  line += " key=";
  line += key_id;
  if (w && w->state == Waiter::State::answered) {  // it went upstream
    line += " queued_ms=" + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(w->waited).count());
    line += " upstream_ms=" +
            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(w->response.elapsed).count());
  }
  line += " in=" + std::to_string(req.body().size()) + " out=" + std::to_string(answer.body.size());
  const std::lock_guard lock(log_mu_);
  options_.access_log(line);
}

// Counts a request from its head to its answer, for the drain at shutdown.
class Active {
 public:
  explicit Active(std::atomic<std::int64_t>& n) : n_(n) { ++n_; }
  ~Active() { --n_; }
  Active(const Active&) = delete;
  Active& operator=(const Active&) = delete;

 private:
  std::atomic<std::int64_t>& n_;
};

asio::awaitable<bool> write_answer(tcp::socket& socket, Answer answer, bool keep_alive) {
  bhttp::response<bhttp::string_body> res;
  res.version(11);
  res.result(static_cast<unsigned>(answer.status));
  if (!answer.content_type.empty()) res.set(bhttp::field::content_type, answer.content_type);
  for (const auto& [name, value] : answer.headers) res.insert(name, value);
  res.keep_alive(keep_alive);
  res.body() = std::move(answer.body);
  res.prepare_payload();
  boost::system::error_code ec;
  co_await bhttp::async_write(socket, res, asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec;
}

asio::awaitable<void> session(tcp::socket socket, Gateway& gateway) {
  const Active connection(gateway.connections_);
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  beast::flat_buffer buffer;
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(gateway.options().max_body_bytes);
    co_await bhttp::async_read_header(socket, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (!ec && beast::iequals(parser.get()[bhttp::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await asio::async_write(socket, asio::buffer(kContinue), asio::redirect_error(asio::use_awaitable, ec));
    }
    if (!ec && !parser.is_done()) co_await bhttp::async_read(socket, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == bhttp::error::body_limit) {
      co_await write_answer(socket,
                            error_answer(413, "The request body is larger than this gateway takes (--max-body-bytes " +
                                                  std::to_string(gateway.options().max_body_bytes) + ").",
                                         "invalid_request_error", ""),
                            false);
      break;
    }
    if (ec) {
      if (ec != bhttp::error::end_of_stream && ec != asio::error::eof && ec != asio::error::connection_reset &&
          ec != asio::error::operation_aborted && ec != asio::error::bad_descriptor) {
        co_await write_answer(socket, error_answer(400, "Bad request: not HTTP/1.1 the gateway can read.", "invalid_request_error", ""),
                              false);
      }
      break;
    }
    const Active active(gateway.active_);
    const Request req = parser.release();
    Answer answer = co_await gateway.handle(req, socket);
    if (answer.status == 499) break;  // the client is gone
    const bool keep_alive = req.keep_alive() && !gateway.stopping();
    if (!co_await write_answer(socket, std::move(answer), keep_alive) || !keep_alive) break;
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
  socket.close(ec);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, Gateway& gateway) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!acceptor.is_open() || gateway.stopping()) co_return;
      if (ec == asio::error::no_descriptors) {
        asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(10));
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket), gateway), asio::detached);
  }
}

// After SIGINT/SIGTERM: polls until no request is being answered or the grace is over.
asio::awaitable<void> drain(Gateway& gateway, std::vector<std::unique_ptr<asio::io_context>>& contexts) {
  const auto until = std::chrono::steady_clock::now() + gateway.options().grace;
  asio::steady_timer tick(co_await asio::this_coro::executor);
  while (gateway.active() > 0 && std::chrono::steady_clock::now() < until) {
    tick.expires_after(std::chrono::milliseconds(20));
    boost::system::error_code ec;
    co_await tick.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  for (auto& ctx : contexts) ctx->stop();
}

}  // namespace

int run_gateway(ServeOptions options, const std::function<void(const std::string&)>& on_listening) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(options.host, ec);
  if (ec) throw Error("invalid --host '" + options.host + "'");
  if (!address.is_loopback() && !options.keys) {
    throw Error("--host " + options.host + " is not a loopback address: give --keys FILE, so that only your clients "
                "can spend the upstream key");
  }
  const std::string host = address.is_v6() ? "[" + options.host + "]" : options.host;
  const std::uint16_t port = options.port;
  const unsigned threads = options.threads;
  // Declared first, so it outlives the contexts: their coroutines refer to it.
  Gateway gateway(std::move(options));
  net::Listeners listeners = net::listen_per_thread(address, host, port, threads);
  auto& contexts = listeners.contexts;
  auto& acceptors = listeners.acceptors;

  asio::signal_set signals(*contexts[0], SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code e, int) {
    if (e) return;
    gateway.begin_stop();
    for (std::size_t i = 0; i < contexts.size(); ++i) {
      asio::post(*contexts[i], [acceptor = acceptors[i].get()] {
        boost::system::error_code ignored;
        acceptor->close(ignored);
      });
    }
    asio::co_spawn(*contexts[0], drain(gateway, contexts), asio::detached);
  });
  for (std::size_t i = 0; i < contexts.size(); ++i) {
    asio::co_spawn(*contexts[i], accept_loop(*acceptors[i], gateway), asio::detached);
  }

  on_listening("http://" + host + ":" + std::to_string(listeners.port) + "/v1");
  net::run_all(contexts);
  gateway.release();
  acceptors.clear();
  contexts.clear();  // their coroutines go, while the gateway they refer to is still there
  return 0;
}

}  // namespace floodgate::gateway
