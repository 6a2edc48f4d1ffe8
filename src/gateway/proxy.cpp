#include "proxy.hpp"

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <limits>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>

#include "floodgate/core/error.hpp"
#include "floodgate/core/text.hpp"

namespace floodgate::gateway {

UpstreamAddress parse_upstream_url(std::string_view url) {
  UpstreamAddress a;
  std::string_view rest;
  if (url.starts_with("https://")) {
    a.tls = true;
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    throw Error("the upstream must be an http:// or https:// URL, e.g. https://api.openai.com/v1 (got '" + std::string(url) + "')");
  }
  const std::size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  a.base_path = std::string(path);
  if (authority.empty() || authority.find('@') != std::string_view::npos) {
    throw Error("the upstream URL needs a host (and no user:password@): '" + std::string(url) + "'");
  }
  const std::string_view default_port = a.tls ? "443" : "80";
  std::size_t colon = authority.rfind(':');
  if (authority.front() == '[') {  // [v6]:port
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) throw Error("the upstream URL has a bad host: '" + std::string(url) + "'");
    a.host = std::string(authority.substr(1, close - 1));
    colon = close + 1 < authority.size() && authority[close + 1] == ':' ? close + 1 : std::string_view::npos;
  } else {
    a.host = std::string(authority.substr(0, colon));
  }
  a.port = colon == std::string_view::npos ? std::string(default_port) : std::string(authority.substr(colon + 1));
  if (a.host.empty() || a.port.empty() || a.port.find_first_not_of("0123456789") != std::string::npos) {
    throw Error("the upstream URL has a bad host or port: '" + std::string(url) + "'");
  }
  a.host_header = std::string(authority);
  if (colon != std::string_view::npos && a.port == default_port) a.host_header = std::string(authority.substr(0, colon));
  return a;
}

}  // namespace floodgate::gateway

namespace floodgate::gateway::proxy {
namespace ssl = asio::ssl;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

struct Conn {
  explicit Conn(const asio::any_io_executor& ex) : plain(std::in_place, ex), deadline(ex) {}
  std::optional<beast::tcp_stream> plain;  // the connection, until a TLS stream takes it over
  std::optional<TlsStream> tls;
  beast::flat_buffer buffer;  // bytes read from the upstream and not parsed yet
  // A call's timeout: one timer per call (the stream's own timeouts would arm one per read
  // and per write), which closes the connection when it fires.
  asio::steady_timer deadline;
  // One piece of a body on its way (the client's upload, then the answer), kept with the
  // connection so that a call allocates none.
  std::array<char, 16384> piece{};

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

bool kept_for_client(std::string_view name) {
  static constexpr std::string_view kDropped[] = {"connection", "keep-alive", "transfer-encoding", "content-length",
                                                  "set-cookie", "upgrade", "te", "trailer", "proxy-authenticate",
                                                  "proxy-connection"};
  for (const auto dropped : kDropped) {
    if (iequals(name, dropped)) return false;
  }
  return true;
}

Pool::Pool() = default;
Pool::~Pool() = default;

namespace {

// Not passed upstream: hop-by-hop, the client's credentials and host, the gateway's own,
// and Accept-Encoding (answers come back as they are, so that events can be read).
bool kept_for_upstream(std::string_view name) {
  static constexpr std::string_view kDropped[] = {
      "host", "authorization", "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te",
      "trailer", "transfer-encoding", "upgrade", "content-length", "expect", "accept-encoding", "x-floodgate-lane",
      "openai-organization", "openai-project", "cookie"};
  for (const auto dropped : kDropped) {
    if (iequals(name, dropped)) return false;
  }
  return true;
}

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

void append_hex(std::string& out, std::size_t n) {
  char digits[20];
  int i = 0;
  do {
    digits[i++] = "0123456789abcdef"[n & 15];
    n >>= 4;
  } while (n != 0);
  while (i > 0) out += digits[--i];
}

// Appends `bytes` to `out` as one chunk of a chunked body (nothing for no bytes).
void append_chunk(std::string& out, std::string_view bytes) {
  if (bytes.empty()) return;
  append_hex(out, bytes.size());
  out += "\r\n";
  out.append(bytes);
  out += "\r\n";
}

// The client hang-up watch of one call: armed once the request is upstream.
struct Watch {
  bool done = false;
  bool fired = false;      // the client hung up
  bool timed_out = false;  // the call's timeout passed
  beast::tcp_stream* upstream = nullptr;
};

void arm_watch(const std::shared_ptr<Watch>& watch, tcp::socket& client) {
  client.async_wait(tcp::socket::wait_read, [watch, &client](boost::system::error_code ec) {
    if (ec || watch->done) return;
    char byte = 0;
    const ssize_t n = ::recv(client.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))) return;  // a pipelined request
    watch->fired = true;
    if (watch->upstream != nullptr) watch->upstream->close();  // ends the upstream call: its pending I/O aborts
  });
}

}  // namespace

struct Upstream::Impl {
  explicit Impl(UpstreamOptions o) : options(std::move(o)), address(parse_upstream_url(options.base_url)) {
    common = "Host: " + address.host_header + "\r\nAuthorization: Bearer " + options.api_key + "\r\n";
    if (!options.organization.empty()) common += "OpenAI-Organization: " + options.organization + "\r\n";
    if (!options.project.empty()) common += "OpenAI-Project: " + options.project + "\r\n";
    if (address.tls) {
      tls = std::make_unique<ssl::context>(ssl::context::tls_client);
      tls->set_default_verify_paths();
      tls->set_verify_mode(ssl::verify_peer);
    }
  }

  // A pooled connection the upstream has not closed, or a new one; null when none could be
  // made (call.error says why).
  asio::awaitable<std::unique_ptr<Conn>> connection(Pool& pool, Call& call) {
    while (!pool.idle.empty()) {
      std::unique_ptr<Conn> c = std::move(pool.idle.back());
      pool.idle.pop_back();
      char byte = 0;
      const ssize_t n = ::recv(c->lowest().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) co_return c;  // alive and quiet
    }
    const auto ex = co_await asio::this_coro::executor;
    auto c = std::make_unique<Conn>(ex);
    boost::system::error_code ec;
    tcp::resolver resolver(ex);
    const auto endpoints = co_await resolver.async_resolve(address.host, address.port, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      call.error = "cannot resolve the upstream host " + address.host + ": " + ec.message();
      co_return nullptr;
    }
    c->plain->expires_after(options.connect_timeout);
    co_await c->plain->async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      call.error = "cannot connect to the upstream " + address.host_header + ": " + ec.message();
      co_return nullptr;
    }
    c->plain->socket().set_option(tcp::no_delay(true), ec);
    if (tls) {
      c->tls.emplace(std::move(*c->plain), *tls);
      c->plain.reset();
      // SSL_set_tlsext_host_name without its macro's C cast.
      if (SSL_ctrl(c->tls->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                   const_cast<char*>(address.host.c_str())) != 1) {
        call.error = "cannot set the TLS server name for " + address.host;
        co_return nullptr;
      }
      c->tls->set_verify_callback(ssl::host_name_verification(address.host));
      co_await c->tls->async_handshake(ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        call.error = "TLS handshake with the upstream " + address.host_header + " failed: " + ec.message();
        co_return nullptr;
      }
    }
    c->lowest().expires_never();
    co_return c;
  }

  // The request line and headers for the upstream.
  std::string request_head(const Call& call, bool chunked, std::uint64_t length) const {
    const auto& head = *call.head;
    std::string out;
    out.reserve(512);
    out += sv(head.method_string());
    out += ' ';
    out += address.base_path;
    out += call.target;
    out += " HTTP/1.1\r\n";
    out += common;
    for (const auto& f : head) {
      const std::string_view name = sv(f.name_string());
      if (!kept_for_upstream(name)) continue;
      out += name;
      out += ": ";
      out += sv(f.value());
      out += "\r\n";
    }
    if (chunked) {
      out += "Transfer-Encoding: chunked\r\n";
    } else if (length > 0 || head.method() == bhttp::verb::post || head.method() == bhttp::verb::put ||
               head.method() == bhttp::verb::patch) {
      out += "Content-Length: " + std::to_string(length) + "\r\n";
    }
    out += "\r\n";
    return out;
  }

  // Sends the request; false when it could not be (call says why).
  template <class Stream>
  asio::awaitable<bool> send(Stream& s, Conn& conn, tcp::socket& client, beast::flat_buffer& client_buffer, Call& call) {
    boost::system::error_code ec;
    if (call.streamed == nullptr) {
      const std::string head = request_head(call, false, call.body.size());
      const std::array<asio::const_buffer, 2> pieces{asio::buffer(head), asio::buffer(call.body.data(), call.body.size())};
      co_await asio::async_write(s, pieces, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) call.error = "could not send the request upstream: " + ec.message();
      co_return !ec;
    }
    StreamedBody& body = *call.streamed;
    const auto declared = body.content_length();
    const bool chunked = !declared.has_value() && !body.is_done();
    std::string out = request_head(call, chunked, declared.value_or(0));
    auto& piece = conn.piece;
    for (;;) {
      if (!body.is_done()) {
        body.get().body().data = piece.data();
        body.get().body().size = piece.size();
        co_await bhttp::async_read_some(client, client_buffer, body, asio::redirect_error(asio::use_awaitable, ec));
        if (ec == bhttp::error::need_buffer) ec = {};
        if (ec) {
          (ec == bhttp::error::body_limit ? call.body_too_large : call.client_gone) = true;
          call.error = "the client's body broke off: " + ec.message();
          co_return false;
        }
        const std::string_view bytes(piece.data(), piece.size() - body.get().body().size);
        if (chunked) {
          append_chunk(out, bytes);
          if (body.is_done()) out += "0\r\n\r\n";
        } else {
          out.append(bytes);
        }
      }
      if (!out.empty()) {
        co_await asio::async_write(s, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
          call.error = "could not send the request upstream: " + ec.message();
          co_return false;
        }
        out.clear();
      }
      if (body.is_done()) break;
    }
    co_return true;
  }

  // Reads the answer and relays it to the client; true when the upstream connection can be
  // reused.
  template <class Stream>
  asio::awaitable<bool> relay(Stream& s, Conn& conn, tcp::socket& client, Call& call) {
    boost::system::error_code ec;
    bhttp::response_parser<bhttp::buffer_body> p;
    p.header_limit(64 * 1024);
    p.body_limit(std::numeric_limits<std::uint64_t>::max());  // not boost::none: Boost 1.74 compares it as 0
    const bool head_only = call.head->method() == bhttp::verb::head;
    if (head_only) p.skip(true);
    {
      const auto waiting = std::chrono::steady_clock::now();
      co_await bhttp::async_read_header(s, conn.buffer, p, asio::redirect_error(asio::use_awaitable, ec));
      call.upstream_wait += std::chrono::steady_clock::now() - waiting;
    }
    if (ec) {
      call.error = "the upstream closed the connection without an answer: " + ec.message();
      co_return false;
    }
    const auto& res = p.get();
    call.status = static_cast<int>(res.result_int());
    const bool has_body = !head_only && call.status >= 200 && call.status != 204 && call.status != 304;
    if (call.engine_attempt) {
      for (const auto& f : res) call.upstream_headers.emplace_back(ascii_lower(sv(f.name_string())), std::string(trim(sv(f.value()))));
      const auto declared = p.content_length();
      // An upload is sent once: only its 401 is held (below).
      if (call.streamed == nullptr && held_status(call.status) && (!declared || *declared <= Call::kHeldBodyCap)) {
        co_return co_await hold(s, conn, p, call);
      }
    }
    // A 401, on every route and whatever its size: not relayed (it is about the gateway's key,
    // and OpenAI's words for it name part of that key); it comes before any byte of a body.
    if (call.status == 401) co_return co_await hold(s, conn, p, call);
    const bool keep_error = call.engine_attempt && (call.status < 200 || call.status >= 300);
    bool sse = false;
    std::string out = "HTTP/1.1 " + std::to_string(call.status) + ' ' + std::string(sv(bhttp::obsolete_reason(res.result()))) + "\r\n";
    for (const auto& f : res) {
      const std::string_view name = sv(f.name_string());
      if (iequals(name, "content-type") && sv(f.value()).starts_with("text/event-stream")) sse = true;
      if (!kept_for_client(name) && !(!has_body && iequals(name, "content-length"))) continue;
      out += name;
      out += ": ";
      out += sv(f.value());
      out += "\r\n";
    }
    for (const auto& [name, value] : call.own_headers) out += name + ": " + value + "\r\n";
    const bool http11 = call.head->version() >= 11;
    const auto length = p.content_length();
    // The bytes change only when events lose the usage the client did not ask for.
    const bool same_length = length.has_value() && !(sse && call.strip_usage);
    const bool chunked = has_body && http11 && !same_length;
    bool keep_alive = call.client_keep_alive && (same_length || chunked || !has_body);
    if (has_body && same_length) out += "Content-Length: " + std::to_string(*length) + "\r\n";
    if (chunked) out += "Transfer-Encoding: chunked\r\n";
    if (!keep_alive) out += "Connection: close\r\n";
    out += "\r\n";

    std::optional<SseRelay> events;
    if (sse) events.emplace(call.strip_usage);
    Tail tail;
    auto& piece = conn.piece;
    std::string staged;
    bool upstream_ok = true;
    for (;;) {
      if (has_body && !p.is_done()) {
        p.get().body().data = piece.data();
        p.get().body().size = piece.size();
        const auto waiting = std::chrono::steady_clock::now();
        co_await bhttp::async_read_some(s, conn.buffer, p, asio::redirect_error(asio::use_awaitable, ec));
        call.upstream_wait += std::chrono::steady_clock::now() - waiting;
        if (ec == bhttp::error::need_buffer) ec = {};
        if (ec) {
          upstream_ok = false;  // cut off mid-answer (or the client left and the watch closed it)
          call.error = "the upstream answer broke off: " + ec.message();
        }
        const std::string_view bytes(piece.data(), piece.size() - p.get().body().size);
        if (events) {
          events->feed(bytes, staged);
          if (p.is_done() || !upstream_ok) events->finish(staged);
        } else {
          tail.add(bytes);
          staged.append(bytes);
          if (keep_error && call.error_body.size() < Call::kHeldBodyCap) call.error_body.append(bytes);
        }
      }
      if (!upstream_ok) break;
      const bool last = !has_body || p.is_done();
      call.bytes_out += staged.size();
      if (chunked) {
        append_chunk(out, staged);
        if (last) out += "0\r\n\r\n";
      } else {
        out += staged;
      }
      staged.clear();
      if (!out.empty()) {
        boost::system::error_code wec;
        co_await asio::async_write(client, asio::buffer(out), asio::redirect_error(asio::use_awaitable, wec));
        call.answer_started = true;
        if (wec) {
          call.client_gone = true;
          co_return false;
        }
        out.clear();
      }
      if (last) break;
    }
    if (events) {
      call.usage = events->usage();
    } else if (has_body) {
      call.usage = usage_of(tail.view());
    }
    if (!upstream_ok) {
      // Bytes of the answer may have gone out: the client connection ends, so that the client
      // sees a cut answer rather than a whole one. Nothing went out: the caller answers 502.
      call.keep_alive = false;
      co_return false;
    }
    call.keep_alive = keep_alive;
    co_return p.keep_alive();
  }

  // Reads an answer the engine may retry, or a 401, whole into call.held_body, writing nothing
  // to the client; true when the connection can be reused.
  template <class Stream>
  asio::awaitable<bool> hold(Stream& s, Conn& conn, bhttp::response_parser<bhttp::buffer_body>& p, Call& call) {
    call.held = true;
    auto& piece = conn.piece;
    boost::system::error_code ec;
    while (!p.is_done()) {
      p.get().body().data = piece.data();
      p.get().body().size = piece.size();
      const auto waiting = std::chrono::steady_clock::now();
      co_await bhttp::async_read_some(s, conn.buffer, p, asio::redirect_error(asio::use_awaitable, ec));
      call.upstream_wait += std::chrono::steady_clock::now() - waiting;
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) {
        call.error = "the upstream answer broke off: " + ec.message();
        co_return false;
      }
      call.held_body.append(piece.data(), piece.size() - p.get().body().size);
      if (call.held_body.size() > Call::kHeldBodyCap) {
        call.error = "the upstream's HTTP " + std::to_string(call.status) + " answer is larger than " +
                     std::to_string(Call::kHeldBodyCap) + " bytes";
        co_return false;
      }
    }
    call.keep_alive = call.client_keep_alive;
    co_return p.keep_alive();
  }

  UpstreamOptions options;
  UpstreamAddress address;
  std::string common;  // Host, Authorization and the organization's headers, "\r\n"-ended
  std::unique_ptr<ssl::context> tls;
};

Upstream::Upstream(UpstreamOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Upstream::~Upstream() = default;

asio::awaitable<void> Upstream::call(Pool& pool, tcp::socket& client, beast::flat_buffer& client_buffer, Call& call) {
  const auto started = std::chrono::steady_clock::now();
  Impl& im = *impl_;
  std::unique_ptr<Conn> conn = co_await im.connection(pool, call);
  if (conn) {
    auto watch = std::make_shared<Watch>();
    watch->upstream = &conn->lowest();
    if (call.abort) {
      if (call.abort->requested) conn->lowest().close();
      call.abort->upstream = &conn->lowest();
    }
    conn->deadline.expires_after(im.options.timeout);
    conn->deadline.async_wait([watch](boost::system::error_code ec) {
      if (ec || watch->done) return;
      watch->timed_out = true;
      watch->upstream->close();
    });
    const bool sent = conn->tls ? co_await im.send(*conn->tls, *conn, client, client_buffer, call)
                                : co_await im.send(*conn->plain, *conn, client, client_buffer, call);
    bool reusable = false;
    call.request_sent = sent;
    if (sent) {
      arm_watch(watch, client);
      reusable = conn->tls ? co_await im.relay(*conn->tls, *conn, client, call)
                           : co_await im.relay(*conn->plain, *conn, client, call);
      boost::system::error_code ignored;
      client.cancel(ignored);  // the watch
    }
    watch->done = true;
    if (call.abort) call.abort->upstream = nullptr;
    conn->deadline.cancel();
    call.timed_out = watch->timed_out;
    if (call.abort && call.abort->requested) {
      call.error = "given up by the engine";
    } else if (watch->timed_out) {
      call.error = "no answer from the upstream within --upstream-timeout (" + std::to_string(im.options.timeout.count()) + " ms)";
    } else if (watch->fired) {
      call.client_gone = true;
      call.keep_alive = false;
    } else if (reusable && pool.idle.size() < im.options.max_idle_connections) {
      pool.idle.push_back(std::move(conn));
    }
  }
  if (call.client_gone) call.keep_alive = false;
  call.elapsed = std::chrono::steady_clock::now() - started;
}

}  // namespace floodgate::gateway::proxy
