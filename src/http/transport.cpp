#include "floodgate/http/transport.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <unordered_map>

#include "floodgate/core/error.hpp"
#include "floodgate/core/text.hpp"

namespace floodgate::http {
namespace {

struct EasyDeleter {
  void operator()(CURL* e) const noexcept { curl_easy_cleanup(e); }
};
struct MultiDeleter {
  void operator()(CURLM* m) const noexcept { curl_multi_cleanup(m); }
};
struct UrlDeleter {
  void operator()(CURLU* u) const noexcept { curl_url_cleanup(u); }
};
struct MimeDeleter {
  void operator()(curl_mime* m) const noexcept { curl_mime_free(m); }
};
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;
using MultiPtr = std::unique_ptr<CURLM, MultiDeleter>;
using MimePtr = std::unique_ptr<curl_mime, MimeDeleter>;

// curl_global_init once per process, before any handle.
void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

TimePoint clock_now(const TransportOptions& options) noexcept {
  return options.clock != nullptr ? options.clock->now() : SteadyClock::instance().now();
}

// "https://..." (any case), as opposed to "http://...".
bool is_https(std::string_view url) noexcept { return url.size() >= 6 && (url[4] == 's' || url[4] == 'S'); }

// A Content-Length value above `cap` (digits only; anything else is left to libcurl).
bool content_length_over(std::string_view value, std::size_t cap) noexcept {
  if (value.empty() || value.find_first_not_of("0123456789") != std::string_view::npos) return false;
  if (value.size() > 19) return true;  // more than 10^19 bytes
  std::uint64_t n = 0;
  for (char c : value) n = n * 10 + static_cast<std::uint64_t>(c - '0');
  return n > cap;
}

TransportError classify_curl(CURLcode code) noexcept {
  switch (code) {
    case CURLE_OK: return TransportError::none;
    case CURLE_OPERATION_TIMEDOUT: return TransportError::timeout;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_READ_ERROR:
      return TransportError::connection;
    default:
      return TransportError::other;
  }
}

}  // namespace

std::optional<std::string_view> HttpResponse::header(std::string_view lowercase_name) const noexcept {
  for (std::size_t i = 0; i < header_spans.size(); ++i) {
    if (header_name(i) == lowercase_name) return header_value(i);
  }
  return std::nullopt;
}

void HttpResponse::add_header(std::string_view name, std::string_view value) {
  if (header_bytes.empty()) {
    header_bytes.reserve(1024);
    header_spans.reserve(24);
  }
  HeaderSpan span;
  span.name_at = static_cast<std::uint32_t>(header_bytes.size());
  span.name_size = static_cast<std::uint32_t>(name.size());
  span.value_at = static_cast<std::uint32_t>(span.name_at + name.size());
  span.value_size = static_cast<std::uint32_t>(value.size());
  header_bytes.resize(span.value_at + value.size());
  char* out = header_bytes.data() + span.name_at;
  for (char c : name) *out++ = ascii_lower(c);
  std::memcpy(out, value.data(), value.size());
  header_spans.push_back(span);
}

// What a transfer sends as its body; a pooled handle is reconfigured from scratch only when
// this changes between two uses (the common case, JSON after JSON, sets a few options).
enum class BodyKind : std::uint8_t { none, bytes, mime, get };

// One transfer: owns everything libcurl points into until it finishes. Transfers are pooled
// with their easy handle, which keeps the options that never change (callbacks, timeouts,
// user data), so a request costs a handful of setopt calls and no allocation for headers.
struct Transfer {
  EasyPtr easy;
  BodyKind kind = BodyKind::none;
  long timeout_ms = -1;
  long pipewait = -1;  // CURLOPT_PIPEWAIT as last set on the handle
  // The request's header lines, linked for libcurl without copying: nodes point into
  // `common` (shared, immutable) and `own`.
  std::shared_ptr<const std::vector<std::string>> common;
  std::vector<std::string> own;
  std::vector<curl_slist> nodes;
  MimePtr mime;
  std::shared_ptr<const std::string> body;
  std::function<bool(std::string_view)> body_sink;  // HttpRequest::body_sink
  HttpResponse response;
  TimePoint started;
  std::size_t max_body = 0;     // response body cap of this transfer; 0 = none
  bool over_cap = false;        // the body passed it: the transfer was aborted
  int sends = 0;                // pre-request callbacks: 1 once the request goes out
  bool resend_refused = false;  // libcurl tried to send it again: refused (see the header)
  char error_buffer[CURL_ERROR_SIZE] = {};
};

// Proxy settings read from the environment once, the way libcurl reads them for every
// transfer (five getenv calls each): [scheme]_proxy (http_proxy in lower case only, as
// libcurl does), then all_proxy / ALL_PROXY, and no_proxy / NO_PROXY. Handing them to each
// handle explicitly keeps libcurl's behaviour and skips the lookups.
struct ProxyEnv {
  std::string http;
  std::string https;
  std::string no_proxy;

  static std::string first(std::initializer_list<const char*> names) {
    for (const char* n : names) {
      const char* v = std::getenv(n);
      if (v != nullptr && *v != '\0') return v;
    }
    return {};
  }
  static ProxyEnv from_environment() {
    ProxyEnv p;
    const std::string all = first({"all_proxy", "ALL_PROXY"});
    p.http = first({"http_proxy"});
    if (p.http.empty()) p.http = all;
    p.https = first({"https_proxy", "HTTPS_PROXY"});
    if (p.https.empty()) p.https = all;
    p.no_proxy = first({"no_proxy", "NO_PROXY"});
    return p;
  }
  [[nodiscard]] const std::string& for_url(std::string_view url) const noexcept { return is_https(url) ? https : http; }
};

struct CurlTransport::Impl {
  TransportOptions options;
  MultiPtr multi;
  // Each distinct URL parsed once (a job has a handful); libcurl copies the parsed form per
  // transfer instead of parsing the text again (CURLOPT_CURLU).
  // Declared before the transfers, so it outlives every handle pointing at it.
  std::unordered_map<std::string, std::unique_ptr<CURLU, UrlDeleter>> parsed_urls;
  std::unordered_map<Transfer*, std::unique_ptr<Transfer>> live;
  std::vector<std::unique_ptr<Transfer>> idle;  // configured and reused: no setup per request
  std::vector<HttpResponse> failed;   // failed before they were started, reported by poll()
  ProxyEnv proxy = ProxyEnv::from_environment();
  // Sent with every request as ordinary header lines: libcurl would otherwise format
  // User-Agent and Accept-Encoding anew for each transfer (aprintf, thousands of
  // instructions each).
  std::string user_agent_line;
  std::string accept_encoding_line;

  // The parsed URL, or null when libcurl rejects it (then the text goes to CURLOPT_URL and
  // the transfer fails with libcurl's own message) or the cache is full.
  CURLU* parsed_url(const std::string& url) {
    auto it = parsed_urls.find(url);
    if (it != parsed_urls.end()) return it->second.get();
    // URLs that vary per request: bounded, and never evicted (a transfer in flight may
    // point at any entry); the rest go as text.
    if (parsed_urls.size() >= 64) return nullptr;
    std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
    if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
      return nullptr;
    }
    return parsed_urls.emplace(url, std::move(u)).first->second.get();
  }

  static std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) noexcept {
    auto* t = static_cast<Transfer*>(user);
    if (t->max_body != 0 && t->response.body.size() + size * n > t->max_body) {
      t->over_cap = true;
      return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
    }
    try {
      if (t->body_sink) return t->body_sink(std::string_view(data, size * n)) ? size * n : 0;
      t->response.body.append(data, size * n);
    } catch (...) {
      return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
    }
    return size * n;
  }

  static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) noexcept {
    auto* t = static_cast<Transfer*>(user);
    const std::string_view line(data, size * n);
    try {
      if (line.starts_with("HTTP/")) {
        // A new response (after 100-continue or a redirect).
        t->response.answer_started = true;
        t->response.header_bytes.clear();
        t->response.header_spans.clear();
        return size * n;
      }
      const auto colon = line.find(':');
      if (colon == std::string_view::npos) return size * n;
      const std::string_view name = trim(line.substr(0, colon));
      const std::string_view value = trim(line.substr(colon + 1));
      if (t->max_body != 0 && name.size() == 14 && iequals(name, "content-length") && content_length_over(value, t->max_body)) {
        t->over_cap = true;  // announced too large: not a byte of it is read
        return 0;
      }
      t->response.add_header(name, value);
    } catch (...) {
      return 0;
    }
    return size * n;
  }

  // Called by libcurl each time it is about to send the request (MSTATE_DO): the first time
  // goes ahead; any later one is libcurl's own re-send of a request that may have reached
  // the server, refused so that the caller counts and paces every attempt.
  static int on_prereq(void* user, char* /*conn_primary_ip*/, char* /*conn_local_ip*/, int /*conn_primary_port*/,
                       int /*conn_local_port*/) noexcept {
    auto* t = static_cast<Transfer*>(user);
    if (t->sends++ == 0) return CURL_PREREQFUNC_OK;
    t->resend_refused = true;
    return CURL_PREREQFUNC_ABORT;
  }

  static int on_debug(CURL* /*easy*/, curl_infotype type, char* data, std::size_t size, void* user) noexcept {
    auto* self = static_cast<Impl*>(user);
    if (type != CURLINFO_HEADER_OUT && type != CURLINFO_HEADER_IN && type != CURLINFO_TEXT) return 0;
    try {
      std::string text(data, size);
      // Redact every credential header line (Authorization, Azure's api-key).
      std::size_t pos = 0;
      while (pos < text.size()) {
        std::size_t eol = text.find('\n', pos);
        if (eol == std::string::npos) eol = text.size();
        const std::string_view line(text.data() + pos, eol - pos);
        const bool bearer = line.size() >= 14 && iequals(line.substr(0, 14), "authorization:");
        const bool api_key = line.size() >= 8 && iequals(line.substr(0, 8), "api-key:");  // Azure
        if (bearer || api_key) {
          const std::string redacted = bearer ? "Authorization: [redacted]\r" : "api-key: [redacted]\r";
          text.replace(pos, eol - pos, redacted);
          eol = pos + redacted.size();
        }
        pos = eol + 1;
      }
      const char* prefix = type == CURLINFO_HEADER_OUT ? "> " : type == CURLINFO_HEADER_IN ? "< " : "* ";
      self->options.debug_trace(prefix + text);
    } catch (...) {
    }
    return 0;
  }

  // Options that stay the same for every use of a handle.
  void configure(Transfer& t) {
    CURL* e = t.easy.get();
    curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.error_buffer);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Impl::on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Impl::on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, &Impl::on_prereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, &t);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count()));
    const long idle_s = std::max<long>(1, static_cast<long>(options.idle_timeout.count() / 1000));
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, idle_s);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, options.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    // Decode whatever libcurl can (gzip, br, zstd); the request header itself is one of
    // our own lines, which libcurl then does not repeat.
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_NOPROXY, proxy.no_proxy.c_str());
    if (options.debug_trace) {
      curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, &Impl::on_debug);
      curl_easy_setopt(e, CURLOPT_DEBUGDATA, this);
      curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    }
    t.kind = BodyKind::none;
    t.timeout_ms = -1;
    t.pipewait = -1;
  }

  std::unique_ptr<Transfer> take_transfer(BodyKind kind) {
    std::unique_ptr<Transfer> t;
    if (!idle.empty()) {
      t = std::move(idle.back());
      idle.pop_back();
      // Another body kind: start from libcurl's defaults so no option of the last use leaks.
      if (t->kind != kind) {
        curl_easy_reset(t->easy.get());
        configure(*t);
      }
      t->response = HttpResponse{};
      t->error_buffer[0] = '\0';
      t->sends = 0;
      t->resend_refused = false;
      t->over_cap = false;
      return t;
    }
    t = std::make_unique<Transfer>();
    t->easy.reset(curl_easy_init());
    if (!t->easy) throw Error("libcurl: cannot create a transfer handle", 70);
    configure(*t);
    return t;
  }

  void recycle(std::unique_ptr<Transfer> t) {
    t->mime.reset();
    t->body.reset();
    t->body_sink = nullptr;
    t->common.reset();
    t->own.clear();
    if (idle.size() < 1024) idle.push_back(std::move(t));
  }

  // libcurl asks big bodies (over 1 MiB since 7.69, 1 KiB before) and multipart uploads of unknown
  // size for "Expect: 100-continue" and then waits up to a second for the go-ahead; an
  // empty "Expect:" line turns that off. Smaller bodies never get it, and every header line
  // costs libcurl a scan per header it looks for (measured: ~750 instructions a request), so
  // the line goes only with bodies at or above this size, well below libcurl's threshold.
  // libcurl before 7.69 asked for 100-continue from 1 KiB on: keep the line from there.
  std::size_t expect_from_bytes = curl_version_info(CURLVERSION_NOW)->version_num >= 0x074500 ? 64 * 1024 : 1024;

  // Links the request's header lines for libcurl: no copies, no allocation once warm.
  void link_headers(Transfer& t, bool may_expect) {
    static const std::string kNoExpect = "Expect:";
    t.nodes.clear();
    t.nodes.reserve((t.common ? t.common->size() : 0) + t.own.size() + 3);
    auto add = [&t](const std::string& line) {
      // libcurl only reads the lines; curl_slist's member is not const for historical reasons.
      t.nodes.push_back(curl_slist{const_cast<char*>(line.c_str()), nullptr});
    };
    if (t.common) {
      for (const auto& h : *t.common) add(h);
    }
    for (const auto& h : t.own) add(h);
    add(user_agent_line);
    add(accept_encoding_line);
    if (may_expect) add(kNoExpect);
    for (std::size_t i = 0; i + 1 < t.nodes.size(); ++i) t.nodes[i].next = &t.nodes[i + 1];
  }
};

namespace {

// What libcurl can decode, as its own CURLOPT_ACCEPT_ENCODING "" would announce it.
std::string accept_encoding_value() {
  const curl_version_info_data* v = curl_version_info(CURLVERSION_NOW);
  std::string out;
  auto add = [&out](const char* e) {
    if (!out.empty()) out += ", ";
    out += e;
  };
  if ((v->features & CURL_VERSION_LIBZ) != 0) {
    add("deflate");
    add("gzip");
  }
  if ((v->features & CURL_VERSION_BROTLI) != 0) add("br");
  if ((v->features & CURL_VERSION_ZSTD) != 0) add("zstd");
  return out.empty() ? std::string("identity") : out;
}

}  // namespace

CurlTransport::CurlTransport(TransportOptions options) : impl_(std::make_unique<Impl>()) {
  global_init();
  impl_->options = std::move(options);
  impl_->user_agent_line = "User-Agent: " + impl_->options.user_agent;
  impl_->accept_encoding_line = "Accept-Encoding: " + accept_encoding_value();
  impl_->multi.reset(curl_multi_init());
  if (!impl_->multi) throw Error("libcurl: cannot create the multi handle", 70);
  CURLM* m = impl_->multi.get();
  curl_multi_setopt(m, CURLMOPT_PIPELINING, impl_->options.http2 ? CURLPIPE_MULTIPLEX : CURLPIPE_NOTHING);
  if (impl_->options.max_connections > 0) curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, impl_->options.max_connections);
}

CurlTransport::~CurlTransport() { cancel_all(); }

void CurlTransport::submit(HttpRequest request) {
  Impl& im = *impl_;
  const BodyKind kind = request.mime ? BodyKind::mime : request.body ? BodyKind::bytes : BodyKind::get;
  std::unique_ptr<Transfer> t = im.take_transfer(kind);
  CURL* e = t->easy.get();
  t->response.tag = request.tag;
  t->max_body = request.max_response_bytes.value_or(im.options.max_response_bytes);
  t->body = std::move(request.body);
  t->body_sink = std::move(request.body_sink);
  t->common = std::move(request.common_headers);
  t->own = std::move(request.headers);

  if (CURLU* u = im.parsed_url(request.url)) {
    curl_easy_setopt(e, CURLOPT_CURLU, u);
  } else {
    curl_easy_setopt(e, CURLOPT_CURLU, nullptr);
    curl_easy_setopt(e, CURLOPT_URL, request.url.c_str());
  }
  curl_easy_setopt(e, CURLOPT_PROXY, im.proxy.for_url(request.url).c_str());
  // Wait for a connection in progress to multiplex over only where HTTP/2 can be
  // negotiated (ALPN, https). Over plain http the connection never multiplexes, yet libcurl
  // 7.88 keeps a PIPEWAIT transfer pending until a transfer on it is done, with its
  // total timeout running: behind a slow answer the others failed as "Failed to resolve
  // host ... with timeout after 0 ms" without ever being sent.
  const long pipewait = im.options.http2 && is_https(request.url) ? 1L : 0L;
  if (pipewait != t->pipewait) {
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, pipewait);
    t->pipewait = pipewait;
  }
  const long total_ms = static_cast<long>(request.total_timeout.value_or(im.options.total_timeout).count());
  if (total_ms != t->timeout_ms) {
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total_ms);
    t->timeout_ms = total_ms;
  }
  im.link_headers(*t, kind == BodyKind::mime || (t->body && t->body->size() >= im.expect_from_bytes));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->nodes.data());

  if (kind == BodyKind::mime) {
    t->mime.reset(request.mime(e));
    if (!t->mime) {
      // Reported as a finished failed exchange by the next poll(), never sent.
      HttpResponse r;
      r.tag = request.tag;
      r.error = TransportError::other;
      r.error_message = "cannot build the multipart body (is the file still readable?)";
      im.failed.push_back(std::move(r));
      t->kind = BodyKind::none;  // half set up: reset on the next use
      im.recycle(std::move(t));
      return;
    }
    curl_easy_setopt(e, CURLOPT_MIMEPOST, t->mime.get());
  } else if (kind == BodyKind::bytes) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body->data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->body->size()));
  } else {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  }
  t->kind = kind;

  t->started = clock_now(im.options);
  if (curl_multi_add_handle(im.multi.get(), e) != CURLM_OK) throw Error("libcurl: cannot add a transfer", 70);
  Transfer* raw = t.get();
  im.live.emplace(raw, std::move(t));
}

std::size_t CurlTransport::poll(std::chrono::milliseconds timeout, std::vector<HttpResponse>& finished) {
  Impl& im = *impl_;
  CURLM* m = im.multi.get();
  std::size_t count = 0;
  if (!im.failed.empty()) {
    count = im.failed.size();
    for (auto& r : im.failed) finished.push_back(std::move(r));
    im.failed.clear();
    timeout = std::chrono::milliseconds(0);
  }
  int running = 0;
  curl_multi_perform(m, &running);

  // Only wait when nothing finished already.
  int queued = 0;
  CURLMsg* msg = curl_multi_info_read(m, &queued);
  if (msg == nullptr && timeout.count() > 0) {
    curl_waitfd extra[2]{};
    unsigned n_extra = 0;
    for (const int fd : {im.options.wake_fd, im.options.ready_fd}) {
      if (fd < 0) continue;
      extra[n_extra].fd = fd;
      extra[n_extra].events = CURL_WAIT_POLLIN;
      ++n_extra;
    }
    curl_multi_poll(m, n_extra != 0 ? extra : nullptr, n_extra, static_cast<int>(std::min<std::int64_t>(timeout.count(), 1 << 30)), nullptr);
    curl_multi_perform(m, &running);
    msg = curl_multi_info_read(m, &queued);
  }

  const TimePoint now = clock_now(im.options);
  for (; msg != nullptr; msg = curl_multi_info_read(m, &queued)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* e = msg->easy_handle;
    const CURLcode code = msg->data.result;
    Transfer* raw = nullptr;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, &raw);
    auto it = im.live.find(raw);
    if (it == im.live.end()) continue;
    std::unique_ptr<Transfer> t = std::move(it->second);
    im.live.erase(it);

    HttpResponse& r = t->response;
    r.elapsed = now - t->started;
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    long version = 0;
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
    r.http_version = version == CURL_HTTP_VERSION_2_0 ? "2" : version == CURL_HTTP_VERSION_3 ? "3" : "1.1";
    r.error = classify_curl(code);
    if (t->over_cap) {
      r.error = TransportError::too_large;
      r.partial_status = static_cast<int>(status);
      r.error_message = "the response body is larger than the cap of " + std::to_string(t->max_body) +
                        " bytes (--max-response-size): not read further";
      r.status = 0;
      r.body.clear();
      r.body.shrink_to_fit();
    } else if (t->resend_refused) {
      r.error = TransportError::connection;
      r.error_message = "the connection closed after the request was sent, before any answer (not re-sent behind the caller's back)";
      r.status = 0;
      r.body.clear();
    } else if (r.error != TransportError::none) {
      r.partial_status = r.answer_started ? static_cast<int>(status) : 0;
      long request_bytes = 0;
      curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &request_bytes);
      r.request_sent = request_bytes > 0;
      r.status = 0;  // a partial response is no response: the caller retries it
      r.error_message = t->error_buffer[0] != '\0' ? std::string(t->error_buffer) : std::string(curl_easy_strerror(code));
      r.body.clear();
    } else {
      r.status = static_cast<int>(status);
    }
    curl_multi_remove_handle(m, e);
    finished.push_back(std::move(r));
    ++count;
    im.recycle(std::move(t));
  }
  return count;
}

void CurlTransport::wakeup() noexcept { curl_multi_wakeup(impl_->multi.get()); }

void CurlTransport::cancel_all() noexcept {
  if (!impl_ || !impl_->multi) return;
  for (auto& [raw, t] : impl_->live) curl_multi_remove_handle(impl_->multi.get(), t->easy.get());
  impl_->live.clear();
}

bool CurlTransport::cancel(std::uint64_t tag) noexcept {
  Impl& im = *impl_;
  for (auto it = im.live.begin(); it != im.live.end(); ++it) {
    if (it->second->response.tag != tag) continue;
    curl_multi_remove_handle(im.multi.get(), it->second->easy.get());
    im.live.erase(it);  // not recycled: a handle torn down mid-transfer starts afresh
    return true;
  }
  const auto failed = std::find_if(im.failed.begin(), im.failed.end(), [tag](const HttpResponse& r) { return r.tag == tag; });
  if (failed == im.failed.end()) return false;
  im.failed.erase(failed);
  return true;
}

std::size_t CurlTransport::in_flight() const noexcept { return impl_->live.size() + impl_->failed.size(); }

}  // namespace floodgate::http
