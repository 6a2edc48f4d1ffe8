// Integration: `floodgate sim` as a child process, driven over HTTP on 127.0.0.1.
#include <gtest/gtest.h>

#include <curl/curl.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <thread>
#include <vector>
#include <cstring>
#include <regex>
#include <string>

#include "support/sim_process.hpp"

namespace floodgate::test {
namespace {

using namespace std::chrono_literals;

const std::string kChat =
    R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}],"max_tokens":20})";

TEST(SimHttp, PrintsBaseUrlAndAnswersChat) {
  SimProcess sim;
  EXPECT_EQ(sim.base_url(), "http://127.0.0.1:" + std::to_string(sim.port()) + "/v1");
  const HttpResult r = sim.post("/v1/chat/completions", kChat);
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  const auto body = r.json();
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["usage"]["prompt_tokens"].get<int>() + body["usage"]["completion_tokens"].get<int>(),
            body["usage"]["total_tokens"].get<int>());
  EXPECT_TRUE(std::regex_match(r.headers.at("x-request-id"), std::regex("req_[0-9a-f]{32}")));
  const HttpResult models = sim.get("/v1/models");
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(models.json()["object"], "list");
  EXPECT_GT(models.json()["data"].size(), 5u);
}

// The arithmetic below uses the bytes charge ("hello there" = 3 + 4 + 3 = 10 prompt tokens);
// exact counting is checked in estimate_vs_sim_test.cpp.
TEST(SimHttp, StatsAndLedgerSeeEveryRequestAndNeverTheKey) {
  SimProcess sim({"--token-charge", "bytes"});
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(sim.post("/v1/chat/completions", kChat, {"x-client-request-id: id-" + std::to_string(i)}).status, 200);
  }
  const auto stats = sim.stats();
  EXPECT_EQ(stats["requests"], 3);
  EXPECT_EQ(stats["by_status"]["200"], 3);
  EXPECT_EQ(stats["max_requests_60s"], 3);
  EXPECT_EQ(stats["max_tokens_60s"], 90);
  const auto ledger = sim.ledger();
  ASSERT_EQ(ledger.size(), 3u);
  EXPECT_EQ(ledger[2]["client_request_id"], "id-2");
  EXPECT_EQ(ledger[0]["path"], "/v1/chat/completions");
  EXPECT_EQ(ledger[0]["tokens_charged"], 10 + 20);
  EXPECT_EQ(ledger[0]["body_sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(ledger[0]["body_sha256"], ledger[1]["body_sha256"]);
  for (const auto& line : ledger) EXPECT_EQ(line.dump().find(sim.api_key()), std::string::npos);
}

TEST(SimHttp, RequestAndTokenLimitsPerModelWithHeaders) {
  SimProcess sim({"--rpm", "3", "--tpm", "70", "--token-charge", "bytes"});
  // gpt-4o-mini: 30 tokens each → the third is refused on tokens (60 + 30 > 70).
  const HttpResult a = sim.post("/v1/chat/completions", kChat);
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(a.headers.at("x-ratelimit-limit-requests"), "3");
  EXPECT_EQ(a.headers.at("x-ratelimit-limit-tokens"), "70");
  EXPECT_EQ(a.headers.at("x-ratelimit-remaining-requests"), "2");
  EXPECT_EQ(a.headers.at("x-ratelimit-remaining-tokens"), "40");
  const std::regex duration(R"((\d+h)?(\d+m)?(\d+(\.\d{1,3})?s)|\d+ms)");
  EXPECT_TRUE(std::regex_match(a.headers.at("x-ratelimit-reset-requests"), duration)) << a.headers.at("x-ratelimit-reset-requests");
  EXPECT_TRUE(std::regex_match(a.headers.at("x-ratelimit-reset-tokens"), duration)) << a.headers.at("x-ratelimit-reset-tokens");
  ASSERT_EQ(sim.post("/v1/chat/completions", kChat).status, 200);
  const HttpResult t = sim.post("/v1/chat/completions", kChat);
  ASSERT_EQ(t.status, 429);
  EXPECT_EQ(t.json()["error"]["type"], "tokens");
  EXPECT_EQ(t.json()["error"]["code"], "rate_limit_exceeded");
  EXPECT_GE(std::stoi(t.headers.at("retry-after")), 1);
  EXPECT_GE(std::stoi(t.headers.at("retry-after-ms")), 1);
  // Another model has its own limits.
  const std::string other = R"({"model":"gpt-4o","messages":[{"role":"user","content":"hello there"}],"max_tokens":1})";
  ASSERT_EQ(sim.post("/v1/chat/completions", other).status, 200);
  ASSERT_EQ(sim.post("/v1/chat/completions", other).status, 200);
  ASSERT_EQ(sim.post("/v1/chat/completions", other).status, 200);
  const HttpResult r = sim.post("/v1/chat/completions", other);
  ASSERT_EQ(r.status, 429);
  EXPECT_EQ(r.json()["error"]["type"], "requests");
  EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("on requests per min (RPM): Limit 3, Used 3, Requested 1."),
            std::string::npos);
  const auto stats = sim.stats();
  EXPECT_EQ(stats["rate_limited"]["tokens"], 1);
  EXPECT_EQ(stats["rate_limited"]["requests"], 1);
  EXPECT_EQ(stats["models"]["gpt-4o"]["max_requests_60s"], 3);
  EXPECT_EQ(stats["models"]["gpt-4o-mini"]["max_tokens_60s"], 60);
}

TEST(SimHttp, ConfigFileAndTierPresets) {
  const std::string path = ::testing::TempDir() + "/sim-config.json";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(R"({"organization":"org-cfg","models":{"gpt-4o-mini":{"rpm":1},"my-model":{"kind":"chat","rpm":2}}})", f);
    std::fclose(f);
  }
  SimProcess sim({"--config", path});
  ASSERT_EQ(sim.post("/v1/chat/completions", kChat).status, 200);
  const HttpResult r = sim.post("/v1/chat/completions", kChat);
  ASSERT_EQ(r.status, 429);
  EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("in organization org-cfg"), std::string::npos);
  const HttpResult mine = sim.post("/v1/chat/completions", R"({"model":"my-model","messages":[{"role":"user","content":"x"}]})");
  ASSERT_EQ(mine.status, 200);
  EXPECT_EQ(mine.headers.at("x-ratelimit-limit-requests"), "2");

  SimProcess tier({"--tier", "1"});
  const HttpResult t = tier.post("/v1/chat/completions", kChat);
  ASSERT_EQ(t.status, 200);
  EXPECT_EQ(t.headers.at("x-ratelimit-limit-requests"), "500");
  EXPECT_EQ(t.headers.at("x-ratelimit-limit-tokens"), "200000");
}

TEST(SimHttp, QuotaExhaustion) {
  SimProcess sim({"--quota-tokens", "40"});
  ASSERT_EQ(sim.post("/v1/chat/completions", kChat).status, 200);
  ASSERT_EQ(sim.post("/v1/chat/completions", kChat).status, 200);
  const HttpResult r = sim.post("/v1/chat/completions", kChat);
  ASSERT_EQ(r.status, 429);
  EXPECT_EQ(r.json()["error"]["type"], "insufficient_quota");
  EXPECT_EQ(r.json()["error"]["code"], "insufficient_quota");
  EXPECT_EQ(sim.stats()["insufficient_quota"], 1);
}

TEST(SimHttp, AuthAndBadInput) {
  SimProcess sim({"--max-body-bytes", "2000"});
  EXPECT_EQ(sim.post("/v1/chat/completions", kChat, {"Authorization: Bearer sk-wrong"}).status, 401);
  const HttpResult none = sim.post("/v1/chat/completions", kChat, {"Authorization:"});
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.json()["error"]["type"], "invalid_request_error");
  EXPECT_EQ(sim.post("/v1/chat/completions", "{oops").status, 400);
  EXPECT_EQ(sim.post("/v1/chat/completions", R"({"model":"nope","messages":[{"role":"user","content":"x"}]})").status, 404);
  const HttpResult big = sim.post("/v1/chat/completions", std::string(5000, ' '));
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(big.json()["error"]["message"], "Maximum content size limit (2000) exceeded (5000 bytes read)");
  // Garbage instead of HTTP: answered 400 or closed, never a crash.
  http_request("GET", sim.root_url() + "/v1/models\r\n\r\nxx", "", {}, 5s);
  EXPECT_EQ(sim.post("/v1/chat/completions", kChat).status, 200);
}

TEST(SimHttp, DeterministicAcrossProcesses) {
  SimProcess a;
  SimProcess b;
  const auto ca = a.post("/v1/chat/completions", kChat).json()["choices"];
  const auto cb = b.post("/v1/chat/completions", kChat).json()["choices"];
  EXPECT_EQ(ca, cb);
  const std::string emb = R"({"model":"text-embedding-3-small","input":"same text","dimensions":16})";
  EXPECT_EQ(a.post("/v1/embeddings", emb).json()["data"], b.post("/v1/embeddings", emb).json()["data"]);
}

TEST(SimHttp, EveryFaultKindOnTheWire) {
  for (const std::string status : {"500", "502", "503"}) {
    SimProcess sim({"--fault-rate", "1", "--faults", status});
    const HttpResult r = sim.post("/v1/chat/completions", kChat);
    EXPECT_EQ(std::to_string(r.status), status);
    EXPECT_EQ(sim.stats()["faults"][status], 1);
    EXPECT_EQ(sim.ledger().at(0)["fault"], status);
  }
  {
    SimProcess sim({"--fault-rate", "1", "--faults", "truncated", "--token-charge", "bytes"});
    const HttpResult r = sim.post("/v1/chat/completions", kChat);
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.json().is_discarded()) << r.body;
    EXPECT_EQ(sim.ledger().at(0)["tokens_charged"], 30);  // charged: the server did the work
  }
  {
    SimProcess sim({"--fault-rate", "1", "--faults", "reset"});
    const HttpResult r = sim.post("/v1/chat/completions", kChat);
    EXPECT_EQ(r.status, 0);
    EXPECT_FALSE(r.error.empty());
    EXPECT_EQ(sim.stats()["faults"]["reset"], 1);
  }
  {
    SimProcess sim({"--fault-rate", "1", "--faults", "stall", "--stall-seconds", "300ms"});
    const auto t0 = std::chrono::steady_clock::now();
    const HttpResult r = sim.post("/v1/chat/completions", kChat, {}, 5s);
    EXPECT_EQ(r.status, 0);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 290ms);
    EXPECT_EQ(sim.stats()["faults"]["stall"], 1);
  }
  {
    SimProcess sim({"--fault-rate", "1", "--faults", "slow-first-byte", "--slow-first-byte", "300ms"});
    const auto t0 = std::chrono::steady_clock::now();
    const HttpResult r = sim.post("/v1/chat/completions", kChat);
    EXPECT_EQ(r.status, 200);
    EXPECT_FALSE(r.json().is_discarded());
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 290ms);
  }
}

TEST(SimHttp, LatencyFixed) {
  SimProcess sim({"--latency", "fixed:200ms"});
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(sim.post("/v1/chat/completions", kChat).status, 200);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 190ms);
}

TEST(SimHttp, PeakConcurrencyCountsRequestsInFlight) {
  // Six requests that must overlap: they start together (a latch) and each is held 1.5 s,
  // far longer than starting a thread and connecting takes even on a loaded machine (with
  // 400 ms the test failed once at load ~8).
  SimProcess sim({"--latency", "fixed:1500ms"});
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  std::latch ready(6);
  for (int i = 0; i < 6; ++i) {
    clients.emplace_back([&] {
      ready.arrive_and_wait();
      ok += sim.post("/v1/chat/completions", kChat).status == 200;
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(ok.load(), 6);
  EXPECT_EQ(sim.stats()["peak_concurrency"], 6);
  // A request leaves the server's count when its write completes, which may be just after
  // the client has read the answer: wait (bounded) for the count to settle.
  int in_flight = -1;
  for (int i = 0; i < 100 && in_flight != 1; ++i) {
    in_flight = sim.stats()["in_flight"].get<int>();
    if (in_flight != 1) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(in_flight, 1);  // the stats request itself
}

TEST(SimHttp, SigtermStopsCleanlyAndFlushesTheLedger) {
  SimProcess sim;
  ASSERT_EQ(sim.post("/v1/chat/completions", kChat).status, 200);
  const int status = sim.stop();
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(sim.ledger().size(), 1u);
}

// ---- uploads ---------------------------------------------------------------------------

struct Streamed {
  std::string head;
  std::uint64_t file_bytes = 0;
  std::string tail;
  std::uint64_t sent = 0;
  std::uint64_t total() const { return head.size() + file_bytes + tail.size(); }
};

size_t read_streamed(char* buf, size_t size, size_t n, void* user) noexcept {
  auto* s = static_cast<Streamed*>(user);
  const std::uint64_t want = size * n;
  std::uint64_t out = 0;
  while (out < want && s->sent < s->total()) {
    const std::uint64_t at = s->sent;
    char c;
    if (at < s->head.size()) {
      c = s->head[at];
    } else if (at < s->head.size() + s->file_bytes) {
      c = static_cast<char>('a' + (at % 26));
    } else {
      c = s->tail[at - s->head.size() - s->file_bytes];
    }
    buf[out++] = c;
    ++s->sent;
  }
  return out;
}

size_t sink(char* data, size_t size, size_t n, void* user) noexcept {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// Streams a multipart body (generated, never held in memory) with chunked encoding or a
// Content-Length. Returns the HTTP status (0 on a transport error).
long upload(const SimProcess& sim, std::uint64_t file_bytes, bool chunked, std::string* body,
            const std::string& filename = "big.mp3") {
  Streamed s;
  s.head = "--b0undary\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
           "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + filename + "\"\r\n\r\n";
  s.file_bytes = file_bytes;
  s.tail = "\r\n--b0undary--\r\n";
  CURL* h = curl_easy_init();
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, ("Authorization: Bearer " + sim.api_key()).c_str());
  headers = curl_slist_append(headers, "Content-Type: multipart/form-data; boundary=b0undary");
  if (chunked) headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
  const std::string url = sim.base_url() + "/audio/transcriptions";
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_READFUNCTION, &read_streamed);
  curl_easy_setopt(h, CURLOPT_READDATA, &s);
  if (!chunked) curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(s.total()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &sink);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  long status = 0;
  if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  return status;
}

TEST(SimHttp, TranscriptionUploadStreams) {
  SimProcess sim;
  std::string body;
  ASSERT_EQ(upload(sim, 3'000'000, true, &body, "talk.webm"), 200) << body;
  EXPECT_FALSE(nlohmann::json::parse(body)["text"].get<std::string>().empty());
  const auto line = sim.ledger().at(0);
  EXPECT_EQ(line["path"], "/v1/audio/transcriptions");
  EXPECT_GT(line["upload_bytes"].get<std::uint64_t>(), 3'000'000u);
  body.clear();
  EXPECT_EQ(upload(sim, 1000, false, &body, "notes.txt"), 400);
}

TEST(SimHttp, UploadOver25MBIsRejectedWithoutBuffering) {
  SimProcess sim;
  const long rss_before = sim.rss_kib();
  std::string body;
  // Declared size over the limit: refused from the head, nothing read.
  EXPECT_EQ(upload(sim, 30'000'000, false, &body), 413) << body;
  EXPECT_NE(body.find("Maximum content size limit (26214400) exceeded"), std::string::npos) << body;
  // Chunked: counted while streaming; counting stops at the limit.
  body.clear();
  const long status = upload(sim, 40'000'000, true, &body);
  EXPECT_TRUE(status == 413 || status == 0) << status;  // the client may see the close first
  const auto ledger = sim.ledger();
  ASSERT_EQ(ledger.size(), 2u);
  EXPECT_EQ(ledger[0]["status"], 413);
  EXPECT_EQ(ledger[0]["upload_bytes"], 0);
  EXPECT_EQ(ledger[1]["status"], 413);
  EXPECT_GT(ledger[1]["upload_bytes"].get<std::uint64_t>(), 26'214'400u);
  EXPECT_LT(ledger[1]["upload_bytes"].get<std::uint64_t>(), 26'214'400u + 128 * 1024);
  const long rss_after = sim.rss_kib();
  EXPECT_LT(rss_after - rss_before, 16 * 1024) << "RSS grew from " << rss_before << " to " << rss_after << " KiB";
}

// The ledger lets a script find the busiest 60 s window per model: each admitted line has
// its admission instant and its charge (the charge at admission kept apart under refunds).
TEST(SimHttp, LedgerHasAdmissionTimeAndCharge) {
  SimProcess sim({"--rpm", "2", "--token-charge", "bytes", "--refund-usage"});
  const std::string no_max = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]})";
  const std::string big = R"({"model":"gpt-4o-mini","max_tokens":500,"messages":[{"role":"user","content":"hello there"}]})";
  ASSERT_EQ(sim.post("/v1/chat/completions", no_max).status, 200);
  ASSERT_EQ(sim.post("/v1/chat/completions", big).status, 200);
  ASSERT_EQ(sim.post("/v1/chat/completions", big).status, 429);
  const auto ledger = sim.ledger();
  ASSERT_EQ(ledger.size(), 3u);
  EXPECT_EQ(ledger[0]["admitted"], true);
  EXPECT_EQ(ledger[0]["charge_at_admission"], 10 + 16);  // the default allowance is 16
  EXPECT_TRUE(ledger[0]["admitted_ms"].is_number_integer());
  EXPECT_GE(ledger[1]["admitted_ms"].get<std::int64_t>(), ledger[0]["admitted_ms"].get<std::int64_t>());
  EXPECT_EQ(ledger[1]["charge_at_admission"], 10 + 500);
  EXPECT_LE(ledger[1]["tokens_charged"].get<int>(), 10 + 64);  // refunded to the usage (answers are 8-64 tokens)
  EXPECT_EQ(ledger[2]["admitted"], false);
  EXPECT_TRUE(ledger[2]["admitted_ms"].is_null());
  EXPECT_EQ(ledger[2]["tokens_charged"], 0);
}

TEST(SimHttp, AzureDialectOnTheWire) {
  SimProcess sim({"--dialect", "azure", "--rpm", "100", "--tpm", "10000", "--charge", "flat:16", "--window", "rolling"});
  const std::string url = "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21";
  const std::string body = R"({"messages":[{"role":"user","content":"hello there"}]})";
  const HttpResult ok = sim.post(url, body, {"Authorization:", "api-key: " + sim.api_key()});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.headers.at("x-ratelimit-remaining-tokens"), std::to_string(10'000 - 16));
  EXPECT_EQ(ok.headers.at("x-ratelimit-remaining-requests"), "99");
  EXPECT_EQ(ok.headers.count("x-ratelimit-limit-tokens"), 0u);
  EXPECT_EQ(ok.headers.count("x-ratelimit-limit-requests"), 0u);
  const HttpResult bearer = sim.post(url, body);
  EXPECT_EQ(bearer.status, 401);
  EXPECT_EQ(bearer.json()["error"]["code"], "401");
  const auto ledger = sim.ledger();
  ASSERT_EQ(ledger.size(), 2u);
  EXPECT_EQ(ledger[0]["path"], "/openai/deployments/gpt-4o-mini/chat/completions");
  EXPECT_EQ(ledger[0]["model"], "gpt-4o-mini");
  EXPECT_EQ(ledger[0]["charge_at_admission"], 16);
}

TEST(SimHttp, GroqAndNoneDialectsOnTheWire) {
  SimProcess groq({"--dialect", "groq", "--rpm", "30", "--rpd", "1000", "--tpm", "6000"});
  const HttpResult g = groq.post("/v1/chat/completions", kChat);
  ASSERT_EQ(g.status, 200) << g.body;
  EXPECT_EQ(g.headers.at("x-ratelimit-limit-requests"), "1000");
  EXPECT_EQ(g.headers.at("x-ratelimit-limit-tokens"), "6000");
  SimProcess none({"--dialect", "none", "--rpm", "1"});
  ASSERT_EQ(none.post("/v1/chat/completions", kChat).status, 200);
  const HttpResult limited = none.post("/v1/chat/completions", kChat);
  EXPECT_EQ(limited.status, 429);
  for (const auto& [name, value] : limited.headers) {
    EXPECT_EQ(name.rfind("x-ratelimit-", 0), std::string::npos) << name;
    EXPECT_EQ(name.rfind("retry-after", 0), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace floodgate::test
