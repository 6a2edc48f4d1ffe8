// The simulator's request logic without sockets, on a ManualClock.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
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
    RequestHead h{"POST", path, auth, "application/json", "", ""};
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
  const Reply large = f.sim->too_large(RequestHead{"POST", "/v1/chat/completions", "", "", "", ""}, 30'000'000);
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

// OpenAI refuses a strict json_schema whose schema breaks the strict-mode rules, with these
// messages (400, invalid_json_schema); the simulator must too, or offline runs pass where
// the real API fails every row.
TEST(Simulator, StrictJsonSchemaRulesAreEnforcedWithTheApiWording) {
  Fixture f;
  auto ask = [&](const std::string& schema, bool strict = true) {
    return f.post("/v1/chat/completions",
                  R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema",)"
                  R"("json_schema":{"name":"person","strict":)" + std::string(strict ? "true" : "false") +
                      R"(,"schema":)" + schema + "}}}");
  };
  const std::string optional_age =
      R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name"],"additionalProperties":false})";
  const Reply missing = ask(optional_age);
  ASSERT_EQ(missing.status, 400);
  const json err = json::parse(missing.body)["error"];
  EXPECT_EQ(err["message"],
            "Invalid schema for response_format 'person': In context=(), 'required' is required to be supplied and to be "
            "an array including every key in properties. Missing 'age'.");
  EXPECT_EQ(err["type"], "invalid_request_error");
  EXPECT_EQ(err["param"], "response_format");
  EXPECT_EQ(err["code"], "invalid_json_schema");
  EXPECT_EQ(ask(optional_age, false).status, 200);  // not strict: not checked

  const Reply nested = ask(
      R"({"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"string"}},"required":["b"]}},"required":["a"],"additionalProperties":false})");
  ASSERT_EQ(nested.status, 400);
  EXPECT_EQ(json::parse(nested.body)["error"]["message"],
            "Invalid schema for response_format 'person': In context=('properties', 'a'), 'additionalProperties' is "
            "required to be supplied and to be false.");
  const Reply in_items = ask(
      R"({"type":"object","properties":{"l":{"type":"array","items":{"type":"object","properties":{"b":{"type":"string"}},"additionalProperties":false}}},"required":["l"],"additionalProperties":false})");
  ASSERT_EQ(in_items.status, 400);
  EXPECT_EQ(json::parse(in_items.body)["error"]["message"],
            "Invalid schema for response_format 'person': In context=('properties', 'l', 'items'), 'required' is "
            "required to be supplied and to be an array including every key in properties. Missing 'b'.");
  const Reply root_array = ask(R"({"type":"array","items":{"type":"string"}})");
  ASSERT_EQ(root_array.status, 400);
  EXPECT_EQ(json::parse(root_array.body)["error"]["message"],
            "Invalid schema for response_format 'person': schema must be a JSON Schema of 'type: \"object\"', got "
            "'type: \"array\"'.");
  const Reply root_any = ask(R"({"anyOf":[{"type":"object","properties":{},"additionalProperties":false},{"type":"null"}]})");
  EXPECT_EQ(root_any.status, 400);
  // The strict form of the same schema passes: every key required, the optional one nullable.
  EXPECT_EQ(ask(R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":["integer","null"]}},"required":["name","age"],"additionalProperties":false})")
                .status,
            200);
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
  RequestHead h{"POST", "/v1/audio/transcriptions", "Bearer sk-a", "multipart/form-data; boundary=B", "cid", ""};
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

namespace floodgate::sim {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const std::string kNoMax = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]})";

std::string header_of(const Reply& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "<missing>";
}

bool has_header(const Reply& r, const std::string& name) {
  return header_of(r, name) != "<missing>";
}

struct Sim {
  ManualClock clock;
  std::unique_ptr<Simulator> sim;
  std::string auth;
  std::string key;
  explicit Sim(SimOptions o) {
    if (o.models.empty()) o.models = default_models();
    sim = std::make_unique<Simulator>(std::move(o), clock);
  }
  Reply post(const std::string& target, const std::string& body) {
    auth = "Bearer sk-a";
    return sim->handle(RequestHead{"POST", target, auth, "application/json", "", ""}, body);
  }
  Reply azure(const std::string& target, const std::string& body, const std::string& api_key = "sk-a",
              const std::string& authorization = "") {
    key = api_key;
    auth = authorization;
    return sim->handle(RequestHead{"POST", target, auth, "application/json", "", key}, body);
  }
};

SimOptions tpm(std::int64_t tokens, std::int64_t rpm = 1000) {
  SimOptions o;
  o.models = default_models();
  for (auto& [n, s] : o.models) {
    s.limits.requests_per_minute = rpm;
    s.limits.tokens_per_minute = tokens;
  }
  return o;
}

std::int64_t remaining_tokens(const Reply& r) { return std::stoll(header_of(r, "x-ratelimit-remaining-tokens")); }

TEST(SimCharge, DefaultAllowanceIsSixteenWhenMaxTokensIsAbsent) {
  Sim s(tpm(10'000));
  const Reply r = s.post("/v1/chat/completions", kNoMax);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(remaining_tokens(r), 10'000 - (9 + 16));  // prompt 9 + 16
  // n multiplies the allowance.
  const Reply n3 = s.post("/v1/chat/completions",
                          R"({"model":"gpt-4o-mini","n":3,"messages":[{"role":"user","content":"hello there"}]})");
  EXPECT_EQ(remaining_tokens(r) - remaining_tokens(n3), 9 + 16 * 3);
}

TEST(SimCharge, TheAllowanceOverrideStillApplies) {
  SimOptions o = tpm(10'000);
  for (auto& [n, spec] : o.models) spec.charge.default_allowance = 4096;
  Sim s(o);
  EXPECT_EQ(remaining_tokens(s.post("/v1/chat/completions", kNoMax)), 10'000 - (9 + 4096));
}

TEST(SimCharge, EveryRule) {
  const std::string with_max =
      R"({"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":"hello there"}]})";
  const auto charge_of = [&](const std::string& rule, const std::string& body) {
    SimOptions o = tpm(1'000'000);
    for (auto& [n, spec] : o.models) parse_charge_rule(rule, spec.charge);
    Sim s(o);
    return 1'000'000 - remaining_tokens(s.post("/v1/chat/completions", body));
  };
  EXPECT_EQ(charge_of("input+allowance", with_max), 9 + 100);
  EXPECT_EQ(charge_of("max(input,allowance)", with_max), 100);
  EXPECT_EQ(charge_of("max(input,allowance)", kNoMax), 16);
  EXPECT_EQ(charge_of("flat:16", with_max), 16);
  EXPECT_EQ(charge_of("flat:648", kNoMax), 648);
  EXPECT_EQ(charge_of("context:4096", kNoMax), 4096);
  EXPECT_EQ(charge_of("context:4096", with_max), 9 + 100);
  EXPECT_EQ(charge_of("context", kNoMax), 128'000);
  ChargeModel bad;
  EXPECT_THROW(parse_charge_rule("flat:", bad), Error);
  EXPECT_THROW(parse_charge_rule("input", bad), Error);
}

TEST(SimCharge, EmbeddingsAreChargedTheirInputOnly) {
  SimOptions o = tpm(10'000);
  for (auto& [n, spec] : o.models) parse_charge_rule("flat:648", spec.charge);
  Sim s(o);
  const Reply r = s.post("/v1/embeddings", R"({"model":"text-embedding-3-small","input":"hello there"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(10'000 - remaining_tokens(r), json::parse(r.body)["usage"]["prompt_tokens"].get<std::int64_t>());
}

TEST(SimCharge, RefundUsageCorrectsTheChargeAfterTheAnswer) {
  const std::string big = R"({"model":"gpt-4o-mini","max_tokens":900,"messages":[{"role":"user","content":"hello there"}]})";
  SimOptions plain = tpm(1000);
  Sim kept(plain);
  ASSERT_EQ(kept.post("/v1/chat/completions", big).status, 200);
  EXPECT_EQ(kept.post("/v1/chat/completions", big).status, 429);  // 909 charged and kept

  SimOptions o = tpm(1000);
  for (auto& [n, spec] : o.models) spec.charge.refund_usage = true;
  Sim s(o);
  const Reply a = s.post("/v1/chat/completions", big);
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(remaining_tokens(a), 1000 - 909);  // the headers show the charge at admission
  const std::int64_t usage = json::parse(a.body)["usage"]["total_tokens"].get<std::int64_t>();
  const Reply b = s.post("/v1/chat/completions", big);
  ASSERT_EQ(b.status, 200) << b.body;
  EXPECT_EQ(remaining_tokens(b), 1000 - usage - 909);
  const json stats = s.sim->stats_json();
  EXPECT_EQ(stats["models"]["gpt-4o-mini"]["tokens_charged"].get<std::int64_t>(),
            usage + json::parse(b.body)["usage"]["total_tokens"].get<std::int64_t>());
}

TEST(SimWindow, RollingModeThroughTheSimulator) {
  SimOptions o = tpm(0, 2);
  for (auto& [n, spec] : o.models) spec.limits.window = WindowMode::rolling;
  Sim s(o);
  ASSERT_EQ(s.post("/v1/chat/completions", kNoMax).status, 200);
  ASSERT_EQ(s.post("/v1/chat/completions", kNoMax).status, 200);
  s.clock.advance(45s);
  const Reply r = s.post("/v1/chat/completions", kNoMax);  // a bucket would have refilled one
  ASSERT_EQ(r.status, 429);
  EXPECT_EQ(header_of(r, "retry-after-ms"), "15000");
  EXPECT_EQ(header_of(r, "x-ratelimit-reset-requests"), "15s");
  s.clock.advance(15s);
  EXPECT_EQ(s.post("/v1/chat/completions", kNoMax).status, 200);
}

TEST(SimDialect, AzureAuthDeploymentUrlsAndHeaders) {
  SimOptions o = tpm(10'000, 100);
  o.api_keys = {"sk-a"};
  for (auto& [n, spec] : o.models) spec.dialect = Dialect::azure;
  Sim s(o);
  const std::string url = "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21";
  const std::string body = R"({"messages":[{"role":"user","content":"hello there"}]})";
  const Reply ok = s.azure(url, body);
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json::parse(ok.body)["model"], "gpt-4o-mini");
  EXPECT_EQ(header_of(ok, "x-ratelimit-remaining-requests"), "99");
  EXPECT_EQ(header_of(ok, "x-ratelimit-remaining-tokens"), std::to_string(10'000 - 25));
  EXPECT_FALSE(has_header(ok, "x-ratelimit-limit-requests"));
  EXPECT_FALSE(has_header(ok, "x-ratelimit-limit-tokens"));
  EXPECT_FALSE(has_header(ok, "x-ratelimit-reset-tokens"));
  // Bearer is refused with Azure's 401 shape.
  const Reply bearer = s.azure(url, body, "", "Bearer sk-a");
  EXPECT_EQ(bearer.status, 401);
  EXPECT_EQ(json::parse(bearer.body)["error"]["code"], "401");
  EXPECT_NE(json::parse(bearer.body)["error"]["message"].get<std::string>().find("Access denied"), std::string::npos);
  EXPECT_EQ(s.azure(url, body, "sk-wrong").status, 401);
  // The deployment form needs api-version; the /openai/v1 form takes the model from the body.
  EXPECT_EQ(s.azure("/openai/deployments/gpt-4o-mini/chat/completions", body).status, 404);
  EXPECT_EQ(s.azure("/openai/v1/chat/completions", kNoMax).status, 200);
  const Reply missing = s.azure("/openai/deployments/nope/chat/completions?api-version=2024-10-21", body);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(json::parse(missing.body)["error"]["code"], "DeploymentNotFound");
  const Reply emb = s.azure("/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21",
                            R"({"input":"hello there"})");
  EXPECT_EQ(emb.status, 200) << emb.body;
  // An Azure model is not served on the OpenAI route.
  const Reply openai_route = s.post("/v1/chat/completions", kNoMax);
  EXPECT_EQ(openai_route.status, 404);
  EXPECT_EQ(json::parse(openai_route.body)["error"]["code"], "model_not_found");
}

TEST(SimDialect, Azure429Shape) {
  SimOptions o = tpm(0, 1);
  for (auto& [n, spec] : o.models) spec.dialect = Dialect::azure;
  Sim s(o);
  const std::string url = "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21";
  const std::string body = R"({"messages":[{"role":"user","content":"hello there"}]})";
  ASSERT_EQ(s.azure(url, body).status, 200);
  const Reply r = s.azure(url, body);
  ASSERT_EQ(r.status, 429);
  const json j = json::parse(r.body);
  EXPECT_EQ(j["error"]["code"], "429");
  EXPECT_EQ(j["error"]["message"],
            "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded "
            "call rate limit of your current OpenAI S0 pricing tier. Please retry after 60 seconds. Please go here: "
            "https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.");
  EXPECT_EQ(header_of(r, "retry-after"), "60");
}

TEST(SimDialect, OpenAiModelIsNotADeployment) {
  Sim s(tpm(0, 10));
  const Reply r = s.azure("/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21",
                          R"({"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "DeploymentNotFound");
}

TEST(SimDialect, GroqRequestsHeadersArePerDay) {
  SimOptions o = tpm(6000, 30);
  for (auto& [n, spec] : o.models) {
    spec.dialect = Dialect::groq;
    spec.limits.requests_per_day = 14'400;
  }
  Sim s(o);
  const Reply r = s.post("/v1/chat/completions", kNoMax);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(header_of(r, "x-ratelimit-limit-requests"), "14400");
  EXPECT_EQ(header_of(r, "x-ratelimit-remaining-requests"), "14399");
  EXPECT_EQ(header_of(r, "x-ratelimit-reset-requests"), "6s");  // 86400 s / 14400
  EXPECT_EQ(header_of(r, "x-ratelimit-limit-tokens"), "6000");
  EXPECT_EQ(header_of(r, "x-ratelimit-remaining-tokens"), std::to_string(6000 - 25));
}

TEST(SimDialect, NoneSendsNoRateLimitHeadersButStillLimits) {
  SimOptions o = tpm(0, 1);
  for (auto& [n, spec] : o.models) spec.dialect = Dialect::none;
  Sim s(o);
  const Reply ok = s.post("/v1/chat/completions", kNoMax);
  ASSERT_EQ(ok.status, 200);
  const Reply limited = s.post("/v1/chat/completions", kNoMax);
  ASSERT_EQ(limited.status, 429);
  for (const Reply* r : {&ok, &limited}) {
    for (const auto& [name, value] : r->headers) {
      EXPECT_EQ(name.rfind("x-ratelimit-", 0), std::string::npos) << name;
      EXPECT_EQ(name.rfind("retry-after", 0), std::string::npos) << name;
    }
  }
}

TEST(SimConfig, PerModelChargeWindowAndDialect) {
  const auto dir = std::filesystem::temp_directory_path() / ("fg_simcfg_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "sim.json").string();
  {
    std::ofstream out(path);
    out << R"({"default":{"rpm":600,"charge":"flat:16","window":"rolling"},
               "models":{"gpt-4o":{"charge":"context:4096","default_allowance":20,"refund_usage":true,
                                    "dialect":"azure","window":"quantized","quantum":"10s"}}})";
  }
  SimOptions o;
  o.models = default_models();
  apply_config_file(o, path);
  std::filesystem::remove_all(dir);
  const ModelSpec& mini = o.models.at("gpt-4o-mini");
  EXPECT_EQ(mini.charge.rule, ChargeRule::flat);
  EXPECT_EQ(mini.charge.flat_tokens, 16);
  EXPECT_EQ(mini.limits.window, WindowMode::rolling);
  EXPECT_EQ(mini.dialect, Dialect::openai);
  const ModelSpec& big = o.models.at("gpt-4o");
  EXPECT_EQ(big.limits.requests_per_minute, 600);
  EXPECT_EQ(big.charge.rule, ChargeRule::context);
  EXPECT_EQ(big.charge.context_tokens, 4096);
  EXPECT_EQ(big.charge.default_allowance, 20);
  EXPECT_TRUE(big.charge.refund_usage);
  EXPECT_EQ(big.dialect, Dialect::azure);
  EXPECT_EQ(big.limits.window, WindowMode::quantized);
  EXPECT_EQ(big.limits.quantum, 10s);
}

}  // namespace
}  // namespace floodgate::sim
