// Transport against `floodgate sim` on 127.0.0.1: responses with their headers, connection
// reuse, classification of connection errors and timeouts, wake-ups, multipart bodies.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "floodgate/http/multipart_body.hpp"
#include "floodgate/http/transport.hpp"
#include "support/sim_process.hpp"

namespace floodgate::http {
namespace {

using floodgate::test::SimProcess;
using Clock = std::chrono::steady_clock;

const std::string kBody = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":4})";

HttpRequest chat(const SimProcess& sim, std::uint64_t tag) {
  HttpRequest r;
  r.tag = tag;
  r.url = sim.base_url() + "/chat/completions";
  r.headers = {"Authorization: Bearer " + sim.api_key(), "Content-Type: application/json", "x-client-request-id: t-" + std::to_string(tag)};
  r.body = std::make_shared<const std::string>(kBody);
  return r;
}

// Polls until `n` responses arrived or 30 s passed.
std::vector<HttpResponse> collect(Transport& t, std::size_t n, std::chrono::seconds bound = std::chrono::seconds(30)) {
  std::vector<HttpResponse> out;
  const auto deadline = Clock::now() + bound;
  while (out.size() < n && Clock::now() < deadline) t.poll(std::chrono::milliseconds(100), out);
  return out;
}

// Elapsed times come from the injected clock (a manual clock that never moves: 0), not from
// the system's.
TEST(Transport, ElapsedIsMeasuredOnTheInjectedClock) {
  SimProcess sim({"--latency", "fixed:20ms"});
  ManualClock clock;
  TransportOptions o;
  o.clock = &clock;
  CurlTransport t(o);
  t.submit(chat(sim, 1));
  auto out = collect(t, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status, 200);
  EXPECT_EQ(out[0].elapsed, std::chrono::nanoseconds{0});
}

TEST(Transport, ReturnsStatusHeadersAndBodyAndReusesConnections) {
  SimProcess sim({"--rpm", "100000"});
  TransportOptions o;
  o.max_connections = 8;
  CurlTransport t(o);
  const int n = 100;
  int submitted = 0;
  std::vector<HttpResponse> all;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (all.size() < static_cast<std::size_t>(n) && Clock::now() < deadline) {
    while (submitted < n && t.in_flight() < 8) t.submit(chat(sim, static_cast<std::uint64_t>(submitted++)));
    t.poll(std::chrono::milliseconds(100), all);
  }
  ASSERT_EQ(all.size(), static_cast<std::size_t>(n));
  std::vector<bool> seen(n, false);
  for (const auto& r : all) {
    EXPECT_EQ(r.status, 200) << r.error_message;
    EXPECT_EQ(r.error, TransportError::none);
    EXPECT_TRUE(r.header("x-request-id").has_value());
    EXPECT_TRUE(r.header("x-ratelimit-limit-requests").has_value());
    EXPECT_NE(r.body.find("\"choices\""), std::string::npos);
    seen[r.tag] = true;
  }
  for (bool s : seen) EXPECT_TRUE(s);
  EXPECT_EQ(t.in_flight(), 0u);
  // 100 requests, at most 8 at a time: connections are reused, not opened per request.
  EXPECT_LE(sim.stats()["connections"].get<int>(), 16);
}

TEST(Transport, ConnectionRefusedIsAConnectionErrorWithoutTheKey) {
  CurlTransport t;
  HttpRequest r;
  r.tag = 7;
  r.url = "http://127.0.0.1:9/v1/chat/completions";  // discard port: nothing listens
  r.headers = {"Authorization: Bearer sk-secret-never-shown"};
  r.body = std::make_shared<const std::string>(kBody);
  t.submit(std::move(r));
  auto out = collect(t, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tag, 7u);
  EXPECT_EQ(out[0].status, 0);
  EXPECT_EQ(out[0].error, TransportError::connection);
  EXPECT_FALSE(out[0].error_message.empty());
  EXPECT_EQ(out[0].error_message.find("sk-secret"), std::string::npos);
  EXPECT_FALSE(out[0].answer_started);
}

TEST(Transport, TotalTimeoutIsATimeout) {
  SimProcess sim({"--latency", "fixed:3s"});
  CurlTransport t;
  HttpRequest r = chat(sim, 1);
  r.total_timeout = std::chrono::milliseconds(300);
  t.submit(std::move(r));
  auto out = collect(t, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].error, TransportError::timeout) << out[0].error_message;
  EXPECT_EQ(out[0].status, 0);
}

TEST(Transport, WakeFdEndsAPollEarly) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_NONBLOCK), 0);
  TransportOptions o;
  o.wake_fd = fds[0];
  CurlTransport t(o);
  ASSERT_EQ(::write(fds[1], "x", 1), 1);
  std::vector<HttpResponse> out;
  const auto t0 = Clock::now();
  t.poll(std::chrono::seconds(20), out);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(10));
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(Transport, TraceRedactsTheAuthorizationHeader) {
  SimProcess sim;
  std::string trace;
  TransportOptions o;
  o.debug_trace = [&trace](std::string_view s) { trace.append(s); };
  CurlTransport t(o);
  t.submit(chat(sim, 1));
  auto out = collect(t, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status, 200);
  EXPECT_NE(trace.find("[redacted]"), std::string::npos);
  EXPECT_EQ(trace.find(sim.api_key()), std::string::npos);
}


// A body over libcurl's 1 MiB threshold goes without "Expect: 100-continue" (which would cost
// a round trip, or a second's wait with servers that never send 100), while small bodies
// carry no extra header line at all.
// `bytes` of ordinary words: many short pre-tokens, which the simulator's tokenizer counts
// quickly (one 2 MiB run of a single letter is its slowest input).
std::string words(std::size_t bytes) {
  std::string text;
  text.reserve(bytes + 16);
  while (text.size() < bytes) text += "lorem ipsum dolor sit amet ";
  text.resize(bytes);
  return text;
}

TEST(Transport, BigBodiesAreSentWithoutExpect100Continue) {
  SimProcess sim;
  std::string trace;
  TransportOptions o;
  o.debug_trace = [&trace](std::string_view s) { trace.append(s); };
  CurlTransport t(o);
  HttpRequest big = chat(sim, 1);
  big.body = std::make_shared<const std::string>(R"({"model":"gpt-4o-mini","max_tokens":4,"messages":[{"role":"user","content":")" +
                                                 words(2 * 1024 * 1024) + "\"}]}");
  t.submit(std::move(big));
  // The simulator counts the 2 MiB prompt's tokens before it answers: seconds in a Debug
  // build under ASan, so a longer bound than the other tests'.
  auto out = collect(t, 1, std::chrono::seconds(180));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].status, 0) << out[0].error_message;  // answered (200, or 400 for the context length)
  EXPECT_NE(trace.find("Content-Length: 2097"), std::string::npos);  // the big request is in the trace
  EXPECT_EQ(trace.find("100-continue"), std::string::npos);
  EXPECT_EQ(trace.find("100 Continue"), std::string::npos);
}


// Pooled handles are reused across body kinds (JSON, GET, multipart) without an option of
// one use leaking into the next; shared header lines are sent like the request's own.
TEST(Transport, ReusedHandlesSwitchBetweenPostGetAndMultipart) {
  SimProcess sim({"--rpm", "100000"});
  TransportOptions o;
  o.max_connections = 1;
  CurlTransport t(o);
  auto common = std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"Authorization: Bearer " + sim.api_key(), "Content-Type: application/json"});
  const std::string audio_path = ::testing::TempDir() + "transport_reuse.mp3";
  {
    std::ofstream f(audio_path, std::ios::binary);
    f << std::string(16000, '\x55');  // 1 s at the simulator's 128 kbit/s estimate
  }
  for (int round = 0; round < 3; ++round) {
    HttpRequest post;
    post.tag = 1;
    post.url = sim.base_url() + "/chat/completions";
    post.common_headers = common;
    post.headers = {"x-client-request-id: reuse-" + std::to_string(round)};
    post.body = std::make_shared<const std::string>(kBody);
    t.submit(std::move(post));
    auto a = collect(t, 1);
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].status, 200) << a[0].body;
    EXPECT_NE(a[0].body.find("\"chat.completion\""), std::string::npos) << a[0].body;

    HttpRequest get;
    get.tag = 2;
    get.url = sim.base_url() + "/models";
    get.headers = {"Authorization: Bearer " + sim.api_key()};
    t.submit(std::move(get));
    auto b = collect(t, 1);
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(b[0].status, 200) << b[0].body;
    EXPECT_NE(b[0].body.find("\"list\""), std::string::npos) << b[0].body;  // GET, not a re-sent POST

    HttpRequest upload;  // multipart, streamed from a file
    upload.tag = 4;
    upload.url = sim.base_url() + "/audio/transcriptions";
    upload.common_headers = std::make_shared<const std::vector<std::string>>(std::vector<std::string>{"Authorization: Bearer " + sim.api_key()});
    auto spec = std::make_shared<MultipartSpec>();
    spec->file_path = audio_path;
    spec->fields = {{"model", "whisper-1"}};
    upload.mime = make_mime_builder(spec);
    t.submit(std::move(upload));
    auto d = collect(t, 1);
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].status, 200) << d[0].body;
    EXPECT_NE(d[0].body.find("\"text\""), std::string::npos) << d[0].body;

    HttpRequest bad;  // the same URL without the shared Authorization line: refused
    bad.tag = 3;
    bad.url = sim.base_url() + "/chat/completions";
    bad.headers = {"Content-Type: application/json"};
    bad.body = std::make_shared<const std::string>(kBody);
    t.submit(std::move(bad));
    auto c = collect(t, 1);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].status, 401) << c[0].body;  // no header of an earlier use leaked in
  }
  EXPECT_EQ(t.in_flight(), 0u);
  std::remove(audio_path.c_str());
}

// Proxies come from the environment, read once per Transport the way libcurl reads them:
// a plain-http URL goes to http_proxy unless no_proxy names its host.
TEST(Transport, HttpProxyAndNoProxyFromTheEnvironment) {
  SimProcess sim;
  const std::string proxy = sim.base_url().substr(0, sim.base_url().find("/v1"));
  const std::string target = "http://floodgate-test.invalid/v1/models";  // resolvable only through the proxy
  ::setenv("http_proxy", proxy.c_str(), 1);
  ::unsetenv("no_proxy");
  ::unsetenv("NO_PROXY");
  {
    CurlTransport t;
    HttpRequest r;
    r.url = target;
    r.headers = {"Authorization: Bearer " + sim.api_key()};
    t.submit(std::move(r));
    auto out = collect(t, 1);
    ASSERT_EQ(out.size(), 1u);
    // The simulator (as the proxy) answered: an HTTP status, not a name-resolution failure.
    EXPECT_EQ(out[0].error, TransportError::none) << out[0].error_message;
    EXPECT_GT(out[0].status, 0);
  }
  ::setenv("no_proxy", "floodgate-test.invalid", 1);
  {
    CurlTransport t;
    HttpRequest r;
    r.url = target;
    t.submit(std::move(r));
    auto out = collect(t, 1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].error, TransportError::connection);  // direct: .invalid does not resolve
  }
  ::unsetenv("http_proxy");
  ::unsetenv("no_proxy");
}

// libcurl sends a request again, unseen, when a reused connection dies before any byte of
// the answer ("Connection died, retrying a fresh connect"). Here stalls close reused
// connections after the request arrived: every transfer must reach the server at most
// once (the ledger holds one line per request received), the refused re-sends surface as
// connection errors for the caller to decide on.
TEST(Transport, NeverSendsARequestTwiceBehindTheCallersBack) {
  SimProcess sim({"--rpm", "100000", "--fault-rate", "0.3", "--faults", "stall", "--stall-seconds", "100ms", "--seed", "11"});
  TransportOptions o;
  o.max_connections = 1;
  CurlTransport t(o);
  const int n = 40;
  int refused = 0;
  int answered = 0;
  for (int i = 0; i < n; ++i) {  // one at a time: each one after the first reuses the connection
    t.submit(chat(sim, static_cast<std::uint64_t>(i)));
    auto out = collect(t, 1);
    ASSERT_EQ(out.size(), 1u);
    if (out[0].error == TransportError::none) ++answered;
    if (out[0].error_message.find("after the request was sent") != std::string::npos) {
      EXPECT_EQ(out[0].error, TransportError::connection);
      EXPECT_FALSE(out[0].answer_started);
      ++refused;
    }
  }
  const auto ledger = sim.ledger();
  EXPECT_EQ(ledger.size(), static_cast<std::size_t>(n)) << "requests received by the server, one per transfer";
  EXPECT_GT(refused, 0) << "a stall on a reused connection happened (the case libcurl re-sends)";
  EXPECT_GT(answered, n / 2);
}

// Concurrent transfers to one plain-http host behind answers slower than the timeout: each
// is sent at once on its own connection and times out after the server began answering.
// With CURLOPT_PIPEWAIT (meant for HTTP/2 over TLS) libcurl held all but the first pending
// until the first was done, their timeout running, and then failed them unsent ("Failed
// to resolve host ... with timeout after 0 ms"), which read as an unreachable server.
TEST(Transport, ConcurrentSlowAnswersOverPlainHttpAreEachSent) {
  SimProcess sim({"--fault-rate", "1", "--faults", "endless-body"});
  CurlTransport t;  // http2 on, as the engine runs it
  const int n = 6;
  for (int i = 0; i < n; ++i) {
    HttpRequest r = chat(sim, static_cast<std::uint64_t>(i));
    r.total_timeout = std::chrono::milliseconds(700);
    t.submit(std::move(r));
  }
  auto out = collect(t, n);
  ASSERT_EQ(out.size(), static_cast<std::size_t>(n));
  for (const auto& r : out) {
    EXPECT_EQ(r.error, TransportError::timeout) << r.error_message;
    EXPECT_TRUE(r.answer_started) << r.tag << ": " << r.error_message;
  }
  EXPECT_EQ(sim.ledger().size(), static_cast<std::size_t>(n));
}

// cancel(tag) aborts that one transfer (engine::Client's cancel of a request in flight):
// it is never reported, the other finishes as usual, and an unknown tag is refused.
TEST(Transport, CancelAbortsOneTransferAndReportsOnlyTheOther) {
  SimProcess sim({"--latency", "fixed:500ms"});
  CurlTransport t;
  t.submit(chat(sim, 1));
  t.submit(chat(sim, 2));
  EXPECT_EQ(t.in_flight(), 2u);
  EXPECT_TRUE(t.cancel(1));
  EXPECT_FALSE(t.cancel(1));   // gone already
  EXPECT_FALSE(t.cancel(99));  // never submitted
  EXPECT_EQ(t.in_flight(), 1u);
  auto out = collect(t, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tag, 2u);
  EXPECT_EQ(out[0].status, 200);
  EXPECT_EQ(t.in_flight(), 0u);  // nothing left that could still report tag 1
  t.poll(std::chrono::milliseconds(0), out);
  EXPECT_EQ(out.size(), 1u);
}

// A status line arrived before the exchange failed: the server was reached.
TEST(Transport, AnAnswerCutOffMidBodyWasStarted) {
  SimProcess sim({"--fault-rate", "1", "--faults", "reset"});
  CurlTransport t;
  t.submit(chat(sim, 1));
  auto out = collect(t, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].error, TransportError::connection) << out[0].error_message;
  EXPECT_EQ(out[0].status, 0);
  EXPECT_TRUE(out[0].answer_started);
  EXPECT_EQ(out[0].partial_status, 200);
}

// A body that never ends is cut at the cap (counted as it arrives, chunked), and one whose
// Content-Length is over the cap is not read at all.
TEST(Transport, ResponseBodyOverTheCapEndsTheTransfer) {
  {
    SimProcess sim({"--fault-rate", "1", "--faults", "endless-body"});
    TransportOptions o;
    o.max_response_bytes = 100'000;
    CurlTransport t(o);
    t.submit(chat(sim, 1));
    auto out = collect(t, 1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].error, TransportError::too_large) << out[0].error_message;
    EXPECT_NE(out[0].error_message.find("100000 bytes"), std::string::npos) << out[0].error_message;
    EXPECT_EQ(out[0].partial_status, 200);
    EXPECT_TRUE(out[0].body.empty());
  }
  {
    SimProcess sim;
    CurlTransport t;
    HttpRequest small_cap = chat(sim, 2);
    small_cap.max_response_bytes = 64;  // a chat answer is a few hundred bytes
    t.submit(std::move(small_cap));
    t.submit(chat(sim, 3));             // the default cap (64 MiB) lets it through
    auto out = collect(t, 2);
    ASSERT_EQ(out.size(), 2u);
    for (const auto& r : out) {
      if (r.tag == 2) {
        EXPECT_EQ(r.error, TransportError::too_large) << r.error_message;
      } else {
        EXPECT_EQ(r.error, TransportError::none) << r.error_message;
        EXPECT_EQ(r.status, 200);
      }
    }
  }
}

}  // namespace
}  // namespace floodgate::http
