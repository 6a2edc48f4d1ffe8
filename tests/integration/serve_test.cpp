// `floodgate serve` end to end: the gateway started on port 0 in front of `floodgate sim`
// (both children, through tests/support), talked to over 127.0.0.1 with libcurl.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

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

// A TCP listener on 127.0.0.1 that never accepts: a request sent to it is never answered.
class SilentUpstream {
 public:
  SilentUpstream() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("SilentUpstream: cannot listen");
    }
    port_ = ntohs(addr.sin_port);
  }
  ~SilentUpstream() { ::close(fd_); }
  SilentUpstream(const SilentUpstream&) = delete;
  SilentUpstream& operator=(const SilentUpstream&) = delete;
  [[nodiscard]] std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

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
  const std::string log = floodgate::test::slurp(gw->log_path());
  EXPECT_EQ(gw->stop(), 0) << "SIGTERM ends it cleanly";
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

  const HttpResult unknown = gw.post("/v1/nothing/here?x=1", "{}");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body,
            R"j({"error":{"message":"Invalid URL (POST /v1/nothing/here)","type":"invalid_request_error","param":null,"code":null}})j");

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
  EXPECT_EQ(metric(gw, "floodgate_gateway_upstream_responses_total{code=\"200\"}"), "2");
}

TEST(Serve, AFullLaneAndAnExpiredWaitAnswer429WithRetryAfter) {
  // One request upstream at a time, one waiting; the upstream never answers, so the first
  // request holds the only place upstream and nothing else is ever admitted.
  SilentUpstream upstream;
  ServeProcess gw({"--upstream", upstream.base_url(), "--max-in-flight", "1", "--interactive-queue", "1",
                   "--interactive-wait", "2s", "--grace", "1s"},
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
  SilentUpstream upstream;  // the first request holds the only place upstream for good
  ServeProcess gw({"--upstream", upstream.base_url(), "--max-in-flight", "1", "--interactive-queue", "1", "--grace", "1s"},
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
  const std::string log = floodgate::test::slurp(gw.log_path());
  EXPECT_NE(log.find(" POST /v1/chat/completions 499 lane=interactive "), std::string::npos) << log;
  gw.stop();
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

  const std::string log = floodgate::test::slurp(gw.log_path());
  gw.stop();
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
    RunProcess p({"--host", "0.0.0.0", "--port", "0"}, kUpstreamKey, dir.path / "open.log", serve);
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
}
