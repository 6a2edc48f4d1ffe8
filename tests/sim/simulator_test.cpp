// The simulator's request logic without sockets, on a ManualClock.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "floodgate/core/duration.hpp"
#include "floodgate/tokens/encoding.hpp"
#include "floodgate/core/error.hpp"
#include "sim/simulator.hpp"

namespace floodgate::sim {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// The exact charge of kChat under OpenAI's chat accounting: priming 3 + message 3 + role + content.
std::int64_t hello_prompt_tokens() {
  const auto& enc = floodgate::tokens::Encoding::get(floodgate::tokens::EncodingId::o200k_base);  // gpt-4o-mini
  return static_cast<std::int64_t>(3 + 3 + enc.count("user") + enc.count("hello there"));
}

std::string header(const Reply& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "<missing>";
}

struct Fixture {
  ManualClock clock;
  std::unique_ptr<Simulator> sim;
  explicit Fixture(SimOptions o = {}) {
    if (o.models.empty()) o.models = default_models();
    sim = std::make_unique<Simulator>(std::move(o), clock);
  }
  Reply post(const std::string& path, const std::string& body, const std::string& key = "sk-a") {
    auth = key.empty() ? "" : "Bearer " + key;
    RequestHead h{"POST", path, auth, "application/json", ""};
    return sim->handle(h, body);
  }
  std::string auth;
};

const std::string kChat = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}],"max_tokens":20})";

SimOptions limited(std::int64_t rpm, std::int64_t tpm) {
  SimOptions o;
  o.models = default_models();
  for (auto& [n, s] : o.models) {
    s.limits.requests_per_minute = rpm;
    s.limits.tokens_per_minute = tpm;
  }
  o.organization = "org-test";
  return o;
}

TEST(Simulator, ChatAnswerIsDeterministicWithCorrectUsage) {
  Fixture f;
  const Reply a = f.post("/v1/chat/completions", kChat);
  const Reply b = f.post("/v1/chat/completions", kChat);
  ASSERT_EQ(a.status, 200) << a.body;
  const json ja = json::parse(a.body), jb = json::parse(b.body);
  EXPECT_EQ(ja["choices"], jb["choices"]);
  EXPECT_NE(ja["id"], jb["id"]);
  EXPECT_EQ(ja["usage"]["prompt_tokens"], hello_prompt_tokens());
  EXPECT_EQ(hello_prompt_tokens(), 9);  // "user" 1 token, "hello there" 2 tokens in o200k_base
  EXPECT_EQ(ja["usage"]["completion_tokens"].get<int>(),
            static_cast<int>((ja["choices"][0]["message"]["content"].get<std::string>().size() + 3) / 4));
  EXPECT_LE(ja["usage"]["completion_tokens"].get<int>(), 20);
  const Reply c = f.post("/v1/chat/completions", R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"other"}]})");
  EXPECT_NE(json::parse(c.body)["choices"][0]["message"]["content"], ja["choices"][0]["message"]["content"]);
  EXPECT_NE(header(a, "x-request-id"), "<missing>");
}

TEST(Simulator, NChoicesAndChargeAtAdmission) {
  Fixture f(limited(100, 10000));
  const Reply r = f.post("/v1/chat/completions",
                         R"({"model":"gpt-4o-mini","n":3,"max_completion_tokens":100,"messages":[{"role":"user","content":"hi"}]})");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["choices"].size(), 3u);
  // charged: prompt (3 + 4 + 1) + 100 × 3
  EXPECT_EQ(header(r, "x-ratelimit-remaining-tokens"), std::to_string(10000 - 308));
  EXPECT_EQ(header(r, "x-ratelimit-limit-tokens"), "10000");
  EXPECT_EQ(header(r, "x-ratelimit-remaining-requests"), "99");
  EXPECT_EQ(header(r, "x-ratelimit-reset-requests"), "600ms");
  EXPECT_EQ(header(r, "x-ratelimit-reset-tokens"), format_duration(std::chrono::nanoseconds(308LL * 6'000'000)));
}

TEST(Simulator, RequestLimit429BodyAndRetryAfter) {
  Fixture f(limited(2, 0));
  ASSERT_EQ(f.post("/v1/chat/completions", kChat).status, 200);
  ASSERT_EQ(f.post("/v1/chat/completions", kChat).status, 200);
  const Reply r = f.post("/v1/chat/completions", kChat);
  ASSERT_EQ(r.status, 429);
  EXPECT_EQ(r.body,
            R"({"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-test on requests per min (RPM): )"
            R"(Limit 2, Used 2, Requested 1. Please try again in 30s. Visit https://platform.openai.com/account/rate-limits )"
            R"(to learn more.","type":"requests","param":null,"code":"rate_limit_exceeded"}})");
  EXPECT_EQ(header(r, "retry-after"), "30");
  EXPECT_EQ(header(r, "retry-after-ms"), "30000");
  EXPECT_EQ(header(r, "x-ratelimit-remaining-requests"), "0");
  f.clock.advance(29999ms);
  EXPECT_EQ(f.post("/v1/chat/completions", kChat).status, 429);
  f.clock.advance(1ms);
  EXPECT_EQ(f.post("/v1/chat/completions", kChat).status, 200);
  const json stats = f.sim->stats_json();
  EXPECT_EQ(stats["rate_limited"]["requests"], 2);
  EXPECT_EQ(stats["models"]["gpt-4o-mini"]["max_requests_60s"], 3);
}

TEST(Simulator, TokenLimit429AndRequestTooLarge) {
  SimOptions o = limited(0, 100);
  o.token_charge = TokenCharge::bytes;  // the numbers below are bytes charges
  Fixture f(o);
  ASSERT_EQ(f.post("/v1/chat/completions", kChat).status, 200);  // 30 tokens
  ASSERT_EQ(f.post("/v1/chat/completions", kChat).status, 200);
  ASSERT_EQ(f.post("/v1/chat/completions", kChat).status, 200);
  const Reply r = f.post("/v1/chat/completions", kChat);
  ASSERT_EQ(r.status, 429);
  const json j = json::parse(r.body);
  EXPECT_EQ(j["error"]["type"], "tokens");
  EXPECT_EQ(j["error"]["code"], "rate_limit_exceeded");
  EXPECT_NE(j["error"]["message"].get<std::string>().find("on tokens per min (TPM): Limit 100, Used 90, Requested 30. Please try again in 12s."),
            std::string::npos) << j.dump();
  EXPECT_EQ(header(r, "retry-after"), "12");
  const Reply big = f.post("/v1/chat/completions",
                           R"({"model":"gpt-4o","max_tokens":500,"messages":[{"role":"user","content":"x"}]})");
  ASSERT_EQ(big.status, 429);
  EXPECT_NE(json::parse(big.body)["error"]["message"].get<std::string>().find("Request too large for gpt-4o"), std::string::npos);
  EXPECT_EQ(f.sim->stats_json()["rate_limited"]["tokens"], 2);
}

TEST(Simulator, QuotaTokensThenInsufficientQuota) {
  SimOptions o;
  o.quota_tokens = 50;
  Fixture f(o);
  ASSERT_EQ(f.post("/v1/chat/completions", kChat).status, 200);
  ASSERT_EQ(f.post("/v1/chat/completions", kChat).status, 200);
  const Reply r = f.post("/v1/chat/completions", kChat);
  ASSERT_EQ(r.status, 429);
  EXPECT_EQ(r.body,
            R"({"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more )"
            R"(information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",)"
            R"("type":"insufficient_quota","param":null,"code":"insufficient_quota"}})");
  EXPECT_EQ(f.sim->stats_json()["insufficient_quota"], 1);
}

TEST(Simulator, QuotaUsd) {
  SimOptions o;
  o.quota_usd = 1e-6;  // gpt-4o-mini: 0.15/1M input: spent after the first request
  Fixture f(o);
  ASSERT_EQ(f.post("/v1/chat/completions", kChat).status, 200);
  EXPECT_EQ(json::parse(f.post("/v1/chat/completions", kChat).body)["error"]["code"], "insufficient_quota");
}

TEST(Simulator, AuthErrors) {
  SimOptions o;
  o.api_keys = {"sk-good"};
  Fixture f(o);
  const Reply none = f.post("/v1/chat/completions", kChat, "");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(json::parse(none.body)["error"]["type"], "invalid_request_error");
  const Reply bad = f.post("/v1/chat/completions", kChat, "sk-wrong-secret");
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(json::parse(bad.body)["error"]["code"], "invalid_api_key");
  EXPECT_EQ(bad.body.find("sk-wrong"), std::string::npos);  // never echoes the key
  EXPECT_EQ(f.post("/v1/chat/completions", kChat, "sk-good").status, 200);
}

TEST(Simulator, BadInputGetsTheRealErrors) {
  Fixture f;
  const Reply bad_json = f.post("/v1/chat/completions", "{not json");
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_EQ(json::parse(bad_json.body)["error"]["message"].get<std::string>().rfind("We could not parse the JSON body of your request.", 0), 0u);
  const Reply no_model = f.post("/v1/chat/completions", R"({"messages":[]})");
  EXPECT_EQ(no_model.status, 400);
  EXPECT_EQ(json::parse(no_model.body)["error"]["message"], "you must provide a model parameter");
  const Reply no_messages = f.post("/v1/chat/completions", R"({"model":"gpt-4o-mini"})");
  EXPECT_EQ(no_messages.status, 400);
  EXPECT_EQ(json::parse(no_messages.body)["error"]["param"], "messages");
  const Reply unknown = f.post("/v1/chat/completions", R"({"model":"gpt-9","messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(json::parse(unknown.body)["error"]["code"], "model_not_found");
  EXPECT_EQ(f.post("/v1/nope", "{}").status, 404);
  EXPECT_EQ(f.post("/v1/embeddings", R"({"model":"text-embedding-3-small"})").status, 400);
  EXPECT_EQ(f.post("/v1/embeddings", R"({"model":"text-embedding-3-small","input":[{"x":1}]})").status, 400);
  const Reply large = f.sim->too_large(RequestHead{"POST", "/v1/chat/completions", "", "", ""}, 30'000'000);
  EXPECT_EQ(large.status, 413);
  EXPECT_EQ(json::parse(large.body)["error"]["message"], "Maximum content size limit (26214400) exceeded (30000000 bytes read)");
}

TEST(Simulator, JsonSchemaAnswersAndInvalidRate) {
  const std::string body =
      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema",)"
      R"("json_schema":{"name":"r","strict":true,"schema":{"type":"object","properties":{"a":{"type":"integer"},)"
      R"("b":{"type":"string","enum":["x","y"]}},"required":["a","b"],"additionalProperties":false}}}})";
  {
    Fixture f;
    const json content = json::parse(json::parse(f.post("/v1/chat/completions", body).body)["choices"][0]["message"]["content"].get<std::string>());
    EXPECT_TRUE(content["a"].is_number_integer());
    EXPECT_TRUE(content["b"] == "x" || content["b"] == "y");
  }
  SimOptions o;
  o.invalid_content_rate = 0.5;
  o.seed = 7;
  Fixture f(o);
  int invalid = 0;
  std::string pattern;
  for (int i = 0; i < 40; ++i) {
    const json c = json::parse(json::parse(f.post("/v1/chat/completions", body).body)["choices"][0]["message"]["content"].get<std::string>(), nullptr, false);
    const bool bad = c.is_discarded() || !c.contains("a");
    invalid += bad;
    pattern += bad ? '1' : '0';
  }
  EXPECT_GT(invalid, 8);
  EXPECT_LT(invalid, 32);
  Fixture again(o);  // same seed, same sequence
  std::string pattern2;
  for (int i = 0; i < 40; ++i) {
    const json c = json::parse(json::parse(again.post("/v1/chat/completions", body).body)["choices"][0]["message"]["content"].get<std::string>(), nullptr, false);
    pattern2 += (c.is_discarded() || !c.contains("a")) ? '1' : '0';
  }
  EXPECT_EQ(pattern, pattern2);
}

TEST(Simulator, Embeddings) {
  SimOptions o;
  o.embedding_dim_override = 8;
  Fixture f(o);
  const Reply r = f.post("/v1/embeddings", R"({"model":"text-embedding-3-small","input":["abcd","efghijkl"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  ASSERT_EQ(j["data"].size(), 2u);
  EXPECT_EQ(j["data"][1]["embedding"].size(), 8u);
  const auto& cl100k = floodgate::tokens::Encoding::get(floodgate::tokens::EncodingId::cl100k_base);
  EXPECT_EQ(j["usage"]["prompt_tokens"], cl100k.count("abcd") + cl100k.count("efghijkl"));
  const json d = json::parse(f.post("/v1/embeddings", R"({"model":"text-embedding-3-small","input":"abcd","dimensions":4,"encoding_format":"base64"})").body);
  EXPECT_EQ(d["data"][0]["embedding"].get<std::string>().size(), 24u);  // 16 bytes → 24 base64 chars
  EXPECT_EQ(f.post("/v1/embeddings", R"({"model":"text-embedding-3-small","input":"a","dimensions":9})").status, 400);
  EXPECT_EQ(f.post("/v1/embeddings", R"({"model":"text-embedding-3-small","input":[[1,2],[3]]})").status, 200);
}

TEST(Simulator, FaultsAreSeededAndReproducible) {
  SimOptions o;
  o.fault_rate = 0.5;
  o.faults = parse_fault_list("500,502,503,reset,stall,truncated,slow-first-byte");
  o.seed = 3;
  std::string run1, run2;
  for (std::string* out : {&run1, &run2}) {
    Fixture f(o);
    for (int i = 0; i < 60; ++i) {
      const Reply r = f.post("/v1/chat/completions", kChat);
      *out += std::string(to_string(r.fault)) + "/" + std::to_string(r.status) + ",";
      if (r.fault == FaultKind::truncated) {
        EXPECT_TRUE(json::parse(r.body, nullptr, false).is_discarded());
      }
      if (r.fault == FaultKind::http_502) {
        EXPECT_EQ(r.content_type, "text/html");
      }
      if (r.fault == FaultKind::slow_first_byte) {
        EXPECT_GE(r.delay, 2s);
      }
    }
    const json faults = f.sim->stats_json()["faults"];
    for (const char* kind : {"500", "502", "503", "reset", "stall", "truncated", "slow-first-byte"}) {
      EXPECT_GT(faults.value(kind, 0), 0) << kind << " " << faults.dump();
    }
  }
  EXPECT_EQ(run1, run2);
}

TEST(Simulator, LatencyModels) {
  SimOptions o;
  o.latency = parse_latency("per-token:2ms");
  Fixture f(o);
  const Reply r = f.post("/v1/chat/completions", kChat);
  EXPECT_EQ(r.delay, 2ms * json::parse(r.body)["usage"]["completion_tokens"].get<int>());
  EXPECT_EQ(parse_latency("fixed:50ms").fixed, 50ms);
  const LatencyModel random = parse_latency("random:10ms-200ms");
  EXPECT_EQ(random.upper, 200ms);
  EXPECT_THROW(parse_latency("sometimes"), std::exception);
  SimOptions ro;
  ro.latency = random;
  Fixture rf(ro);
  for (int i = 0; i < 20; ++i) {
    const Reply x = rf.post("/v1/chat/completions", kChat);
    EXPECT_GE(x.delay, 10ms);
    EXPECT_LE(x.delay, 200ms);
  }
}

std::string multipart(const std::string& filename, const std::string& file, const std::string& format) {
  return "--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
         "--B\r\nContent-Disposition: form-data; name=\"response_format\"\r\n\r\n" + format + "\r\n"
         "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + filename + "\"\r\n"
         "Content-Type: application/octet-stream\r\n\r\n" + file + "\r\n--B--\r\n";
}

Reply upload(Fixture& f, const std::string& body) {
  RequestHead h{"POST", "/v1/audio/transcriptions", "Bearer sk-a", "multipart/form-data; boundary=B", "cid"};
  Reply refusal;
  auto up = f.sim->begin_upload(h, refusal);
  if (!up) return refusal;
  for (std::size_t i = 0; i < body.size(); i += 1000) up->feed(std::string_view(body).substr(i, 1000));
  return f.sim->finish_upload(h, *up);
}

TEST(Simulator, TranscriptionFormatsAndHeaders) {
  Fixture f;
  const std::string audio(16000 * 7, 'a');  // estimated 7 s
  const Reply v = upload(f, multipart("talk.ogg", audio, "verbose_json"));
  ASSERT_EQ(v.status, 200) << v.body;
  const json j = json::parse(v.body);
  EXPECT_DOUBLE_EQ(j["duration"].get<double>(), 7.0);
  ASSERT_FALSE(j["segments"].empty());
  for (const auto& s : j["segments"]) {
    EXPECT_GE(s["start"].get<double>(), 0.0);
    EXPECT_LE(s["end"].get<double>(), 7.0);
    EXPECT_LE(s["start"].get<double>(), s["end"].get<double>());
  }
  EXPECT_EQ(header(v, "x-ratelimit-limit-tokens"), "<missing>");
  EXPECT_NE(header(v, "x-ratelimit-limit-requests"), "<missing>");
  const Reply srt = upload(f, multipart("talk.ogg", audio, "srt"));
  EXPECT_EQ(srt.body.rfind("1\n00:00:00,000 --> ", 0), 0u) << srt.body;
  EXPECT_EQ(upload(f, multipart("talk.ogg", audio, "vtt")).body.rfind("WEBVTT\n\n00:00:00.000 --> ", 0), 0u);
  EXPECT_EQ(json::parse(upload(f, multipart("talk.ogg", audio, "json")).body)["text"], j["text"]);
  EXPECT_EQ(upload(f, multipart("talk.txt", audio, "json")).status, 400);
  EXPECT_EQ(upload(f, multipart("talk.ogg", audio, "yaml")).status, 400);
  EXPECT_EQ(upload(f, "--B\r\nbroken").status, 400);
}

}  // namespace
}  // namespace floodgate::sim

namespace floodgate::sim {
namespace {

TEST(Simulator, TokenChargeBytesKeepsTheOldApproximation) {
  SimOptions o;
  o.token_charge = TokenCharge::bytes;
  Fixture f(o);
  const Reply r = f.post("/v1/chat/completions", kChat);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["usage"]["prompt_tokens"], 3 + 4 + 3);  // "hello there" = 11 bytes = 3 tokens
  const Reply e = f.post("/v1/embeddings", R"({"model":"text-embedding-3-small","input":["abcd","efghijkl"]})");
  ASSERT_EQ(e.status, 200) << e.body;
  EXPECT_EQ(json::parse(e.body)["usage"]["prompt_tokens"], 1 + 2);
  EXPECT_EQ(parse_token_charge("bytes"), TokenCharge::bytes);
  EXPECT_EQ(parse_token_charge("exact"), TokenCharge::exact);
  EXPECT_THROW((void)parse_token_charge("words"), Error);
}

TEST(Simulator, StreamedChatIsServerSentEventsWithTheSameContent) {
  Fixture f;
  const std::string streamed_body =
      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}],"max_tokens":20,"stream":true,)"
      R"("stream_options":{"include_usage":true}})";
  const Reply r = f.post("/v1/chat/completions", streamed_body);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/event-stream; charset=utf-8");
  std::string content;
  json usage;
  bool done = false;
  std::size_t at = 0;
  while (at < r.body.size()) {
    const std::size_t end = r.body.find("\n\n", at);
    ASSERT_NE(end, std::string::npos);
    const std::string event = r.body.substr(at, end - at);
    at = end + 2;
    ASSERT_EQ(event.rfind("data: ", 0), 0u) << event;
    if (event == "data: [DONE]") {
      done = true;
      continue;
    }
    const json chunk = json::parse(event.substr(6));
    EXPECT_EQ(chunk["object"], "chat.completion.chunk");
    if (!chunk["usage"].is_null()) usage = chunk["usage"];
    for (const auto& c : chunk["choices"]) {
      if (c["delta"].contains("content")) content += c["delta"]["content"].get<std::string>();
    }
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(usage["prompt_tokens"], hello_prompt_tokens());
  EXPECT_EQ(usage["completion_tokens"].get<std::size_t>(), (content.size() + 3) / 4);
  EXPECT_EQ(f.post("/v1/chat/completions", streamed_body).body.size(), r.body.size());  // same request, same stream
}

}  // namespace
}  // namespace floodgate::sim

namespace floodgate::sim {
namespace {

TEST(Stats, SixtySecondWindowMaximaBothSidesOfTheEdge) {
  Stats stats;
  const TimePoint t0 = TimePoint{} + std::chrono::hours(1000);
  Outcome o;
  o.status = 200;
  o.model = "m";
  o.admitted = true;
  o.tokens_charged = 10;
  stats.record(o, t0);
  stats.record(o, t0 + std::chrono::milliseconds(59'999));  // still inside (t0, t0 + 60 s)
  EXPECT_EQ(stats.to_json()["max_requests_60s"], 2);
  stats.record(o, t0 + std::chrono::milliseconds(60'000));  // t0 has left the window
  stats.record(o, t0 + std::chrono::milliseconds(60'000));  // same millisecond
  const json j = stats.to_json();
  EXPECT_EQ(j["max_requests_60s"], 3);
  EXPECT_EQ(j["max_tokens_60s"], 30);
  EXPECT_EQ(j["models"]["m"]["max_requests_60s"], 3);
  EXPECT_EQ(j["admitted"], 4);
}

}  // namespace
}  // namespace floodgate::sim
