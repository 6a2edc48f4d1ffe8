// The gateway's overhead benchmark client (bench/gateway/run.sh): an open-loop load generator
// over HTTP/1.1 keep-alive connections, and a holder of idle keep-alive connections.
//
//   loadgen rate URL BODY_FILE RATE SECONDS CONNECTIONS [AUTH_KEY]
//     POSTs BODY_FILE to URL at RATE requests/s for SECONDS (the first second not counted),
//     over up to CONNECTIONS connections opened beforehand. Open loop: each request has its
//     scheduled time and its latency is counted from it, so a stall delays and counts every
//     request behind it (no coordinated omission). Prints one JSON line: sent, ok, errors,
//     p50_ms, p90_ms, p99_ms, p999_ms, max_ms, achieved rate.
//   loadgen idle URL CONNECTIONS SECONDS
//     opens CONNECTIONS connections, sends one GET URL on each (so each is accepted and idle in
//     keep-alive), prints {"open": N} and holds them for SECONDS; then checks each is still open.
// One thread, Boost.Asio; nothing here is part of floodgate.
#include <utility>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>
#include <string>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Url {
  std::string host, port, target;
};

Url parse(const std::string& url) {
  const std::string rest = url.substr(url.find("://") + 3);
  const std::string authority = rest.substr(0, rest.find('/'));
  const auto colon = authority.rfind(':');
  return Url{authority.substr(0, colon), colon == std::string::npos ? "80" : authority.substr(colon + 1),
             rest.substr(authority.size())};
}

struct Conn {
  explicit Conn(asio::io_context& io) : socket(io) {}
  tcp::socket socket;
  beast::flat_buffer buffer;
};

struct Load {
  asio::io_context io;
  Url url;
  std::string request;  // the whole request, written as is
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<Conn*> idle;
  std::deque<Clock::time_point> pending;  // scheduled, waiting for a connection
  std::vector<double> latencies_ms;
  Clock::time_point count_from;
  long sent = 0, ok = 0, errors = 0, outstanding = 0;
};

asio::awaitable<void> serve(Load& load, Conn* c, Clock::time_point scheduled) {
  for (;;) {
    boost::system::error_code ec;
    co_await asio::async_write(c->socket, asio::buffer(load.request), asio::redirect_error(asio::use_awaitable, ec));
    bhttp::response<bhttp::string_body> res;
    if (!ec) co_await bhttp::async_read(c->socket, c->buffer, res, asio::redirect_error(asio::use_awaitable, ec));
    const auto now = Clock::now();
    --load.outstanding;
    if (ec || res.result_int() != 200) {
      ++load.errors;
      if (ec) co_return;  // the connection is gone
    } else if (scheduled >= load.count_from) {
      ++load.ok;
      load.latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - scheduled).count());
    }
    if (load.pending.empty()) {
      load.idle.push_back(c);
      co_return;
    }
    scheduled = load.pending.front();
    load.pending.pop_front();
  }
}

asio::awaitable<void> schedule(Load& load, double rate, double seconds) {
  const auto start = Clock::now() + std::chrono::milliseconds(100);
  load.count_from = start + std::chrono::seconds(1);
  const long total = static_cast<long>(rate * (seconds + 1));
  asio::steady_timer timer(load.io);
  for (long i = 0; i < total; ++i) {
    const auto at = start + std::chrono::nanoseconds(static_cast<long long>(1e9 * static_cast<double>(i) / rate));
    timer.expires_at(at);
    co_await timer.async_wait(asio::use_awaitable);
    ++load.sent;
    ++load.outstanding;
    if (load.idle.empty()) {
      load.pending.push_back(at);
      continue;
    }
    Conn* c = load.idle.back();
    load.idle.pop_back();
    asio::co_spawn(load.io, serve(load, c, at), asio::detached);
  }
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

int run_rate(const std::string& url_text, const std::string& body_file, double rate, double seconds, int connections,
             const std::string& key) {
  Load load;
  load.url = parse(url_text);
  std::ifstream in(body_file, std::ios::binary);
  std::stringstream body;
  body << in.rdbuf();
  load.request = "POST " + load.url.target + " HTTP/1.1\r\nHost: " + load.url.host + ":" + load.url.port +
                 "\r\nContent-Type: application/json\r\nAuthorization: Bearer " + key +
                 "\r\nContent-Length: " + std::to_string(body.str().size()) + "\r\n\r\n" + body.str();
  tcp::resolver resolver(load.io);
  const auto endpoints = resolver.resolve(load.url.host, load.url.port);
  for (int i = 0; i < connections; ++i) {
    auto c = std::make_unique<Conn>(load.io);
    asio::connect(c->socket, endpoints);
    c->socket.set_option(tcp::no_delay(true));
    load.idle.push_back(c.get());
    load.conns.push_back(std::move(c));
  }
  const auto began = Clock::now();
  asio::co_spawn(load.io, schedule(load, rate, seconds), asio::detached);
  load.io.run();
  const double took = std::chrono::duration<double>(Clock::now() - began).count();
  auto& v = load.latencies_ms;
  const double max = v.empty() ? 0 : *std::max_element(v.begin(), v.end());
  std::printf(
      "{\"sent\":%ld,\"ok\":%ld,\"errors\":%ld,\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f,\"p999_ms\":%.4f,"
      "\"max_ms\":%.4f,\"rate\":%.1f}\n",
      load.sent, load.ok, load.errors, percentile(v, 0.5), percentile(v, 0.9), percentile(v, 0.99), percentile(v, 0.999), max,
      static_cast<double>(load.sent) / took);
  return load.errors == 0 ? 0 : 1;
}

int run_idle(const std::string& url_text, int connections, double seconds) {
  asio::io_context io;
  const Url url = parse(url_text);
  tcp::resolver resolver(io);
  const auto endpoints = resolver.resolve(url.host, url.port);
  const std::string request = "GET " + url.target + " HTTP/1.1\r\nHost: " + url.host + "\r\n\r\n";
  std::vector<std::unique_ptr<Conn>> conns;
  int open = 0;
  for (int i = 0; i < connections; ++i) {
    auto c = std::make_unique<Conn>(io);
    boost::system::error_code ec;
    asio::connect(c->socket, endpoints, ec);
    if (!ec) asio::write(c->socket, asio::buffer(request), ec);
    bhttp::response<bhttp::string_body> res;
    if (!ec) bhttp::read(c->socket, c->buffer, res, ec);
    if (ec || res.result_int() != 200 || !res.keep_alive()) break;
    ++open;
    conns.push_back(std::move(c));
  }
  std::printf("{\"open\":%d}\n", open);
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  int still = 0;
  for (auto& c : conns) {  // still open: a request on it is answered
    boost::system::error_code ec;
    asio::write(c->socket, asio::buffer(request), ec);
    bhttp::response<bhttp::string_body> res;
    if (!ec) bhttp::read(c->socket, c->buffer, res, ec);
    if (!ec && res.result_int() == 200) ++still;
  }
  std::printf("{\"still_open\":%d}\n", still);
  return still == connections ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() >= 6 && a[0] == "rate") {
    return run_rate(a[1], a[2], std::atof(a[3].c_str()), std::atof(a[4].c_str()), std::atoi(a[5].c_str()),
                    a.size() > 6 ? a[6] : "sk-bench");
  }
  if (a.size() == 4 && a[0] == "idle") return run_idle(a[1], std::atoi(a[2].c_str()), std::atof(a[3].c_str()));
  std::fprintf(stderr, "usage: loadgen rate URL BODY_FILE RATE SECONDS CONNECTIONS [KEY] | loadgen idle URL CONNECTIONS SECONDS\n");
  return 2;
}
