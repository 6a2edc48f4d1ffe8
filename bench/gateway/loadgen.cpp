// The gateway's benchmark client (bench/gateway/run.sh, lanes.sh): HTTP/1.1 keep-alive load
// generators, and a holder of idle keep-alive connections.
//
//   loadgen rate URL BODY_FILE RATE SECONDS CONNECTIONS [AUTH_KEY]
//     POSTs BODY_FILE to URL at RATE requests/s for SECONDS (the first second not counted),
//     over up to CONNECTIONS connections opened beforehand. Open loop: each request has its
//     scheduled time and its latency is counted from it, so a stall delays and counts every
//     request behind it (no coordinated omission). Prints one JSON line: sent, ok, errors,
//     p50_ms, p90_ms, p99_ms, p999_ms, max_ms, achieved rate.
//   loadgen pair URL_A KEY_A URL_B KEY_B BODY_FILE RATE SECONDS CONNECTIONS
//     as `rate`, to two targets at once, RATE requests/s each over CONNECTIONS connections each,
//     their requests interleaved (A, B, A, B ... every 1/(2 RATE) s) so both see the same
//     moments of a noisy machine. Prints {"a": {...}, "b": {...}}, each as `rate` prints.
//   loadgen batch URL BODY_FILE SECONDS CONNECTIONS OUT_JSONL [AUTH_KEY]
//     closed loop in the gateway's batch lane (`x-floodgate-lane: batch`): CONNECTIONS
//     connections, each sending its next request as soon as the previous one is answered,
//     for SECONDS; a 429 waits its retry-after-ms first (a well-behaved client). At the end
//     the connections still waiting are closed (their requests cancelled, not counted).
//   loadgen interactive URL BODY_FILE SECONDS RATE OUT_JSONL [AUTH_KEY [ARRIVALS]]
//     open loop in the interactive lane: RATE requests/s for SECONDS, as a Poisson process
//     (ARRIVALS poisson, the default: seeded exponential gaps) or one every 1/RATE s (even),
//     each on an idle keep-alive connection (a new one when none is idle), latency counted
//     from its scheduled time; a 429 is counted, not retried. Waits for the last answer.
//   Both write one JSON line per answered request to OUT_JSONL: sent_ns and done_ns (the
//   steady clock, CLOCK_MONOTONIC on Linux, so two loadgens' times compare), status, the
//   answer's x-floodgate-lane and x-floodgate-queue-ms (-1 when absent); and print one
//   summary line: sent, answered, by_status, connection errors, p50/p99/max latency of the 200s.
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
#include <map>
#include <memory>
#include <optional>
#include <random>
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

// The whole POST of BODY_FILE to URL, written as is; with a lane, its x-floodgate-lane header.
std::string post_request(const Url& url, const std::string& body_file, const std::string& key, const std::string& lane) {
  std::ifstream in(body_file, std::ios::binary);
  std::stringstream body;
  body << in.rdbuf();
  return "POST " + url.target + " HTTP/1.1\r\nHost: " + url.host + ":" + url.port +
         "\r\nContent-Type: application/json\r\nAuthorization: Bearer " + key +
         (lane.empty() ? "" : "\r\nx-floodgate-lane: " + lane) + "\r\nContent-Length: " + std::to_string(body.str().size()) +
         "\r\n\r\n" + body.str();
}

struct Conn {
  explicit Conn(asio::io_context& io) : socket(io) {}
  tcp::socket socket;
  beast::flat_buffer buffer;
};

struct Load {
  explicit Load(asio::io_context& context) : io(context) {}
  asio::io_context& io;
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

// Open loop over the loads in turn: each gets RATE requests/s, the n loads' requests
// interleaved evenly (load k's i-th at (i*n + k) / (n*RATE) s), so they share every moment of
// the machine's noise.
asio::awaitable<void> schedule(std::vector<Load*> loads, double rate, double seconds) {
  asio::io_context& io = loads.front()->io;
  const auto start = Clock::now() + std::chrono::milliseconds(100);
  for (Load* load : loads) load->count_from = start + std::chrono::seconds(1);
  const double n = static_cast<double>(loads.size());
  const long total = static_cast<long>(rate * n * (seconds + 1));
  asio::steady_timer timer(io);
  for (long i = 0; i < total; ++i) {
    Load& load = *loads[static_cast<std::size_t>(i) % loads.size()];
    const auto at = start + std::chrono::nanoseconds(static_cast<long long>(1e9 * static_cast<double>(i) / (rate * n)));
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
    asio::co_spawn(io, serve(load, c, at), asio::detached);
  }
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

void open_connections(Load& load, const std::string& url_text, const std::string& body_file, const std::string& key,
                      int connections) {
  load.url = parse(url_text);
  load.request = post_request(load.url, body_file, key, "");
  tcp::resolver resolver(load.io);
  const auto endpoints = resolver.resolve(load.url.host, load.url.port);
  for (int i = 0; i < connections; ++i) {
    auto c = std::make_unique<Conn>(load.io);
    asio::connect(c->socket, endpoints);
    c->socket.set_option(tcp::no_delay(true));
    load.idle.push_back(c.get());
    load.conns.push_back(std::move(c));
  }
}

std::string rate_summary(Load& load, double took) {
  auto& v = load.latencies_ms;
  const double max = v.empty() ? 0 : *std::max_element(v.begin(), v.end());
  char line[512];
  std::snprintf(line, sizeof line,
                "{\"sent\":%ld,\"ok\":%ld,\"errors\":%ld,\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f,"
                "\"p999_ms\":%.4f,\"max_ms\":%.4f,\"rate\":%.1f}",
                load.sent, load.ok, load.errors, percentile(v, 0.5), percentile(v, 0.9), percentile(v, 0.99),
                percentile(v, 0.999), max, static_cast<double>(load.sent) / took);
  return line;
}

int run_rate(const std::string& url_text, const std::string& body_file, double rate, double seconds, int connections,
             const std::string& key) {
  asio::io_context io;
  Load load(io);
  open_connections(load, url_text, body_file, key, connections);
  const auto began = Clock::now();
  asio::co_spawn(io, schedule({&load}, rate, seconds), asio::detached);
  io.run();
  std::printf("%s\n", rate_summary(load, std::chrono::duration<double>(Clock::now() - began).count()).c_str());
  return load.errors == 0 ? 0 : 1;
}

// Two targets in one run, their requests interleaved (run.sh: the simulator straight and
// through the gateway, under the same noise).
int run_pair(const std::string& url_a, const std::string& key_a, const std::string& url_b, const std::string& key_b,
             const std::string& body_file, double rate, double seconds, int connections) {
  asio::io_context io;
  Load a(io), b(io);
  open_connections(a, url_a, body_file, key_a, connections);
  open_connections(b, url_b, body_file, key_b, connections);
  const auto began = Clock::now();
  asio::co_spawn(io, schedule({&a, &b}, rate, seconds), asio::detached);
  io.run();
  const double took = std::chrono::duration<double>(Clock::now() - began).count();
  std::printf("{\"a\":%s,\"b\":%s}\n", rate_summary(a, took).c_str(), rate_summary(b, took).c_str());
  return a.errors == 0 && b.errors == 0 ? 0 : 1;
}

// The lanes benchmark (lanes.sh): one answered request, and the state of a batch or an
// interactive run.
struct Record {
  long long sent_ns = 0, done_ns = 0;  // steady clock
  int status = 0;
  std::string lane;        // the answer's x-floodgate-lane
  long long queue_ms = -1;  // the answer's x-floodgate-queue-ms
};

long long ns_of(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

long long header_number(const bhttp::response<bhttp::string_body>& res, std::string_view name) {
  const auto it = res.find(beast::string_view(name.data(), name.size()));
  return it == res.end() ? -1 : std::atoll(std::string(it->value()).c_str());
}

struct LaneLoad {
  asio::io_context io;
  Url url;
  tcp::resolver::results_type endpoints;
  std::string request;
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<Conn*> idle;  // interactive: connections between requests
  std::vector<Record> records;
  std::map<int, long> by_status;
  long sent = 0, connection_errors = 0, cancelled = 0;
  bool stopping = false;  // batch: the end came; a failed exchange was cancelled by it
};

// One request on c, from sent_at: writes it, reads the answer and records it. Empty when the
// connection failed (or was closed at the end); *retry_after_ms gets a 429's retry-after-ms.
asio::awaitable<std::optional<Record>> exchange(LaneLoad& load, Conn& c, Clock::time_point sent_at,
                                                long long* retry_after_ms = nullptr) {
  ++load.sent;
  boost::system::error_code ec;
  co_await asio::async_write(c.socket, asio::buffer(load.request), asio::redirect_error(asio::use_awaitable, ec));
  bhttp::response<bhttp::string_body> res;
  if (!ec) co_await bhttp::async_read(c.socket, c.buffer, res, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    ++(load.stopping ? load.cancelled : load.connection_errors);
    c.socket.close(ec);
    co_return std::nullopt;
  }
  Record r;
  r.sent_ns = ns_of(sent_at);
  r.done_ns = ns_of(Clock::now());
  r.status = static_cast<int>(res.result_int());
  if (const auto it = res.find("x-floodgate-lane"); it != res.end()) r.lane = std::string(it->value());
  r.queue_ms = header_number(res, "x-floodgate-queue-ms");
  if (retry_after_ms != nullptr) *retry_after_ms = r.status == 429 ? header_number(res, "retry-after-ms") : -1;
  ++load.by_status[r.status];
  if (!res.keep_alive()) c.socket.close(ec);
  load.records.push_back(r);
  co_return r;
}

// Closed loop on one connection until the deadline; reconnects when the connection is lost.
asio::awaitable<void> batch_connection(LaneLoad& load, Conn& c, Clock::time_point deadline) {
  asio::steady_timer pause(load.io);
  while (!load.stopping && Clock::now() < deadline) {
    boost::system::error_code ec;
    if (!c.socket.is_open()) {
      c.buffer.clear();
      co_await asio::async_connect(c.socket, load.endpoints, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {  // wait a little before the next try
        ++load.connection_errors;
        c.socket.close(ec);
        pause.expires_after(std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      c.socket.set_option(tcp::no_delay(true), ec);
    }
    long long retry_after_ms = -1;
    const auto r = co_await exchange(load, c, Clock::now(), &retry_after_ms);
    if (r && retry_after_ms > 0) {  // a well-behaved client waits as told (not past the end)
      pause.expires_at(std::min(deadline, Clock::now() + std::chrono::milliseconds(retry_after_ms)));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
}

asio::awaitable<void> stop_at(LaneLoad& load, Clock::time_point deadline) {
  asio::steady_timer timer(load.io, deadline);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  load.stopping = true;
  for (auto& c : load.conns) c->socket.close(ec);  // the requests still waiting: cancelled
}

asio::awaitable<void> interactive_request(LaneLoad& load, Clock::time_point at) {
  Conn* c = nullptr;
  if (!load.idle.empty()) {
    c = load.idle.back();
    load.idle.pop_back();
  } else {
    load.conns.push_back(std::make_unique<Conn>(load.io));
    c = load.conns.back().get();
  }
  boost::system::error_code ec;
  if (!c->socket.is_open()) {
    c->buffer.clear();
    co_await asio::async_connect(c->socket, load.endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      ++load.connection_errors;
      c->socket.close(ec);
      load.idle.push_back(c);
      co_return;
    }
    c->socket.set_option(tcp::no_delay(true), ec);
  }
  co_await exchange(load, *c, at);
  load.idle.push_back(c);
}

// The interactive client's send times, in s from its start: every 1/RATE s ("even"), or a
// Poisson process of RATE per s ("poisson": exponential gaps, seeded, so every run sends at
// the same moments). Even arrivals at a multiple of the gateway's pace interval meet its
// pacer at one phase only, so they sample one point of the wait's distribution, not all.
std::vector<double> arrival_times(double rate, double seconds, const std::string& arrivals) {
  std::vector<double> at;
  if (arrivals == "even") {
    for (long i = 0; i < std::max(1L, static_cast<long>(rate * seconds)); ++i) at.push_back(static_cast<double>(i) / rate);
    return at;
  }
  std::mt19937_64 random(42);
  std::exponential_distribution<double> gap(rate);
  for (double t = 0; t < seconds; t += gap(random)) at.push_back(t);
  return at;
}

asio::awaitable<void> interactive_schedule(LaneLoad& load, std::vector<double> arrivals) {
  const auto start = Clock::now();
  asio::steady_timer timer(load.io);
  for (const double t : arrivals) {
    const auto at = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(t));
    timer.expires_at(at);
    co_await timer.async_wait(asio::use_awaitable);
    asio::co_spawn(load.io, interactive_request(load, at), asio::detached);
  }
}

int run_lane(bool batch, const std::string& url_text, const std::string& body_file, double seconds, double amount,
             const std::string& out_file, const std::string& key, const std::string& arrivals) {
  LaneLoad load;
  load.url = parse(url_text);
  load.request = post_request(load.url, body_file, key, batch ? "batch" : "interactive");
  load.endpoints = tcp::resolver(load.io).resolve(load.url.host, load.url.port);
  const auto began = Clock::now();
  if (batch) {
    const auto deadline = began + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    for (int i = 0; i < static_cast<int>(amount); ++i) {
      load.conns.push_back(std::make_unique<Conn>(load.io));
      asio::co_spawn(load.io, batch_connection(load, *load.conns.back(), deadline), asio::detached);
    }
    asio::co_spawn(load.io, stop_at(load, deadline), asio::detached);
  } else {
    asio::co_spawn(load.io, interactive_schedule(load, arrival_times(amount, seconds, arrivals)), asio::detached);
    // Bounded: whatever is still unanswered a minute after the last request is cancelled.
    asio::co_spawn(load.io, stop_at(load, began + std::chrono::duration_cast<Clock::duration>(
                                                      std::chrono::duration<double>(seconds + 60))),
                   asio::detached);
  }
  // The interactive stopper would keep the loop alive for its minute: run until every
  // request is answered instead.
  const auto requests = static_cast<long>(arrival_times(amount, seconds, arrivals).size());
  while (!load.io.stopped()) {
    load.io.run_one();
    if (!batch && load.sent > 0 &&
        static_cast<long>(load.records.size()) + load.connection_errors + load.cancelled == requests) {
      break;
    }
  }
  std::ofstream out(out_file);
  std::vector<double> ok_ms;
  for (const auto& r : load.records) {
    out << "{\"lane\":\"" << r.lane << "\",\"sent_ns\":" << r.sent_ns << ",\"done_ns\":" << r.done_ns
        << ",\"status\":" << r.status << ",\"queue_ms\":" << r.queue_ms << "}\n";
    if (r.status == 200) ok_ms.push_back(static_cast<double>(r.done_ns - r.sent_ns) / 1e6);
  }
  std::string statuses;
  for (const auto& [status, n] : load.by_status) {
    statuses += (statuses.empty() ? "" : ",") + ("\"" + std::to_string(status) + "\":" + std::to_string(n));
  }
  const double max = ok_ms.empty() ? 0 : *std::max_element(ok_ms.begin(), ok_ms.end());
  std::printf(
      "{\"mode\":\"%s\",\"sent\":%ld,\"answered\":%zu,\"by_status\":{%s},\"connection_errors\":%ld,\"cancelled_at_end\":%ld,"
      "\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f}\n",
      batch ? "batch" : "interactive", load.sent, load.records.size(), statuses.c_str(), load.connection_errors, load.cancelled,
      percentile(ok_ms, 0.5), percentile(ok_ms, 0.99), max);
  return out.good() ? 0 : 1;
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
  if (a.size() == 9 && a[0] == "pair") {
    return run_pair(a[1], a[2], a[3], a[4], a[5], std::atof(a[6].c_str()), std::atof(a[7].c_str()), std::atoi(a[8].c_str()));
  }
  if (a.size() >= 6 && (a[0] == "batch" || a[0] == "interactive")) {
    return run_lane(a[0] == "batch", a[1], a[2], std::atof(a[3].c_str()), std::atof(a[4].c_str()), a[5],
                    a.size() > 6 ? a[6] : "sk-bench", a.size() > 7 ? a[7] : "poisson");
  }
  if (a.size() == 4 && a[0] == "idle") return run_idle(a[1], std::atoi(a[2].c_str()), std::atof(a[3].c_str()));
  std::fprintf(stderr, "usage: loadgen rate URL BODY_FILE RATE SECONDS CONNECTIONS [KEY]\n"
               "     | loadgen pair URL_A KEY_A URL_B KEY_B BODY_FILE RATE SECONDS CONNECTIONS\n"
               "     | loadgen batch URL BODY_FILE SECONDS CONNECTIONS OUT_JSONL [KEY]\n"
               "     | loadgen interactive URL BODY_FILE SECONDS RATE OUT_JSONL [KEY [poisson|even]]\n"
               "     | loadgen idle URL CONNECTIONS SECONDS\n");
  return 2;
}
