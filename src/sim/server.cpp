// <utility> first: Boost 1.74's asio/awaitable.hpp uses std::exchange without including it.
#include <utility>

#include "floodgate/sim/server.hpp"

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "floodgate/core/error.hpp"
#include "net/listeners.hpp"
#include "sim/simulator.hpp"

namespace floodgate::sim {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

constexpr std::size_t kChunkBytes = 64 * 1024;

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 413: return "Request Entity Too Large";
    case 409: return "Conflict";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

std::string serialize_head(const Reply& reply, std::size_t body_size, bool keep_alive) {
  std::string out;
  out.reserve(640);
  out += "HTTP/1.1 ";
  out += std::to_string(reply.status);
  out += ' ';
  out += reason(reply.status);
  out += "\r\ncontent-type: ";
  out += reply.content_type;
  out += "\r\ncontent-length: ";
  out += std::to_string(body_size);
  for (const auto& [name, value] : reply.headers) {
    out += "\r\n";
    out += name;
    out += ": ";
    out += value;
  }
  out += keep_alive ? "\r\nconnection: keep-alive\r\n\r\n" : "\r\nconnection: close\r\n\r\n";
  return out;
}

struct Server {
  Simulator& sim;
  std::atomic<bool> stopping{false};
};

class InFlight {
 public:
  explicit InFlight(Stats& stats) : stats_(stats) { stats_.request_started(); }
  ~InFlight() { stats_.request_finished(); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  Stats& stats_;
};

asio::awaitable<void> wait_for(std::chrono::nanoseconds d) {
  if (d.count() <= 0) co_return;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(d);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

// Reads and discards what the client still sends (bounded), so closing does not reset
// the connection before it has read our reply.
asio::awaitable<void> drain_and_close(tcp::socket& socket) {
  boost::system::error_code ec;
  socket.shutdown(tcp::socket::shutdown_send, ec);
  asio::steady_timer deadline(co_await asio::this_coro::executor);
  deadline.expires_after(std::chrono::seconds(2));
  deadline.async_wait([&socket](boost::system::error_code e) {
    if (!e) {
      boost::system::error_code ignored;
      socket.cancel(ignored);
    }
  });
  std::array<char, 16 * 1024> scratch{};
  std::uint64_t drained = 0;
  while (drained < 64ull * 1024 * 1024) {
    const std::size_t n = co_await socket.async_read_some(asio::buffer(scratch), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    drained += n;
  }
  deadline.cancel();
  socket.close(ec);
}

// The endless-body fault: the answer's status and headers, then a chunked body that never
// ends (16 KiB of JSON whitespace every 10 ms, 1.6 MB/s) until the client hangs up or 1 GiB
// was sent; then the connection closes.
asio::awaitable<void> write_endless_body(tcp::socket& socket, const Reply& reply) {
  boost::system::error_code ec;
  std::string head = serialize_head(reply, 0, false);
  const auto length = head.find("\r\ncontent-length: 0");
  head.replace(length, std::string_view("\r\ncontent-length: 0").size(), "\r\ntransfer-encoding: chunked");
  co_await asio::async_write(socket, asio::buffer(head), asio::redirect_error(asio::use_awaitable, ec));
  const std::string chunk = "4000\r\n" + std::string(0x4000, ' ') + "\r\n";
  for (std::uint64_t sent = 0; !ec && sent < (1ull << 30); sent += 0x4000) {
    co_await asio::async_write(socket, asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) co_await wait_for(std::chrono::milliseconds(10));
  }
  socket.close(ec);
}

asio::awaitable<bool> write_file_reply(tcp::socket& socket, const Reply& reply, bool keep_alive);

asio::awaitable<bool> write_reply(tcp::socket& socket, const Reply& reply, bool keep_alive, Server& server) {
  boost::system::error_code ec;
  co_await wait_for(reply.delay);
  if (reply.fault == FaultKind::stall) {
    co_await wait_for(server.sim.options().stall);
    socket.close(ec);
    co_return false;
  }
  if (reply.fault == FaultKind::endless_body) {
    co_await write_endless_body(socket, reply);
    co_return false;
  }
  if (!reply.body_file.empty()) co_return co_await write_file_reply(socket, reply, keep_alive);
  const std::string head = serialize_head(reply, reply.body.size(), keep_alive);
  if (reply.fault == FaultKind::reset) {
    // Headers and part of the body, then an abortive close (RST).
    const std::string partial = head + reply.body.substr(0, reply.body.size() / 2);
    co_await asio::async_write(socket, asio::buffer(partial), asio::redirect_error(asio::use_awaitable, ec));
    socket.set_option(asio::socket_base::linger(true, 0), ec);
    socket.close(ec);
    co_return false;
  }
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(head), asio::buffer(reply.body)};
  co_await asio::async_write(socket, buffers, asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec;
}

// A reply whose body is a file (GET /v1/files/{id}/content), sent in kChunkBytes pieces
// so that no file is ever held whole.
asio::awaitable<bool> write_file_reply(tcp::socket& socket, const Reply& reply, bool keep_alive) {
  boost::system::error_code ec;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(reply.body_file.c_str(), "rb"), &std::fclose);
  if (!file) co_return false;
  std::fseek(file.get(), 0, SEEK_END);
  const long size = std::ftell(file.get());
  std::fseek(file.get(), 0, SEEK_SET);
  const std::string head = serialize_head(reply, static_cast<std::size_t>(std::max(size, 0L)), keep_alive);
  co_await asio::async_write(socket, asio::buffer(head), asio::redirect_error(asio::use_awaitable, ec));
  std::unique_ptr<char[]> chunk(new char[kChunkBytes]);
  long sent = 0;
  while (!ec && sent < size) {
    const std::size_t n = std::fread(chunk.get(), 1, kChunkBytes, file.get());
    if (n == 0) co_return false;
    co_await asio::async_write(socket, asio::buffer(chunk.get(), n), asio::redirect_error(asio::use_awaitable, ec));
    sent += static_cast<long>(n);
  }
  co_return !ec;
}

// Reads the rest of a request's body in chunks of kChunkBytes (into `chunk`), so no body is
// ever held whole by this loop, handing each to on_chunk(std::string_view), which returns
// false to stop early (a body over the limit). Returns false when reading failed.
template <class OnChunk>
asio::awaitable<bool> read_body(tcp::socket& socket, beast::flat_buffer& buffer, http::request_parser<http::buffer_body>& parser,
                                char* chunk, OnChunk on_chunk) {
  boost::system::error_code ec;
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = kChunkBytes;
    co_await http::async_read(socket, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    if (ec) co_return false;
    const std::size_t n = kChunkBytes - parser.get().body().size;
    if (!on_chunk(std::string_view(chunk, n))) break;
  }
  co_return true;
}

asio::awaitable<void> session(tcp::socket socket, Server& server) {
  Simulator& sim = server.sim;
  sim.stats().connection_opened();
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  beast::flat_buffer buffer;
  std::string body;
  std::unique_ptr<char[]> chunk(new char[kChunkBytes]);
  for (;;) {
    http::request_parser<http::buffer_body> parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    co_await http::async_read_header(socket, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec != http::error::end_of_stream && ec != asio::error::eof && ec != asio::error::connection_reset &&
          ec != asio::error::operation_aborted && ec != asio::error::bad_descriptor) {
        const Reply bad = sim.bad_http();
        co_await write_reply(socket, bad, false, server);
      }
      break;
    }
    InFlight in_flight(sim.stats());
    const auto& req = parser.get();
    const auto field = [&](http::field f) {
      const auto it = req.find(f);
      return it == req.end() ? std::string_view{} : std::string_view(it->value().data(), it->value().size());
    };
    const auto named = [&](std::string_view name) {
      const auto it = req.find(beast::string_view(name.data(), name.size()));
      return it == req.end() ? std::string_view{} : std::string_view(it->value().data(), it->value().size());
    };
    RequestHead head;
    head.method = std::string_view(req.method_string().data(), req.method_string().size());
    head.target = std::string_view(req.target().data(), req.target().size());
    head.authorization = field(http::field::authorization);
    head.content_type = field(http::field::content_type);
    head.client_request_id = named("x-client-request-id");
    head.api_key = named("api-key");
    const bool keep_alive = req.keep_alive() && !server.stopping;
    std::optional<std::uint64_t> content_length;
    if (parser.content_length()) content_length = *parser.content_length();

    if (auto refused = sim.check_head(head, content_length)) {
      const bool body_pending = !parser.is_done();
      const bool ok = co_await write_reply(socket, *refused, keep_alive && !refused->close && !body_pending, server);
      if (!ok) break;
      if (refused->close || body_pending || !keep_alive) {
        co_await drain_and_close(socket);
        co_return;
      }
      continue;
    }
    // Let curl-style clients send the body now rather than after a 1 s wait.
    if (const auto expect = field(http::field::expect);
        beast::iequals(beast::string_view(expect.data(), expect.size()), "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await asio::async_write(socket, asio::buffer(kContinue), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
    }

    Reply reply;
    bool over_limit = false;
    const std::uint64_t limit = sim.body_limit(head);
    if (Simulator::is_upload(head)) {
      std::unique_ptr<Upload> upload = sim.begin_upload(head, reply);
      std::uint64_t read_bytes = 0;
      const bool read_ok = co_await read_body(socket, buffer, parser, chunk.get(), [&](std::string_view data) {
        read_bytes += data.size();
        if (read_bytes > limit) {
          over_limit = true;
          return false;
        }
        if (upload) upload->feed(data);
        return true;
      });
      if (!read_ok) break;
      if (over_limit) {
        reply = sim.too_large(head, read_bytes);
      } else if (upload) {
        reply = sim.finish_upload(head, *upload);
      }
    } else {
      body.clear();
      const bool read_ok = co_await read_body(socket, buffer, parser, chunk.get(), [&](std::string_view data) {
        if (body.size() + data.size() > limit) {
          over_limit = true;
          body.resize(body.size() + data.size());  // only its size is reported
          return false;
        }
        body.append(data);
        return true;
      });
      if (!read_ok) break;
      reply = over_limit ? sim.too_large(head, body.size()) : sim.handle(head, body);
    }
    const bool again = keep_alive && !reply.close && !over_limit;
    const bool ok = co_await write_reply(socket, reply, again, server);
    if (!ok) co_return;
    if (!again) {
      co_await drain_and_close(socket);
      co_return;
    }
    if (body.capacity() > 1024 * 1024) std::string().swap(body);
  }
  socket.close(ec);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, Server& server) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!acceptor.is_open() || server.stopping) co_return;
      if (ec == asio::error::no_descriptors) {
        co_await wait_for(std::chrono::milliseconds(10));
      }
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket), server), asio::detached);
  }
}

}  // namespace

int run_server(const SimOptions& options, const std::function<void(const std::string&)>& on_listening) {
  Simulator sim(options);
  Server server{sim};
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(options.host, ec);
  if (ec) throw Error("invalid --host '" + options.host + "'");
  net::Listeners listeners = net::listen_per_thread(address, options.host, options.port, options.threads);
  auto& contexts = listeners.contexts;
  auto& acceptors = listeners.acceptors;
  const std::uint16_t port = listeners.port;

  asio::signal_set signals(*contexts[0], SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code e, int) {
    if (e) return;
    server.stopping = true;
    for (auto& ctx : contexts) ctx->stop();
  });
  for (std::size_t i = 0; i < contexts.size(); ++i) {
    asio::co_spawn(*contexts[i], accept_loop(*acceptors[i], server), asio::detached);
  }

  const std::string host = address.is_v6() ? "[" + options.host + "]" : options.host;
  on_listening("http://" + host + ":" + std::to_string(port) + "/v1");

  net::run_all(contexts);
  sim.flush_ledger();
  return 0;
}

}  // namespace floodgate::sim
