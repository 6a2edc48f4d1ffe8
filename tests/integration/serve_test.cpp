// `floodgate serve` end to end: the gateway started on port 0 in front of `floodgate sim`
// (both children, through tests/support), talked to over 127.0.0.1 with libcurl.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <fstream>
#include <future>
#include <regex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "floodgate/cost/prices.hpp"
#include "support/files.hpp"
#include "support/run_process.hpp"
#include "support/serve_process.hpp"
#include "support/sim_process.hpp"

using namespace std::chrono_literals;
using floodgate::test::HttpResult;
using floodgate::test::ServeProcess;
using floodgate::test::SimProcess;

namespace {

// Distinctive, so that a grep finds any copy of them.
const std::string kUpstreamKey = "sk-upstream-secret-7f3a9c51";
const std::string kClientKey = "fg-client-secret-b4d1e2";

const std::string kChat = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say something about 7"}],"max_tokens":8})";

SimProcess::Options sim_options() {
  SimProcess::Options o;
  o.api_key = kUpstreamKey;  // the sim accepts only the upstream key: a client key passed on gets 401
  o.ledger = false;
  return o;
}

// A sim with its ledger, for tests that read the order and times of what it took.
SimProcess::Options ledger_sim() {
  SimProcess::Options o = sim_options();
  o.ledger = true;
  return o;
}

// The answer without what differs from call to call (its id and creation time).
nlohmann::json comparable(const HttpResult& r) {
  nlohmann::json j = r.json();
  if (j.is_object()) {
    j.erase("id");
    j.erase("created");
  }
  return j;
}

// The value of a sample line of /metrics ("" when absent).
std::string metric(const ServeProcess& gw, const std::string& sample) {
  const std::string text = gw.get("/metrics").body;
  const auto at = text.find("\n" + sample + " ");
  if (at == std::string::npos) return "";
  const auto from = at + sample.size() + 2;
  return text.substr(from, text.find('\n', from) - from);
}

// Polls /metrics (bounded: 20 s) until `sample` has `value`.
bool wait_for_metric(const ServeProcess& gw, const std::string& sample, const std::string& value) {
  for (int i = 0; i < 400; ++i) {
    if (metric(gw, sample) == value) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

// Every regular file below `dir` that contains `needle`.
std::vector<std::string> files_containing(const std::filesystem::path& dir, const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file() && floodgate::test::slurp(entry.path()).find(needle) != std::string::npos) {
      found.push_back(entry.path().string());
    }
  }
  return found;
}

// A blocking TCP socket on 127.0.0.1 for the tests that script both sides of the gateway:
// every wait is bounded by its deadline.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  static Socket connect_to(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("cannot connect");
    return Socket(fd);
  }
  ~Socket() { close(); }
  Socket(Socket&& o) noexcept : fd_(std::exchange(o.fd_, -1)), data_(std::move(o.data_)) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void send(const std::string& bytes) const {
    for (std::size_t at = 0; at < bytes.size();) {
      const ssize_t n = ::send(fd_, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send failed");
      at += static_cast<std::size_t>(n);
    }
  }
  // Reads until what was received holds `needle` (true) or the peer closes / 10 s pass (false).
  bool read_until(const std::string& needle, std::chrono::milliseconds within = 10s) {
    const auto until = std::chrono::steady_clock::now() + within;
    while (data_.find(needle) == std::string::npos) {
      if (read_some(until) <= 0) return false;
    }
    return true;
  }
  // True when the peer closes the connection within the time (what it sent meanwhile is kept).
  bool closed_within(std::chrono::milliseconds within) {
    const auto until = std::chrono::steady_clock::now() + within;
    for (;;) {
      const int n = read_some(until);
      if (n == 0) return true;
      if (n < 0) return false;
    }
  }
  [[nodiscard]] const std::string& data() const noexcept { return data_; }

 private:
  // >0 bytes read, 0 the peer closed (or reset), -1 time is up.
  int read_some(std::chrono::steady_clock::time_point until) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return -1;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return -1;
    char buf[16384];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return 0;
    data_.append(buf, static_cast<std::size_t>(n));
    return static_cast<int>(n);
  }
  int fd_ = -1;
  std::string data_;
};

// An upstream the test scripts by hand: a listener on 127.0.0.1 that accepts the gateway's
// connections only when the test asks (accept()), then the test reads what the gateway sent
// and writes the answer piece by piece. Left alone, it never answers anything.
class ScriptedUpstream {
 public:
  ScriptedUpstream() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("ScriptedUpstream: cannot listen");
    }
    port_ = ntohs(addr.sin_port);
  }
  ~ScriptedUpstream() { ::close(fd_); }
  ScriptedUpstream(const ScriptedUpstream&) = delete;
  ScriptedUpstream& operator=(const ScriptedUpstream&) = delete;
  [[nodiscard]] std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  // The gateway's next connection, within 10 s.
  Socket accept() const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 10'000) <= 0) throw std::runtime_error("ScriptedUpstream: no connection within 10 s");
    return Socket(::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC));
  }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

std::uint16_t port_of(const std::string& base_url) {
  const auto colon = base_url.rfind(':');
  return static_cast<std::uint16_t>(std::stoi(base_url.substr(colon + 1)));
}

// The data lines of a server-sent-events body, ids and creation times set aside.
std::vector<nlohmann::json> events_of(const std::string& body) {
  std::vector<nlohmann::json> out;
  std::size_t at = 0;
  while ((at = body.find("data: ", at)) != std::string::npos) {
    const std::size_t end = body.find('\n', at);
    const std::string data = body.substr(at + 6, end - at - 6);
    at = end;
    if (data == "[DONE]") {
      out.emplace_back("[DONE]");
      continue;
    }
    nlohmann::json j = nlohmann::json::parse(data);
    j.erase("id");
    j.erase("created");
    out.push_back(std::move(j));
  }
  return out;
}

std::string chunked(const std::string& bytes) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
  return size + bytes + "\r\n";
}

// A WAV file of silence, `seconds` long (8 kHz, 16-bit mono).
std::string wav(double seconds) {
  const auto samples = static_cast<std::uint32_t>(seconds * 8000);
  std::string b(44 + samples * 2, '\0');
  const auto u32 = [&](std::size_t at, std::uint32_t v) { for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>(v >> (8 * i)); };
  const auto u16 = [&](std::size_t at, std::uint16_t v) { for (int i = 0; i < 2; ++i) b[at + i] = static_cast<char>(v >> (8 * i)); };
  b.replace(0, 4, "RIFF");
  u32(4, 36 + samples * 2);
  b.replace(8, 8, "WAVEfmt ");
  u32(16, 16);
  u16(20, 1);
  u16(22, 1);
  u32(24, 8000);
  u32(28, 16000);
  u16(32, 2);
  u16(34, 16);
  b.replace(36, 4, "data");
  u32(40, samples * 2);
  return b;
}

std::string multipart(const std::string& boundary, const std::string& audio) {
  return "--" + boundary + "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--" + boundary +
         "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n" + audio +
         "\r\n--" + boundary + "--\r\n";
}

}  // namespace

TEST(Serve, ChatThroughTheGatewayEqualsCallingTheSimDirectlyAndTheKeyStaysInside) {
  SimProcess sim({"--latency", "none", "--fault-rate", "0"}, sim_options());
  auto gw = std::make_unique<ServeProcess>(std::vector<std::string>{"--upstream", sim.base_url()}, kUpstreamKey);
  EXPECT_TRUE(std::regex_match(gw->base_url(), std::regex(R"(http://127\.0\.0\.1:[0-9]+/v1)"))) << gw->base_url();

  const HttpResult through = gw->post("/v1/chat/completions", kChat, {"Authorization: Bearer " + kClientKey});
  const HttpResult direct = sim.post("/v1/chat/completions", kChat);
  ASSERT_EQ(through.status, 200) << through.body << through.error;
  ASSERT_EQ(direct.status, 200) << direct.body;
  EXPECT_EQ(comparable(through), comparable(direct));
  EXPECT_EQ(through.headers.at("content-type"), direct.headers.at("content-type"));
  EXPECT_EQ(through.headers.at("x-floodgate-lane"), "interactive");
  EXPECT_TRUE(through.headers.count("x-request-id")) << "the upstream's headers are relayed";

  const std::string embed = R"({"model":"text-embedding-3-small","input":["one","two"]})";
  const HttpResult embed_through = gw->post("/v1/embeddings", embed, {"Authorization: Bearer " + kClientKey});
  ASSERT_EQ(embed_through.status, 200) << embed_through.body;
  EXPECT_EQ(embed_through.json(), sim.post("/v1/embeddings", embed).json());

  const HttpResult models = gw->get("/v1/models", {"Authorization: Bearer " + kClientKey});
  ASSERT_EQ(models.status, 200) << models.body;
  EXPECT_EQ(models.json(), sim.get("/v1/models").json());

  // An upstream error keeps its status and OpenAI's shape.
  const std::string unknown_model = R"({"model":"no-such-model","messages":[{"role":"user","content":"hi"}]})";
  const HttpResult refused = gw->post("/v1/chat/completions", unknown_model, {"Authorization: Bearer " + kClientKey});
  const HttpResult refused_direct = sim.post("/v1/chat/completions", unknown_model);
  EXPECT_EQ(refused.status, refused_direct.status);
  EXPECT_EQ(refused.json(), refused_direct.json());

  const std::string dir = gw->dir();
  // The access log is read once the gateway has stopped: a line is written after its answer.
  EXPECT_EQ(gw->stop(), 0) << "SIGTERM ends it cleanly";
  const std::string log = floodgate::test::slurp(gw->log_path());
  EXPECT_NE(log.find(" POST /v1/chat/completions 200 lane=interactive key=key#"), std::string::npos) << log;
  EXPECT_NE(log.find(" GET /v1/models 200 "), std::string::npos) << log;
  // Neither key in the access log or any file the gateway's run left, nor in its URL line.
  EXPECT_EQ(log.find(kUpstreamKey), std::string::npos) << log;
  EXPECT_EQ(log.find(kClientKey), std::string::npos) << log;
  EXPECT_TRUE(files_containing(dir, kUpstreamKey).empty());
  EXPECT_EQ(gw->base_url().find(kUpstreamKey), std::string::npos);
}

TEST(Serve, AnswersItsOwnRoutesAndErrorsInOpenAIsShape) {
  SimProcess sim({"--latency", "none", "--fault-rate", "0"}, sim_options());
  ServeProcess gw({"--upstream", sim.base_url()}, kUpstreamKey);

  const HttpResult health = gw.get("/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.json(), nlohmann::json::parse(R"({"status":"ok"})"));

  const HttpResult unknown = gw.post("/v2/nothing/here?x=1", "{}");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body,
            R"j({"error":{"message":"Invalid URL (POST /v2/nothing/here)","type":"invalid_request_error","param":null,"code":null}})j");
  // The rest of /v1/ is the upstream's to answer: passed on as is, its answer relayed.
  const HttpResult proxied = gw.post("/v1/nothing/here?x=1", "{}");
  const HttpResult proxied_direct = sim.post("/v1/nothing/here?x=1", "{}");
  EXPECT_EQ(proxied.status, proxied_direct.status);
  EXPECT_EQ(proxied.json(), proxied_direct.json()) << proxied.body;

  const HttpResult bad_lane = gw.post("/v1/chat/completions", kChat, {"x-floodgate-lane: urgent"});
  EXPECT_EQ(bad_lane.status, 400);
  EXPECT_EQ(bad_lane.json()["error"]["message"], "unknown lane 'urgent' in the x-floodgate-lane header (lanes: interactive, batch)");

  const HttpResult batch = gw.post("/v1/chat/completions", kChat, {"x-floodgate-lane: batch"});
  ASSERT_EQ(batch.status, 200) << batch.body;
  EXPECT_EQ(batch.headers.at("x-floodgate-lane"), "batch");
  const std::string flex = R"({"model":"gpt-4o-mini","service_tier":"flex","messages":[{"role":"user","content":"hi"}],"max_tokens":4})";
  const HttpResult by_tier = gw.post("/v1/chat/completions", flex);
  EXPECT_EQ(by_tier.headers.at("x-floodgate-lane"), "batch") << by_tier.body;

  const HttpResult metrics = gw.get("/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.headers.at("content-type").rfind("text/plain; version=0.0.4", 0), 0u);
  EXPECT_EQ(metric(gw, "floodgate_gateway_lane_admitted_total{lane=\"batch\"}"), "2");
  EXPECT_EQ(metric(gw, "floodgate_gateway_lane_admitted_total{lane=\"interactive\"}"), "0");
  EXPECT_EQ(metric(gw, "floodgate_gateway_lane_wait_seconds_count{lane=\"batch\"}"), "2");
  EXPECT_EQ(metric(gw, "floodgate_gateway_responses_total{route=\"unknown\",code=\"404\"}"), "1");
  // Counted once the answer's last byte is written: the client may have it first.
  EXPECT_TRUE(wait_for_metric(gw, "floodgate_gateway_upstream_responses_total{code=\"200\"}", "2"));
  // The gateway's own time: one per answer it relayed of a request it had whole (the two
  // chats); none for the proxied POST (its body streamed through at the client's pace) nor
  // for the gateway's own answers (the 404 outside /v1/, the unknown lane's 400).
  EXPECT_TRUE(wait_for_metric(gw, "floodgate_gateway_own_seconds_count", "2")) << metric(gw, "floodgate_gateway_own_seconds_count");
  const double own_sum = std::stod(metric(gw, "floodgate_gateway_own_seconds_sum"));
  EXPECT_GT(own_sum, 0.0);
  EXPECT_LT(own_sum, 3.0) << "less than the calls took, their upstream's time left out";
}

TEST(Serve, AFullLaneAndAnExpiredWaitAnswer429WithRetryAfter) {
  // One request upstream at a time, one waiting; the upstream never answers, so the first
  // request holds the only place upstream and nothing else is ever admitted. Through the
  // relay (--no-engine), whose room is the in-flight cap: the engine's is when it sends.
  ScriptedUpstream upstream;
  ServeProcess gw({"--upstream", upstream.base_url(), "--max-in-flight", "1", "--interactive-queue", "1",
                   "--interactive-wait", "2s", "--grace", "1s", "--no-engine"},
                  kUpstreamKey);
  auto in_flight = std::async(std::launch::async, [&] { return gw.post("/v1/chat/completions", kChat, {}, 60s); });
  ASSERT_TRUE(wait_for_metric(gw, "floodgate_gateway_upstream_in_flight", "1"));
  auto waiting = std::async(std::launch::async, [&] { return gw.post("/v1/chat/completions", kChat, {}, 60s); });
  ASSERT_TRUE(wait_for_metric(gw, "floodgate_gateway_lane_depth{lane=\"interactive\"}", "1"));

  // Lane full: one admission in the last 10 s is 1 per 10 s; one waits ahead, whose 10 s
  // exceed nothing of the 2 s wait, so a place frees in one admission interval: 10 s.
  HttpResult full = gw.post("/v1/chat/completions", kChat);
  EXPECT_EQ(full.status, 429);
  EXPECT_EQ(full.headers["retry-after"], "10");
  EXPECT_EQ(full.headers["retry-after-ms"], "10000");
  EXPECT_EQ(full.json()["error"]["code"], "rate_limit_exceeded");
  EXPECT_EQ(full.json()["error"]["type"], "requests");
  EXPECT_NE(full.json()["error"]["message"].get<std::string>().find("interactive lane cannot take the request: its queue is full (1 waiting)"),
            std::string::npos);
  // The other lane has its own queue: a batch request still waits (it is not refused at once).
  EXPECT_EQ(metric(gw, "floodgate_gateway_lane_rejected_total{lane=\"interactive\",reason=\"queue_full\"}"), "1");

  // The waiting one is refused when its 2 s are over.
  HttpResult expired = waiting.get();
  EXPECT_EQ(expired.status, 429) << expired.body << expired.error;
  EXPECT_EQ(expired.headers["retry-after"], "10");
  EXPECT_NE(expired.json()["error"]["message"].get<std::string>().find("could not be sent upstream within the lane's wait"),
            std::string::npos);
  EXPECT_EQ(metric(gw, "floodgate_gateway_lane_rejected_total{lane=\"interactive\",reason=\"deadline\"}"), "1");

  EXPECT_EQ(gw.stop(), 0) << "the grace ends the unanswered request";
  EXPECT_EQ(in_flight.get().status, 0) << "cut off at shutdown, never answered";
}

TEST(Serve, AClientThatHangsUpWhileQueuedGivesItsPlaceBack) {
  ScriptedUpstream upstream;  // the first request holds the only place upstream for good (the relay's)
  ServeProcess gw({"--upstream", upstream.base_url(), "--max-in-flight", "1", "--interactive-queue", "1", "--grace", "1s",
                   "--no-engine"},
                  kUpstreamKey);
  auto in_flight = std::async(std::launch::async, [&] { return gw.post("/v1/chat/completions", kChat, {}, 60s); });
  ASSERT_TRUE(wait_for_metric(gw, "floodgate_gateway_upstream_in_flight", "1"));
  // Queued, then the client gives up after 1 s and closes its connection.
  const HttpResult gave_up = gw.post("/v1/chat/completions", kChat, {}, 1s);
  EXPECT_EQ(gave_up.status, 0);
  ASSERT_TRUE(wait_for_metric(gw, "floodgate_gateway_lane_cancelled_total{lane=\"interactive\"}", "1"));
  EXPECT_EQ(metric(gw, "floodgate_gateway_lane_depth{lane=\"interactive\"}"), "0");
  // Its place is free again: the next request waits instead of being refused as over the bound.
  auto next = std::async(std::launch::async, [&] { return gw.post("/v1/chat/completions", kChat, {}, 60s); });
  ASSERT_TRUE(wait_for_metric(gw, "floodgate_gateway_lane_depth{lane=\"interactive\"}", "1"));
  EXPECT_EQ(metric(gw, "floodgate_gateway_lane_rejected_total{lane=\"interactive\",reason=\"queue_full\"}"), "0");
  gw.stop();
  const std::string log = floodgate::test::slurp(gw.log_path());
  EXPECT_NE(log.find(" POST /v1/chat/completions 499 lane=interactive "), std::string::npos) << log;
  EXPECT_EQ(in_flight.get().status, 0);
  EXPECT_EQ(next.get().status, 0);
}

TEST(Serve, AKeysFileAdmitsOnlyItsKeysInTheirLanesAndLogsNoKey) {
  SimProcess sim({"--latency", "none", "--fault-rate", "0"}, sim_options());
  floodgate::test::TempDir dir("serve_keys");
  const std::string keys = dir.file("keys.json");
  std::ofstream(keys) << R"({"keys": [{"key": ")" << kClientKey
                      << R"(", "name": "nightly", "lane": "batch", "may_choose_lane": false}]})";
  ServeProcess gw({"--upstream", sim.base_url(), "--keys", keys}, kUpstreamKey);

  const HttpResult none = gw.post("/v1/chat/completions", kChat);
  EXPECT_EQ(none.status, 401);
  EXPECT_TRUE(none.json()["error"]["code"].is_null());
  const HttpResult wrong = gw.post("/v1/chat/completions", kChat, {"Authorization: Bearer fg-not-a-key"});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.json()["error"]["code"], "invalid_api_key");

  const HttpResult ok = gw.post("/v1/chat/completions", kChat,
                                {"Authorization: Bearer " + kClientKey, "x-floodgate-lane: interactive"});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.headers.at("x-floodgate-lane"), "batch") << "this key may not choose its lane";

  gw.stop();
  const std::string log = floodgate::test::slurp(gw.log_path());
  EXPECT_NE(log.find(" 200 lane=batch key=nightly#"), std::string::npos) << log;
  EXPECT_EQ(log.find(kClientKey), std::string::npos) << log;
  EXPECT_EQ(log.find("fg-not-a-key"), std::string::npos) << log;
  EXPECT_EQ(log.find(kUpstreamKey), std::string::npos) << log;
}

TEST(Serve, SigtermLetsARequestInFlightFinish) {
  SimProcess sim({"--latency", "fixed:1500ms", "--fault-rate", "0"}, sim_options());
  ServeProcess gw({"--upstream", sim.base_url(), "--grace", "20s"}, kUpstreamKey);
  auto answer = std::async(std::launch::async, [&] { return gw.post("/v1/chat/completions", kChat, {}, 60s); });
  ASSERT_TRUE(wait_for_metric(gw, "floodgate_gateway_upstream_in_flight", "1"));
  ::kill(gw.pid(), SIGTERM);
  const HttpResult r = answer.get();
  EXPECT_EQ(r.status, 200) << r.body << r.error;
  const int status = gw.stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(Serve, RefusesWhatItCannotServeSafely) {
  floodgate::test::TempDir dir("serve_refuses");
  using floodgate::test::RunProcess;
  RunProcess::Options serve;
  serve.command = "serve";
  {
    RunProcess p({"--host", "0.0.0.0", "--port", "0", "--usage-db", dir.file("open.sqlite")}, kUpstreamKey, dir.path / "open.log", serve);
    EXPECT_EQ(p.wait(20s), 2);
    EXPECT_NE(floodgate::test::slurp(dir.path / "open.log").find("is not a loopback address: give --keys FILE"), std::string::npos);
  }
  {
    RunProcess p({"--port", "0"}, "", dir.path / "nokey.log", serve);
    EXPECT_EQ(p.wait(20s), 2);
    EXPECT_NE(floodgate::test::slurp(dir.path / "nokey.log").find("no upstream key: set OPENAI_API_KEY or give --upstream-key-file FILE"),
              std::string::npos);
  }
  {
    const std::string keys = dir.file("keys.json");
    std::ofstream(keys) << "{\"keys\": [\n  {\"key\": \"k\",, \"name\": \"a\"}\n]}";
    RunProcess p({"--port", "0", "--keys", keys}, kUpstreamKey, dir.path / "keys.log", serve);
    EXPECT_EQ(p.wait(20s), 2);
    EXPECT_NE(floodgate::test::slurp(dir.path / "keys.log").find("keys.json: not valid JSON: parse error at line 2, column 15"),
              std::string::npos)
        << floodgate::test::slurp(dir.path / "keys.log");
  }
  {
    RunProcess p({"--port", "0", "--no-engine", "--rpm", "60"}, kUpstreamKey, dir.path / "relay.log", serve);
    EXPECT_EQ(p.wait(20s), 2);
    EXPECT_NE(floodgate::test::slurp(dir.path / "relay.log").find("--no-engine relays every call unpaced"), std::string::npos)
        << floodgate::test::slurp(dir.path / "relay.log");
  }
  {
    RunProcess p({"--port", "0", "--burst", "soon"}, kUpstreamKey, dir.path / "burst.log", serve);
    EXPECT_EQ(p.wait(20s), 2);
    EXPECT_NE(floodgate::test::slurp(dir.path / "burst.log").find("bad duration for --burst: \"soon\""), std::string::npos)
        << floodgate::test::slurp(dir.path / "burst.log");
  }
  {
    // No place to write the usage database: fails at start, naming the file and the flag.
    std::ofstream(dir.file("plain")) << "a file, not a folder";
    const std::string db = dir.file("plain") + "/usage.sqlite";
    RunProcess p({"--port", "0", "--usage-db", db}, kUpstreamKey, dir.path / "db.log", serve);
    EXPECT_EQ(p.wait(20s), 2);
    const std::string log = floodgate::test::slurp(dir.path / "db.log");
    EXPECT_NE(log.find("usage database " + db + ": cannot create its folder"), std::string::npos) << log;
    EXPECT_NE(log.find("(--usage-db PATH: a file in a folder the gateway may write)"), std::string::npos) << log;
  }
}

TEST(Serve, StreamedChatIsTheSimsStreamAndUsageIsAskedForUpstreamOnlyWhenTheClientDidNot) {
  SimProcess sim({"--latency", "none", "--fault-rate", "0"}, sim_options());
  ServeProcess gw({"--upstream", sim.base_url()}, kUpstreamKey);
  // The client asks for usage: the stream is passed on unchanged.
  const std::string asked =
      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Tell a story"}],"max_tokens":40,"stream":true,"stream_options":{"include_usage":true}})";
  const HttpResult through = gw.post("/v1/chat/completions", asked);
  const HttpResult direct = sim.post("/v1/chat/completions", asked);
  ASSERT_EQ(through.status, 200) << through.body;
  EXPECT_EQ(through.headers.at("content-type"), direct.headers.at("content-type"));
  const auto events = events_of(through.body);
  EXPECT_EQ(events, events_of(direct.body));
  ASSERT_GE(events.size(), 4u);
  const nlohmann::json usage = events[events.size() - 2]["usage"];
  ASSERT_TRUE(usage.is_object()) << through.body;

  // It does not: the gateway asks (the body upstream is the client's with the member last,
  // so the sim answers what it answers that body) and the client gets no usage at all.
  const std::string plain = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Tell a story"}],"max_tokens":40,"stream":true})";
  const HttpResult quiet = gw.post("/v1/chat/completions", plain);
  ASSERT_EQ(quiet.status, 200) << quiet.body;
  EXPECT_EQ(quiet.body.find("usage"), std::string::npos) << quiet.body;
  auto expected = events_of(direct.body);
  expected.erase(expected.end() - 2);  // the usage chunk
  for (auto& e : expected) {
    if (e.is_object()) e.erase("usage");
  }
  EXPECT_EQ(events_of(quiet.body), expected);

  // Both calls' usage was settled from their last chunk.
  const int out = usage["completion_tokens"].get<int>();
  EXPECT_TRUE(wait_for_metric(gw, "floodgate_gateway_usage_tokens_total{kind=\"output\"}", std::to_string(2 * out)));
  gw.stop();
  const std::string log = floodgate::test::slurp(gw.log_path());
  const std::string tokens = " tokens_in=" + std::to_string(usage["prompt_tokens"].get<int>()) + " tokens_out=" + std::to_string(out);
  std::size_t lines = 0;
  for (std::size_t at = log.find(tokens); at != std::string::npos; at = log.find(tokens, at + 1)) ++lines;
  EXPECT_EQ(lines, 2u) << log;
}

TEST(Serve, EventsAreRelayedAsTheyArriveAndAClientLeavingMidStreamEndsTheUpstreamCall) {
  ScriptedUpstream upstream;
  ServeProcess gw({"--upstream", upstream.base_url()}, kUpstreamKey);
  const std::string body = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true})";
  const auto request = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kClientKey +
                       "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string first = R"(data: {"choices":[{"index":0,"delta":{"content":"Hel"}}],"usage":null})" "\n\n";
  const std::string second = R"(data: {"choices":[{"index":0,"delta":{"content":"lo"}}],"usage":null})" "\n\n";
  const std::string usage = R"(data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})" "\n\n";

  for (const bool leave : {false, true}) {
    Socket client = Socket::connect_to(port_of(gw.base_url()));
    client.send(request);
    Socket up = upstream.accept();
    ASSERT_TRUE(up.read_until("\"include_usage\":true}}")) << up.data();
    EXPECT_NE(up.data().find("Authorization: Bearer " + kUpstreamKey + "\r\n"), std::string::npos) << up.data();
    EXPECT_EQ(up.data().find(kClientKey), std::string::npos) << "the client's key never goes upstream";
    up.send(head + chunked(first));
    // The first event reaches the client while the upstream has sent nothing more.
    ASSERT_TRUE(client.read_until("\"Hel\"")) << client.data();
    EXPECT_EQ(client.data().find("usage"), std::string::npos) << client.data();
    if (leave) {
      client.close();
      EXPECT_TRUE(up.closed_within(10s)) << "the gateway ends the upstream call when its client leaves";
      break;
    }
    up.send(chunked(second) + chunked(usage) + chunked("data: [DONE]\n\n") + "0\r\n\r\n");
    ASSERT_TRUE(client.read_until("\r\n0\r\n\r\n")) << client.data();
    EXPECT_NE(client.data().find("\"lo\""), std::string::npos);
    EXPECT_EQ(client.data().find("usage"), std::string::npos) << client.data();
    EXPECT_NE(client.data().find("data: [DONE]"), std::string::npos);
  }
  EXPECT_TRUE(wait_for_metric(gw, "floodgate_gateway_upstream_cancelled_total", "1"));
  // Counted once the last byte is written: the client may see it first.
  EXPECT_TRUE(wait_for_metric(gw, "floodgate_gateway_usage_tokens_total{kind=\"output\"}", "2"));
  gw.stop();
  const std::string log = floodgate::test::slurp(gw.log_path());
  EXPECT_NE(log.find(" POST /v1/chat/completions 200 lane=interactive "), std::string::npos) << log;
  EXPECT_NE(log.find(" POST /v1/chat/completions 499 lane=interactive "), std::string::npos) << log;
}

TEST(Serve, AClientLeavingBeforeTheAnswerEndsTheUpstreamCall) {
  ScriptedUpstream upstream;
  ServeProcess gw({"--upstream", upstream.base_url()}, kUpstreamKey);
  Socket client = Socket::connect_to(port_of(gw.base_url()));
  const std::string body = R"({"model":"text-embedding-3-small","input":"x"})";
  client.send("POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
              std::to_string(body.size()) + "\r\n\r\n" + body);
  Socket up = upstream.accept();
  ASSERT_TRUE(up.read_until("\r\n\r\n" + body));
  client.close();
  EXPECT_TRUE(up.closed_within(10s));
  EXPECT_TRUE(wait_for_metric(gw, "floodgate_gateway_upstream_cancelled_total", "1"));
  EXPECT_TRUE(wait_for_metric(gw, "floodgate_gateway_upstream_in_flight", "0")) << "its place upstream is free again";
}

TEST(Serve, AnUpstreamThatDoesNotAnswerInTimeIsA502) {
  ScriptedUpstream upstream;
  // The relay's own timeout: --no-engine sends the chat call through it.
  ServeProcess gw({"--upstream", upstream.base_url(), "--upstream-timeout", "500ms", "--no-engine"}, kUpstreamKey);
  auto answer = std::async(std::launch::async, [&] { return gw.post("/v1/chat/completions", kChat); });
  Socket up = upstream.accept();
  ASSERT_TRUE(up.read_until(kChat));
  const HttpResult r = answer.get();
  EXPECT_EQ(r.status, 502) << r.body << r.error;
  EXPECT_EQ(r.json()["error"]["code"], "upstream_error");
  EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("no answer from the upstream within --upstream-timeout (500 ms)"),
            std::string::npos)
      << r.body;
  EXPECT_TRUE(up.closed_within(10s)) << "the upstream connection is closed";
  EXPECT_TRUE(wait_for_metric(gw, "floodgate_gateway_upstream_in_flight", "0"));
}

TEST(Serve, AnUploadIsStreamedUpstreamAsItArrives) {
  ScriptedUpstream upstream;
  ServeProcess gw({"--upstream", upstream.base_url()}, kUpstreamKey);
  const std::string form = multipart("b0undary", wav(2.0));
  const std::size_t half = form.size() / 2;
  Socket client = Socket::connect_to(port_of(gw.base_url()));
  client.send("POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b0undary\r\n"
              "Content-Length: " + std::to_string(form.size()) + "\r\n\r\n" + form.substr(0, half));
  Socket up = upstream.accept();
  // The first half is upstream while the client still holds the second.
  ASSERT_TRUE(up.read_until("name=\"file\"")) << up.data();
  EXPECT_NE(up.data().find("Content-Length: " + std::to_string(form.size()) + "\r\n"), std::string::npos) << up.data();
  client.send(form.substr(half));
  ASSERT_TRUE(up.read_until("--b0undary--\r\n"));
  EXPECT_EQ(up.data().substr(up.data().find("\r\n\r\n") + 4), form) << "every byte, unchanged";
  const std::string answer = R"({"text":"hello"})";
  up.send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(answer.size()) + "\r\n\r\n" + answer);
  ASSERT_TRUE(client.read_until(answer)) << client.data();
  EXPECT_EQ(client.data().rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << client.data();
}

TEST(Serve, ATranscriptionThroughTheGatewayEqualsCallingTheSimDirectly) {
  SimProcess sim({"--latency", "none", "--fault-rate", "0"}, sim_options());
  ServeProcess gw({"--upstream", sim.base_url()}, kUpstreamKey);
  const std::string form = multipart("xYz", wav(3.5));
  const std::vector<std::string> type{"Content-Type: multipart/form-data; boundary=xYz"};
  const HttpResult through = gw.post("/v1/audio/transcriptions", form, type);
  const HttpResult direct = sim.post("/v1/audio/transcriptions", form, type);
  ASSERT_EQ(through.status, 200) << through.body;
  EXPECT_EQ(through.json(), direct.json());
  EXPECT_FALSE(through.json()["text"].get<std::string>().empty());
  EXPECT_EQ(through.headers.at("x-floodgate-lane"), "interactive");
  // And a client that sends it chunked (no length known in advance).
  const HttpResult chunked_through =
      gw.post("/v1/audio/transcriptions", form, {type[0], "Transfer-Encoding: chunked"});
  EXPECT_EQ(chunked_through.json(), direct.json()) << chunked_through.body;
}

TEST(Serve, AnUpstream429WaitsInTheGatewayInsteadOfReachingTheClient) {
  // 1,200 requests a minute, counted over every 100 ms as well: 2 per 100 ms. A burst of 30
  // straight to the sim meets 429s; through the gateway the engine retries them (and paces
  // once it has learned the limit), and every client gets its 200.
  SimProcess sim({"--latency", "none", "--fault-rate", "0", "--rpm", "1200", "--window", "quantized", "--quantum", "100ms"},
                 sim_options());
  const auto burst = [](const std::function<HttpResult(const std::string&)>& post) {
    std::vector<std::future<HttpResult>> answers;
    for (int i = 0; i < 30; ++i) {
      const std::string body =
          R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"n)" + std::to_string(i) + R"("}],"max_tokens":4})";
      answers.push_back(std::async(std::launch::async, [post, body] { return post(body); }));
    }
    std::map<long, int> statuses;
    for (auto& a : answers) ++statuses[a.get().status];
    return statuses;
  };
  const auto direct = burst([&](const std::string& body) { return sim.post("/v1/chat/completions", body); });
  EXPECT_GT(direct.count(429) ? direct.at(429) : 0, 0) << "the sim's limit bites a burst";
  std::this_thread::sleep_for(200ms);  // the sim's 100 ms quantum passes
  ServeProcess gw({"--upstream", sim.base_url()}, kUpstreamKey);
  const auto through = burst([&](const std::string& body) { return gw.post("/v1/chat/completions", body, {}, 60s); });
  EXPECT_EQ(through.size(), 1u);
  EXPECT_EQ(through.count(200) ? through.at(200) : 0, 30);
  gw.stop();
  const std::string log = floodgate::test::slurp(gw.log_path());
  EXPECT_EQ(log.find(" 429 "), std::string::npos) << log;
}

TEST(Serve, TheLimitFlagsPaceABurstInFrontOfAnUnlimitedUpstream) {
  // --rpm 600 is one request per 100 ms, at most 1 s (10 requests) ahead of the pace (serve's
  // default --burst 1s). A burst of 40 then reaches the sim over at least ~3 s, however fast
  // the machine: 10 at once, then one per 100 ms (the pace is never faster, only slower).
  SimProcess sim({"--latency", "none", "--fault-rate", "0"}, ledger_sim());  // no limits of its own
  ServeProcess gw({"--upstream", sim.base_url(), "--rpm", "600"}, kUpstreamKey);
  std::vector<std::future<HttpResult>> answers;
  for (int i = 0; i < 40; ++i) {
    const std::string body =
        R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"p)" + std::to_string(i) + R"("}],"max_tokens":4})";
    answers.push_back(std::async(std::launch::async, [&gw, body] { return gw.post("/v1/chat/completions", body, {}, 60s); }));
  }
  std::map<long, int> statuses;
  for (auto& a : answers) ++statuses[a.get().status];
  EXPECT_EQ(statuses, (std::map<long, int>{{200, 40}}));
  std::vector<std::int64_t> sent;
  for (const auto& e : sim.ledger()) {
    if (e.value("path", "") == "/v1/chat/completions") sent.push_back(floodgate::test::ledger_ms(e["ts"].get<std::string>()));
  }
  ASSERT_EQ(sent.size(), 40u) << "each request sent once, no 429 retried";
  std::sort(sent.begin(), sent.end());
  // Generous bounds: the sim stamps a request when it reads it, and a busy machine may hold
  // the first ones back and let later ones catch up (21 in a second at the exact pace; 22
  // seen under load). Unpaced, the 40 arrive within a second.
  EXPECT_GE(sent.back() - sent.front(), 2'000) << "30 requests after the burst, 100 ms apart";
  EXPECT_LE(floodgate::test::max_in_window(sent, 1'000), 30u) << "about the burst and one second's pace in any second";
  EXPECT_EQ(sim.stats()["by_status"].value("429", 0), 0);
  // /metrics: the model's limiter as of its last answer, the limit given and the 40 in its window.
  const std::string rpm = R"({model="gpt-4o-mini",dimension="requests_per_minute"})";
  EXPECT_EQ(metric(gw, "floodgate_gateway_limit" + rpm), "600");
  EXPECT_EQ(metric(gw, "floodgate_gateway_limit_used" + rpm), "40");
  EXPECT_EQ(metric(gw, "floodgate_gateway_limit_headroom" + rpm), "560");
  EXPECT_EQ(metric(gw, "floodgate_gateway_limit_paused_seconds{model=\"gpt-4o-mini\"}"), "0");
}

namespace {

const std::string kOtherKey = "fg-other-secret-5e6f70";
const std::string kOpsKey = "fg-ops-secret-8a9b0c";

// What the answers said they used, and what that costs in the built-in price table.
struct Spent {
  std::int64_t input = 0;
  std::int64_t output = 0;
  double usd = 0;
  void add(const std::string& model, const nlohmann::json& usage) {
    floodgate::Usage u;
    u.prompt_tokens = usage.at("prompt_tokens").get<std::uint64_t>();
    u.completion_tokens = usage.value("completion_tokens", std::uint64_t{0});
    u.total_tokens = u.prompt_tokens + u.completion_tokens;
    input += static_cast<std::int64_t>(u.prompt_tokens);
    output += static_cast<std::int64_t>(u.completion_tokens);
    usd += floodgate::cost::cost_usd(*floodgate::cost::PriceTable::builtin().find(model), u);
  }
};

// The row of `name` in a /v1/floodgate/usage answer (null when absent).
nlohmann::json usage_row(const HttpResult& r, const std::string& name) {
  const nlohmann::json answer = r.json();
  for (const auto& row : answer["keys"]) {
    if (row["name"] == name) return row;
  }
  return nullptr;
}

// A chat body whose admission charge tells its lane in the sim's ledger (tokens_charged: the
// same prompt, max_tokens 4 for interactive and 9 for batch).
std::string lane_chat(bool interactive) {
  return std::string(R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}],"max_tokens":)") +
         (interactive ? "4" : "9") + "}";
}

// `n` chats posted at once, each on a thread of its own, in a lane.
void post_chats(const ServeProcess& gw, bool interactive, int n, std::vector<std::future<HttpResult>>& into) {
  for (int i = 0; i < n; ++i) {
    into.push_back(std::async(std::launch::async, [&gw, interactive] {
      return gw.post("/v1/chat/completions", lane_chat(interactive),
                     {interactive ? "x-floodgate-lane: interactive" : "x-floodgate-lane: batch"}, 60s);
    }));
  }
}

// The ledger's chat requests in the order the sim took them: true for interactive ones.
std::vector<bool> ledger_lanes(const SimProcess& sim) {
  std::vector<std::pair<std::int64_t, std::int64_t>> entries;  // (ts, tokens_charged)
  for (const auto& e : sim.ledger()) {
    if (e.value("path", "") != "/v1/chat/completions") continue;
    entries.emplace_back(floodgate::test::ledger_ms(e["ts"].get<std::string>()), e.value("tokens_charged", std::int64_t{0}));
  }
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::int64_t low = INT64_MAX;
  for (const auto& [ts, charged] : entries) low = std::min(low, charged);
  std::vector<bool> lanes;
  for (const auto& [ts, charged] : entries) lanes.push_back(charged == low);
  return lanes;
}

}  // namespace

TEST(Serve, UsageAndCostPerKeyAreRecordedShownPerKeyAndSummarizedAtExitWithoutAKey) {
  SimProcess sim({"--latency", "none", "--fault-rate", "0"}, sim_options());
  floodgate::test::TempDir dir("serve_usage");
  const std::string keys = dir.file("keys.json");
  std::ofstream(keys) << R"({"keys": [{"key": ")" << kClientKey << R"(", "name": "web"},
    {"key": ")" << kOtherKey << R"(", "name": "nightly", "lane": "batch"},
    {"key": ")" << kOpsKey << R"(", "name": "ops", "sees_all_usage": true}]})";
  auto gw = std::make_unique<ServeProcess>(std::vector<std::string>{"--upstream", sim.base_url(), "--keys", keys}, kUpstreamKey);
  const auto as = [](const std::string& key) { return std::vector<std::string>{"Authorization: Bearer " + key}; };

  Spent web;
  Spent nightly;
  for (int i = 0; i < 2; ++i) {
    const HttpResult r = gw->post("/v1/chat/completions", kChat, as(kClientKey));
    ASSERT_EQ(r.status, 200) << r.body;
    web.add("gpt-4o-mini", r.json()["usage"]);
  }
  // A stream (through the relay): its usage from the last chunk.
  const HttpResult streamed = gw->post(
      "/v1/chat/completions",
      R"({"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say more"}],"max_tokens":12})",
      as(kClientKey));
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  const auto events = events_of(streamed.body);
  ASSERT_GE(events.size(), 2u);
  web.add("gpt-4o-mini", events[events.size() - 2]["usage"]);
  const HttpResult chat = gw->post("/v1/chat/completions", kChat, as(kOtherKey));
  ASSERT_EQ(chat.status, 200) << chat.body;
  nightly.add("gpt-4o-mini", chat.json()["usage"]);
  const std::string embed = R"({"model":"text-embedding-3-small","input":["one","two","three"]})";
  const HttpResult embedded = gw->post("/v1/embeddings", embed, as(kOtherKey));
  ASSERT_EQ(embedded.status, 200) << embedded.body;
  nightly.add("text-embedding-3-small", embedded.json()["usage"]);
  EXPECT_EQ(gw->get("/v1/models", as(kOtherKey)).status, 200);  // recorded too: no tokens

  const auto check = [](const nlohmann::json& row, const Spent& spent, std::uint64_t requests) {
    ASSERT_TRUE(row.is_object());
    EXPECT_EQ(row["requests"], requests);
    EXPECT_EQ(row["by_status"]["200"], requests);
    EXPECT_EQ(row["input_tokens"], spent.input);
    EXPECT_EQ(row["output_tokens"], spent.output);
    EXPECT_NEAR(row["cost_usd"].get<double>(), spent.usd, 1e-12);
    EXPECT_GT(spent.usd, 0);
    EXPECT_TRUE(row["budget_usd"].is_null());
  };
  // A key sees its own row only.
  const HttpResult own = gw->get("/v1/floodgate/usage", as(kClientKey));
  ASSERT_EQ(own.status, 200) << own.body;
  ASSERT_EQ(own.json()["keys"].size(), 1u) << own.body;
  check(usage_row(own, "web"), web, 3);
  // Every row for a key that may see them all (ops: in the file, no calls yet).
  const HttpResult all = gw->get("/v1/floodgate/usage", as(kOpsKey));
  ASSERT_EQ(all.json()["keys"].size(), 3u) << all.body;
  check(usage_row(all, "web"), web, 3);
  check(usage_row(all, "nightly"), nightly, 3);
  EXPECT_EQ(usage_row(all, "ops")["requests"], 0);
  EXPECT_EQ(gw->get("/v1/floodgate/usage").status, 401);

  const std::string folder = gw->dir();
  EXPECT_EQ(gw->stop(), 0);
  const std::string log = floodgate::test::slurp(gw->log_path());
  EXPECT_NE(log.find("usage per client key ("), std::string::npos) << log;
  EXPECT_TRUE(std::regex_search(log, std::regex(R"(\n  web#[0-9a-f]{8}: 3 requests \(200: 3\), tokens in [0-9]+ out [0-9]+, \$)"))) << log;
  EXPECT_TRUE(std::regex_search(log, std::regex(R"(\n  nightly#[0-9a-f]{8}: 3 requests \(200: 3\))"))) << log;
  // The usage database is in the gateway's folder: no key in it, nor anywhere else.
  EXPECT_TRUE(std::filesystem::exists(folder + "/usage.sqlite"));
  for (const std::string& secret : {kClientKey, kOtherKey, kOpsKey, kUpstreamKey}) {
    EXPECT_TRUE(files_containing(folder, secret).empty()) << secret;
  }
}

TEST(Serve, ABudgetSpentAnswers429InsufficientQuotaAndStaysSpentAfterARestart) {
  SimProcess sim({"--latency", "none", "--fault-rate", "0"}, sim_options());
  floodgate::test::TempDir dir("serve_budget");
  const std::string keys = dir.file("keys.json");
  // One call of kChat costs about $0.00001: the first goes, and spends the budget.
  std::ofstream(keys) << R"({"keys": [{"key": ")" << kClientKey << R"(", "name": "capped", "budget_usd": 0.000001}]})";
  const std::vector<std::string> args = {"--upstream", sim.base_url(), "--keys", keys, "--usage-db", dir.file("usage.sqlite")};
  const std::vector<std::string> auth = {"Authorization: Bearer " + kClientKey};
  const auto refused = [](const HttpResult& r) {
    EXPECT_EQ(r.status, 429) << r.body;
    EXPECT_EQ(r.json()["error"]["code"], "insufficient_quota") << r.body;
    EXPECT_EQ(r.json()["error"]["type"], "insufficient_quota") << r.body;
    EXPECT_EQ(r.json()["error"]["message"].get<std::string>().rfind("You exceeded your current quota: this floodgate gateway's key 'capped' has spent $0.0000", 0), 0u)
        << r.body;
  };
  {
    ServeProcess gw(args, kUpstreamKey);
    ASSERT_EQ(gw.post("/v1/chat/completions", kChat, auth).status, 200);
    refused(gw.post("/v1/chat/completions", kChat, auth));
    EXPECT_EQ(gw.stop(), 0);
  }
  ServeProcess gw(args, kUpstreamKey);
  refused(gw.post("/v1/chat/completions", kChat, auth));
  const HttpResult usage = gw.get("/v1/floodgate/usage", auth);
  const auto row = usage_row(usage, "capped");
  ASSERT_TRUE(row.is_object()) << usage.body;
  EXPECT_EQ(row["by_status"], nlohmann::json::parse(R"({"200":1,"429":2})"));
  EXPECT_EQ(row["budget_usd"], 0.000001);
  EXPECT_EQ(row["budget_left_usd"], 0.0);
}

TEST(Serve, AKeysRequestsPerMinuteHoldsAndTheNextIsRefusedWithRetryAfter) {
  SimProcess sim({"--latency", "none", "--fault-rate", "0"}, sim_options());
  floodgate::test::TempDir dir("serve_sublimit");
  const std::string keys = dir.file("keys.json");
  std::ofstream(keys) << R"({"keys": [{"key": ")" << kClientKey
                      << R"(", "name": "slow", "requests_per_minute": 2, "share_of_tokens_per_minute": 0.5}]})";
  // The lane's wait (2 s) is shorter than the minute's: the third is refused, not held.
  ServeProcess gw({"--upstream", sim.base_url(), "--keys", keys, "--interactive-wait", "2s"}, kUpstreamKey);
  const std::vector<std::string> auth = {"Authorization: Bearer " + kClientKey};
  const auto started = std::chrono::steady_clock::now();
  ASSERT_EQ(gw.post("/v1/chat/completions", kChat, auth).status, 200);
  ASSERT_EQ(gw.post("/v1/chat/completions", kChat, auth).status, 200);
  const HttpResult third = gw.post("/v1/chat/completions", kChat, auth);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(third.status, 429) << third.body;
  EXPECT_EQ(third.json()["error"]["code"], "rate_limit_exceeded");
  EXPECT_EQ(third.json()["error"]["type"], "requests");
  EXPECT_NE(third.json()["error"]["message"].get<std::string>().find("key 'slow' is over its requests_per_minute 2"), std::string::npos)
      << third.body;
  // The first leaves the 60 s window 60 s after it went (to its 100 ms slot's end).
  const int retry = std::stoi(third.headers.at("retry-after"));
  EXPECT_LE(retry, 61);
  EXPECT_GE(retry, 60 - std::chrono::duration_cast<std::chrono::seconds>(elapsed).count() - 1);
  const long retry_ms = std::stol(third.headers.at("retry-after-ms"));
  EXPECT_GT(retry_ms, 50'000);
  EXPECT_LE(retry_ms, 60'100);
  gw.stop();
  const std::string log = floodgate::test::slurp(gw.log_path());
  // The share of the upstream's tokens per minute cannot apply (no limit known): said once.
  const auto said = log.find("key slow#");
  ASSERT_NE(said, std::string::npos) << log;
  EXPECT_NE(log.find("does not apply (the upstream's limit is not known", said), std::string::npos) << log;
  EXPECT_EQ(log.find("does not apply", log.find("does not apply") + 1), std::string::npos) << "said once: " << log;
}

TEST(Serve, AKeysShareIsOfTheUpstreamLimitGivenToTheGateway) {
  SimProcess sim({"--latency", "none", "--fault-rate", "0"}, sim_options());
  floodgate::test::TempDir dir("serve_share");
  const std::string keys = dir.file("keys.json");
  std::ofstream(keys) << R"({"keys": [{"key": ")" << kClientKey << R"(", "name": "tiny", "share_of_tokens_per_minute": 0.0001}]})";
  // 0.01% of --tpm 1000000 is 100 tokens a minute: a few calls of kChat (about 20 tokens
  // each), then a 429 (the lane's 1 s wait is shorter than the minute). The engine's own pace
  // at that limit holds nothing back.
  ServeProcess gw({"--upstream", sim.base_url(), "--keys", keys, "--tpm", "1000000", "--interactive-wait", "1s"}, kUpstreamKey);
  const std::vector<std::string> auth = {"Authorization: Bearer " + kClientKey};
  int ok = 0;
  HttpResult last;
  for (int i = 0; i < 10; ++i) {
    last = gw.post("/v1/chat/completions", kChat, auth);
    if (last.status != 200) break;
    ++ok;
  }
  EXPECT_GE(ok, 1);
  EXPECT_LE(ok, 5);
  EXPECT_EQ(last.status, 429) << last.body;
  EXPECT_EQ(last.json()["error"]["type"], "tokens") << last.body;
  EXPECT_NE(last.json()["error"]["message"].get<std::string>().find("over its share_of_tokens_per_minute 100 "), std::string::npos)
      << last.body;
  gw.stop();
  EXPECT_EQ(floodgate::test::slurp(gw.log_path()).find("does not apply"), std::string::npos);
}

TEST(Serve, AKeyWaitingForItsSubLimitWaitsAndAClientThatLeavesMeanwhileStopsWaiting) {
  SimProcess sim({"--latency", "none", "--fault-rate", "0"}, sim_options());
  floodgate::test::TempDir dir("serve_sublimit_wait");
  const std::string keys = dir.file("keys.json");
  std::ofstream(keys) << R"({"keys": [{"key": ")" << kClientKey << R"(", "name": "one", "requests_per_minute": 1}]})";
  // The lane waits 2 minutes: the second call of the minute waits for the window (~60 s).
  ServeProcess gw({"--upstream", sim.base_url(), "--keys", keys, "--interactive-wait", "2m"}, kUpstreamKey);
  const std::vector<std::string> auth = {"Authorization: Bearer " + kClientKey};
  ASSERT_EQ(gw.post("/v1/chat/completions", kChat, auth).status, 200);
  const HttpResult gave_up = gw.post("/v1/chat/completions", kChat, auth, 1s);
  EXPECT_EQ(gave_up.status, 0) << "still waiting after 1 s: " << gave_up.body;
  // The gateway sees it leave and stops waiting at once (its log line, 499), not after ~60 s.
  bool logged = false;
  for (int i = 0; i < 200 && !logged; ++i) {
    logged = floodgate::test::slurp(gw.log_path()).find(" 499 lane=interactive key=one#") != std::string::npos;
    if (!logged) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(logged) << floodgate::test::slurp(gw.log_path());
  EXPECT_EQ(gw.stop(), 0);
}

TEST(Serve, AnInteractiveRequestIsSentAtTheNextAdmissionNotAfterTheBatchRequestsWaiting) {
  // 120 a minute (one per 500 ms) and answers that take 2 s. The gateway hands the engine at
  // most 2 unsent requests per lane: an interactive request goes at the next admission. (When
  // in-flight calls held the lanes' room, --max-in-flight 8 of them, it waited for a batch
  // call's answer, 2 s, while batch requests kept being sent: 4 or more before it.)
  SimProcess sim({"--latency", "fixed:2s", "--fault-rate", "0", "--rpm", "120"}, ledger_sim());
  ServeProcess gw({"--upstream", sim.base_url(), "--rpm", "120", "--max-in-flight", "8"}, kUpstreamKey);
  std::vector<std::future<HttpResult>> batch;
  post_chats(gw, false, 10, batch);
  ASSERT_TRUE(sim.wait_for_requests(5)) << "the batch flood is paced, its burst spent";
  const auto before = sim.stats().value("requests", std::uint64_t{0});
  std::vector<std::future<HttpResult>> interactive;
  post_chats(gw, true, 2, interactive);
  for (auto& f : interactive) {
    const HttpResult r = f.get();
    EXPECT_EQ(r.status, 200) << r.body;
    // Its whole wait, the lane's and the engine's: about one pace interval; 4 at most (the
    // second waits for the first, and a busy machine delays the hand-over: 1.54 s was seen
    // under the full suite at a 506 ms interval). The interval is 513 ms, not 500: serve
    // paces within the window (pace_within_window: 120 per 60.6 s + the 1 s burst). The
    // ledger's order below is the sharper check.
    EXPECT_LE(std::stoll(r.headers.count("x-floodgate-queue-ms") ? r.headers.at("x-floodgate-queue-ms") : "999999"), 2100);
  }
  for (auto& f : batch) EXPECT_EQ(f.get().status, 200);
  const std::vector<bool> order = ledger_lanes(sim);
  ASSERT_EQ(order.size(), 12u);
  ASSERT_GE(order.size(), before);
  // The batch requests the sim took between the moment the interactive ones were posted and
  // the second of them: none but the one the limiter may have been admitting then, the batch
  // lane's minimum share (10%), and one more for a busy machine slow to deliver the posts
  // (x-floodgate-queue-ms above counts from their arrival at the gateway).
  std::size_t batch_between = 0;
  std::size_t seen = 0;
  for (std::size_t i = before; i < order.size() && seen < 2; ++i) {
    if (order[i]) {
      ++seen;
    } else {
      ++batch_between;
    }
  }
  EXPECT_EQ(seen, 2u);
  EXPECT_LE(batch_between, 3u) << "interactive waited behind batch";
  EXPECT_EQ(sim.stats()["by_status"].value("429", 0), 0);
}

TEST(Serve, BatchKeepsItsShareWhileInteractiveFloods) {
  // 600 a minute (one per 100 ms), batch owed half the admissions while it waits: of the
  // first 20 requests that both lanes wait for, batch gets about 10. Without the share's
  // priority in the engine, its requests would wait there behind interactive's: none.
  SimProcess sim({"--latency", "none", "--fault-rate", "0", "--rpm", "600"}, ledger_sim());
  ServeProcess gw({"--upstream", sim.base_url(), "--rpm", "600", "--batch-min-share", "0.5"}, kUpstreamKey);
  // Spend the burst first (1 s ahead of the pace: 10), so that both floods meet the pace.
  std::vector<std::future<HttpResult>> warm;
  post_chats(gw, false, 10, warm);
  for (auto& f : warm) EXPECT_EQ(f.get().status, 200);
  std::vector<std::future<HttpResult>> all;
  post_chats(gw, true, 20, all);
  post_chats(gw, false, 20, all);
  for (auto& f : all) EXPECT_EQ(f.get().status, 200);
  const std::vector<bool> order = ledger_lanes(sim);
  ASSERT_EQ(order.size(), 50u);
  const auto batch_in_first_20 = std::count(order.begin() + 10, order.begin() + 30, false);
  EXPECT_GE(batch_in_first_20, 6) << "batch's share, 10 of 20 at the exact pace";
  EXPECT_EQ(sim.stats()["by_status"].value("429", 0), 0);
}

TEST(Serve, StreamedChatBurstsWaitInTheGatewayToo) {
  // As AnUpstream429WaitsInTheGateway..., with stream: true: every stream goes when the engine says, a 429 is held and
  // retried before any byte reaches the client, and every client gets its whole stream.
  SimProcess sim({"--latency", "none", "--fault-rate", "0", "--rpm", "1200", "--window", "quantized", "--quantum", "100ms"},
                 sim_options());
  const auto burst = [](const std::function<HttpResult(const std::string&)>& post) {
    std::vector<std::future<HttpResult>> answers;
    for (int i = 0; i < 30; ++i) {
      const std::string body = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"n)" + std::to_string(i) +
                               R"("}],"max_tokens":4,"stream":true})";
      answers.push_back(std::async(std::launch::async, [post, body] { return post(body); }));
    }
    std::map<long, int> statuses;
    int whole = 0;
    for (auto& a : answers) {
      const HttpResult r = a.get();
      ++statuses[r.status];
      if (r.status == 200 && r.body.find("data: [DONE]") != std::string::npos) ++whole;
    }
    return std::make_pair(statuses, whole);
  };
  const auto direct = burst([&](const std::string& body) { return sim.post("/v1/chat/completions", body); });
  EXPECT_GT(direct.first.count(429) ? direct.first.at(429) : 0, 0) << "the sim's limit bites a burst of streams";
  std::this_thread::sleep_for(200ms);  // the sim's 100 ms quantum passes
  ServeProcess gw({"--upstream", sim.base_url()}, kUpstreamKey);
  const auto through = burst([&](const std::string& body) { return gw.post("/v1/chat/completions", body, {}, 60s); });
  EXPECT_EQ(through.first.size(), 1u);
  EXPECT_EQ(through.second, 30) << "30 whole streams";
  gw.stop();
  const std::string log = floodgate::test::slurp(gw.log_path());
  EXPECT_EQ(log.find(" 429 "), std::string::npos) << log;
}

TEST(Serve, AHeld429IsRetriedAndTheClientGetsTheSuccessWithTheUpstreamsHeaders) {
  ScriptedUpstream upstream;
  ServeProcess gw({"--upstream", upstream.base_url()}, kUpstreamKey);
  const std::string body = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true})";
  auto answer = std::async(std::launch::async, [&] { return gw.post("/v1/chat/completions", body); });
  {
    Socket up = upstream.accept();
    ASSERT_TRUE(up.read_until("\"include_usage\":true}}")) << up.data();
    const std::string limited = R"({"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}})";
    up.send("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nretry-after-ms: 20\r\nConnection: close\r\n"
            "Content-Length: " + std::to_string(limited.size()) + "\r\n\r\n" + limited);
  }
  Socket up = upstream.accept();  // the retry
  ASSERT_TRUE(up.read_until("\"include_usage\":true}}")) << up.data();
  const std::string event = R"(data: {"choices":[{"index":0,"delta":{"content":"ok"}}],"usage":null})" "\n\n";
  const std::string usage = R"(data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}})" "\n\n";
  up.send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nx-ratelimit-limit-requests: 500\r\n"
          "x-ratelimit-remaining-requests: 499\r\nopenai-processing-ms: 7\r\nTransfer-Encoding: chunked\r\n\r\n" +
          chunked(event) + chunked(usage) + chunked("data: [DONE]\n\n") + "0\r\n\r\n");
  const HttpResult r = answer.get();
  ASSERT_EQ(r.status, 200) << r.body << r.error;
  EXPECT_NE(r.body.find("\"ok\""), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("Rate limit"), std::string::npos) << "nothing of the 429 reached the client: " << r.body;
  EXPECT_EQ(r.headers.at("x-ratelimit-remaining-requests"), "499");
  EXPECT_EQ(r.headers.at("openai-processing-ms"), "7");
  EXPECT_TRUE(wait_for_metric(gw, "floodgate_gateway_usage_tokens_total{kind=\"output\"}", "1"));
  EXPECT_EQ(gw.stop(), 0);
  const std::string log = floodgate::test::slurp(gw.log_path());
  EXPECT_NE(log.find(" POST /v1/chat/completions 200 lane=interactive "), std::string::npos) << log;
  EXPECT_NE(log.find(" attempts=2 "), std::string::npos) << log;
}

TEST(Serve, InsufficientQuotaIsAnsweredInOpenAIsShapeThenRecheckedWithoutARestart) {
  ScriptedUpstream upstream;
  ServeProcess gw({"--upstream", upstream.base_url(), "--stop-recheck", "1s"}, kUpstreamKey);
  const std::string quota =
      R"({"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})";
  auto first = std::async(std::launch::async, [&] { return gw.post("/v1/chat/completions", kChat); });
  {
    Socket up = upstream.accept();
    ASSERT_TRUE(up.read_until(kChat)) << up.data();
    up.send("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
            std::to_string(quota.size()) + "\r\n\r\n" + quota);
  }
  const HttpResult r1 = first.get();
  EXPECT_EQ(r1.status, 429) << r1.body;
  EXPECT_EQ(r1.json(), nlohmann::json::parse(quota)) << "the upstream's own answer, not retried";
  // Until --stop-recheck has passed, the gateway answers the same without going upstream.
  const auto asked = std::chrono::steady_clock::now();
  const HttpResult r2 = gw.post("/v1/chat/completions", kChat);
  if (std::chrono::steady_clock::now() - asked < 900ms) {
    EXPECT_EQ(r2.status, 429) << r2.body;
    EXPECT_EQ(r2.json()["error"]["code"], "insufficient_quota") << r2.body;
    EXPECT_EQ(r2.json()["error"]["type"], "insufficient_quota") << r2.body;
  }
  // Then the next call goes upstream again (a fresh engine), and succeeds.
  std::this_thread::sleep_for(1100ms);
  auto third = std::async(std::launch::async, [&] { return gw.post("/v1/chat/completions", kChat); });
  Socket up = upstream.accept();
  ASSERT_TRUE(up.read_until(kChat)) << up.data();
  const std::string ok = R"({"id":"x","object":"chat.completion","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}})";
  up.send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(ok.size()) + "\r\n\r\n" + ok);
  const HttpResult r3 = third.get();
  EXPECT_EQ(r3.status, 200) << r3.body;
  EXPECT_EQ(r3.body, ok);
}

TEST(Serve, ARefusedUpstreamKeyIsTheGatewaysOwnErrorWithoutTheKey) {
  ScriptedUpstream upstream;
  ServeProcess gw({"--upstream", upstream.base_url()}, kUpstreamKey);
  auto answer = std::async(std::launch::async, [&] { return gw.post("/v1/chat/completions", kChat); });
  Socket up = upstream.accept();
  ASSERT_TRUE(up.read_until(kChat)) << up.data();
  // OpenAI's words name part of the key: they must not reach the client.
  const std::string refused = R"({"error":{"message":"Incorrect API key provided: sk-upstr*********9c51.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})";
  up.send("HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(refused.size()) +
          "\r\n\r\n" + refused);
  const HttpResult r = answer.get();
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(r.json()["error"]["code"], "upstream_key_refused") << r.body;
  EXPECT_EQ(r.body.find("sk-upstr"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("--upstream-key-file"), std::string::npos) << r.body;

  // An upload (sent once, its other answers relayed as they come) neither; on a gateway of its
  // own (the first one's engine may have stopped on the refusal: it answers without sending).
  ScriptedUpstream upstream2;
  ServeProcess gw2({"--upstream", upstream2.base_url()}, kUpstreamKey);
  const std::string form = multipart("k3y", wav(0.2));
  auto upload = std::async(std::launch::async, [&] {
    return gw2.post("/v1/audio/transcriptions", form, {"Content-Type: multipart/form-data; boundary=k3y"});
  });
  Socket up2 = upstream2.accept();
  ASSERT_TRUE(up2.read_until("--k3y--\r\n")) << up2.data();
  up2.send("HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(refused.size()) +
           "\r\n\r\n" + refused);
  const HttpResult u = upload.get();
  EXPECT_EQ(u.status, 502) << u.body;
  EXPECT_EQ(u.body.find("sk-upstr"), std::string::npos) << u.body;
}

// What a client got, every byte: `request` sent on a connection of its own (with Connection:
// close, so that the gateway ends it after its answer), read until the gateway closes it.
std::string raw_exchange(const ServeProcess& gw, const std::string& request) {
  Socket client = Socket::connect_to(port_of(gw.base_url()));
  client.send(request);
  EXPECT_TRUE(client.closed_within(10s)) << client.data();
  return client.data();
}

// The gateway's own 502 for an upstream 401, in every byte the client got (`raw`): OpenAI's
// words for a wrong key (which name part of it) are not among them, its code is.
void expect_key_refused(const std::string& raw) {
  EXPECT_EQ(raw.rfind("HTTP/1.1 502 ", 0), 0u) << raw;
  const auto body_at = raw.find("\r\n\r\n");
  ASSERT_NE(body_at, std::string::npos) << raw;
  nlohmann::json parsed = nlohmann::json::parse(raw.substr(body_at + 4), nullptr, false);
  ASSERT_TRUE(parsed.is_object() && parsed["error"].is_object()) << raw;
  const nlohmann::json& error = parsed["error"];
  EXPECT_EQ(error.value("code", ""), "upstream_key_refused") << raw;
  EXPECT_EQ(error.value("type", ""), "server_error") << raw;
  const std::string message = error.value("message", "");
  EXPECT_NE(message.find("(401 invalid_api_key)"), std::string::npos) << raw;
  EXPECT_NE(message.find("--upstream-key-file"), std::string::npos) << raw;
  EXPECT_NE(message.find("$OPENAI_API_KEY"), std::string::npos) << raw;
  EXPECT_EQ(raw.find("sk-upstr"), std::string::npos) << raw;
  EXPECT_EQ(raw.find("9c51"), std::string::npos) << raw;
  EXPECT_EQ(raw.find("Incorrect API key"), std::string::npos) << raw;
}

// The stopped gateway's log (`log_path`) has `line`, and no part of the upstream key.
void expect_logged_without_the_key(const std::string& log_path, const std::string& line) {
  const std::string log = floodgate::test::slurp(log_path);
  EXPECT_NE(log.find(line), std::string::npos) << log;
  EXPECT_EQ(log.find("sk-upstr"), std::string::npos) << log;
  EXPECT_EQ(log.find("9c51"), std::string::npos) << log;
}

// OpenAI's 401 for a wrong key: its message names part of the key. Connection: close, so that
// each call of a test meets a fresh upstream connection (one the test accepts).
const std::string kRefusedKey =
    R"({"error":{"message":"Incorrect API key provided: sk-upstr*********9c51.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})";
const std::string kRefusedKeyAnswer = "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                                      std::to_string(kRefusedKey.size()) + "\r\n\r\n" + kRefusedKey;

TEST(Serve, AnUpstream401IsNeverRelayedByTheRelayAlone) {
  // --no-engine: a laned call goes through the relay, which relays answers as they come; a
  // 401 is held and answered as the engine's path answers it, streamed or not.
  ScriptedUpstream upstream;
  ServeProcess gw({"--upstream", upstream.base_url(), "--no-engine"}, kUpstreamKey);
  const std::string stream = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true})";
  for (const std::string& body : {kChat, stream}) {
    auto raw = std::async(std::launch::async, [&] {
      return raw_exchange(gw, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    });
    Socket up = upstream.accept();
    ASSERT_TRUE(up.read_until("\"role\":\"user\"")) << up.data();
    up.send(kRefusedKeyAnswer);
    const std::string got = raw.get();
    expect_key_refused(got);
    EXPECT_NE(got.find("\r\nx-floodgate-lane: interactive\r\n"), std::string::npos) << got;
  }
  EXPECT_TRUE(wait_for_metric(gw, "floodgate_gateway_upstream_responses_total{code=\"401\"}", "2"));
  EXPECT_EQ(metric(gw, "floodgate_gateway_responses_total{route=\"chat_completions\",code=\"502\"}"), "2");
  EXPECT_EQ(gw.stop(), 0);
  expect_logged_without_the_key(gw.log_path(), " POST /v1/chat/completions 502 lane=interactive ");
}

TEST(Serve, AnUpstream401IsNeverRelayedOnTheProxiedRoutes) {
  // GET /v1/models and the rest of /v1/ go through the relay, unpaced, with the engine on.
  ScriptedUpstream upstream;
  ServeProcess gw({"--upstream", upstream.base_url()}, kUpstreamKey);
  auto raw = std::async(std::launch::async, [&] { return raw_exchange(gw, "GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); });
  Socket up = upstream.accept();
  ASSERT_TRUE(up.read_until("\r\n\r\n")) << up.data();
  EXPECT_EQ(up.data().rfind("GET /v1/models HTTP/1.1\r\n", 0), 0u) << up.data();
  up.send(kRefusedKeyAnswer);
  expect_key_refused(raw.get());
  EXPECT_TRUE(wait_for_metric(gw, "floodgate_gateway_upstream_responses_total{code=\"401\"}", "1"));
  EXPECT_EQ(gw.stop(), 0);
  expect_logged_without_the_key(gw.log_path(), " GET /v1/models 502 lane=- ");
}

TEST(Serve, UploadsArePacedByTheEngine) {
  // The sim takes 2 requests per 100 ms; the gateway is told 300 a minute (one per 200 ms,
  // at most 200 ms ahead of the pace). Straight to the sim a burst of 12 uploads meets 429s;
  // through the gateway the engine spreads them (before, uploads went out unpaced), and as
  // an upload is sent once (its body is not held), a 429 would have reached its client.
  SimProcess sim({"--latency", "none", "--fault-rate", "0", "--rpm", "1200", "--window", "quantized", "--quantum", "100ms"},
                 sim_options());
  const std::string form = multipart("pAce", wav(0.5));
  const std::vector<std::string> type{"Content-Type: multipart/form-data; boundary=pAce"};
  const auto burst = [&](const std::function<HttpResult()>& post) {
    std::vector<std::future<HttpResult>> answers;
    for (int i = 0; i < 12; ++i) answers.push_back(std::async(std::launch::async, post));
    std::map<long, int> statuses;
    for (auto& a : answers) ++statuses[a.get().status];
    return statuses;
  };
  const auto direct = burst([&] { return sim.post("/v1/audio/transcriptions", form, type); });
  EXPECT_GT(direct.count(429) ? direct.at(429) : 0, 0) << "the sim's limit bites a burst of uploads";
  std::this_thread::sleep_for(200ms);
  ServeProcess gw({"--upstream", sim.base_url(), "--rpm", "300", "--burst", "200ms"}, kUpstreamKey);
  const auto started = std::chrono::steady_clock::now();
  const auto through = burst([&] { return gw.post("/v1/audio/transcriptions", form, type, 60s); });
  EXPECT_EQ(through.size(), 1u);
  EXPECT_EQ(through.count(200) ? through.at(200) : 0, 12);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 1800ms) << "12 at one per 200 ms, one ahead: at least 2 s";
}

TEST(Serve, AClientThatHangsUpWhileItsCallWaitsInTheEngineCancelsItThere) {
  // --rpm 1: the first call goes at once, the next is a minute away. The second client's call
  // leaves its lane for the engine's queue and waits there; its client hangs up: the engine
  // drops it (499, counted as cancelled upstream) and it is never sent.
  SimProcess sim({"--latency", "none", "--fault-rate", "0"}, sim_options());
  ServeProcess gw({"--upstream", sim.base_url(), "--rpm", "1"}, kUpstreamKey);
  ASSERT_EQ(gw.post("/v1/chat/completions", kChat).status, 200);
  Socket client = Socket::connect_to(port_of(gw.base_url()));
  client.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
              std::to_string(kChat.size()) + "\r\n\r\n" + kChat);
  ASSERT_TRUE(wait_for_metric(gw, "floodgate_gateway_lane_admitted_total{lane=\"interactive\"}", "2")) << "handed to the engine";
  client.close();
  EXPECT_TRUE(wait_for_metric(gw, "floodgate_gateway_upstream_cancelled_total", "1"));
  EXPECT_EQ(sim.stats().value("requests", std::uint64_t{0}), 1u) << "the second call was never sent";
  EXPECT_EQ(gw.stop(), 0);
  EXPECT_NE(floodgate::test::slurp(gw.log_path()).find(" POST /v1/chat/completions 499 lane=interactive "), std::string::npos)
      << floodgate::test::slurp(gw.log_path());
}

TEST(Serve, AKeysShareIsOfTheLimitTheEngineLearnedFromTheUpstream) {
  // The sim says 200 requests a minute in its headers; the gateway is given no limit.
  SimProcess sim({"--latency", "none", "--fault-rate", "0", "--rpm", "200"}, sim_options());
  floodgate::test::TempDir dir("serve_share_learned");
  const std::string keys = dir.file("keys.json");
  std::ofstream(keys) << R"({"keys": [{"key": ")" << kClientKey << R"(", "name": "sliver", "share_of_requests_per_minute": 0.01}]})";
  ServeProcess gw({"--upstream", sim.base_url(), "--keys", keys, "--interactive-wait", "1s"}, kUpstreamKey);
  const std::vector<std::string> auth = {"Authorization: Bearer " + kClientKey};
  // The first call goes before anything is known (the share does not apply, said once);
  // once the engine has learned the limit from its answer, 1% of 200 is 2 a minute: two
  // more, then a 429.
  ASSERT_EQ(gw.post("/v1/chat/completions", kChat, auth).status, 200);
  ASSERT_TRUE(wait_for_metric(gw, "floodgate_gateway_limit{model=\"gpt-4o-mini\",dimension=\"requests_per_minute\"}", "200"));
  std::vector<long> statuses;
  HttpResult last;
  for (int i = 0; i < 3; ++i) {
    last = gw.post("/v1/chat/completions", kChat, auth);
    statuses.push_back(last.status);
  }
  EXPECT_EQ(statuses, (std::vector<long>{200, 200, 429})) << last.body;
  EXPECT_NE(last.json()["error"]["message"].get<std::string>().find("over its share_of_requests_per_minute 2 "), std::string::npos)
      << last.body;
  gw.stop();
  const std::string log = floodgate::test::slurp(gw.log_path());
  EXPECT_NE(log.find("does not apply"), std::string::npos) << log;
  EXPECT_EQ(log.find("does not apply", log.find("does not apply") + 1), std::string::npos) << log;
}
