#include "floodgate/gateway/relay.hpp"

#include <gtest/gtest.h>

#include <string>

#include "floodgate/core/error.hpp"
#include "floodgate/gateway/upstream.hpp"

using namespace floodgate::gateway;

namespace {

// A chat stream as OpenAI (and floodgate sim) sends it when usage is asked for.
const std::string kHead = R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[)";
std::string chunk(const std::string& choice, bool with_null_usage) {
  return "data: " + kHead + choice + (with_null_usage ? R"(],"usage":null})" : "]}") + "\n\n";
}
std::string usage_chunk() {
  return "data: " + kHead + R"(],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}})" + "\n\n";
}
std::string stream(bool asked) {
  std::string s = chunk(R"({"index":0,"delta":{"role":"assistant","content":""}})", asked) +
                  chunk(R"({"index":0,"delta":{"content":"Hello there"}})", asked) +
                  chunk(R"({"index":0,"delta":{},"finish_reason":"stop"})", asked);
  if (asked) s += usage_chunk();
  return s + "data: [DONE]\n\n";
}

}  // namespace

TEST(Relay, UsageOfAWholeAnswerIsItsLastUsageObject) {
  const auto chat = usage_of(R"({"id":"x","choices":[{"message":{"content":"a \"usage\":{\"prompt_tokens\":99} b"}}],)"
                             R"("usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,)"
                             R"("completion_tokens_details":{"reasoning_tokens":0}}})");
  ASSERT_TRUE(chat);
  EXPECT_EQ(chat->input_tokens, 12);
  EXPECT_EQ(chat->output_tokens, 5);
  const auto responses = usage_of(R"({"object":"response","usage" : {"input_tokens":3,"output_tokens":4}})");
  ASSERT_TRUE(responses);
  EXPECT_EQ(responses->input_tokens, 3);
  EXPECT_EQ(responses->output_tokens, 4);
  // Cached input tokens (priced lower) under chat's and the Responses API's names.
  const auto cached_chat = usage_of(R"({"usage":{"prompt_tokens":100,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":64}}})");
  ASSERT_TRUE(cached_chat);
  EXPECT_EQ(cached_chat->cached_tokens, 64);
  const auto cached_responses = usage_of(R"({"usage":{"input_tokens":100,"output_tokens":1,"input_tokens_details":{"cached_tokens":32}}})");
  ASSERT_TRUE(cached_responses);
  EXPECT_EQ(cached_responses->cached_tokens, 32);
  const auto embeddings = usage_of(R"({"data":[],"usage":{"prompt_tokens":8,"total_tokens":8}})");
  ASSERT_TRUE(embeddings);
  EXPECT_EQ(embeddings->input_tokens, 8);
  EXPECT_EQ(embeddings->output_tokens, 0);
  EXPECT_FALSE(usage_of(R"({"usage":null})"));
  EXPECT_FALSE(usage_of(R"({"choices":[]})"));
  EXPECT_FALSE(usage_of(R"({"usage":{"prompt_tokens":1)")) << "cut off: no object to parse";
  // The tail of a long answer: the start is gone, the usage at the end is whole.
  Tail tail;
  tail.add(std::string(10000, 'x'));
  tail.add(R"(,"usage":{"prompt_tokens":2,"total_tokens":2}})");
  EXPECT_LE(tail.view().size(), Tail::kKeep);
  ASSERT_TRUE(usage_of(tail.view()));
  EXPECT_EQ(usage_of(tail.view())->input_tokens, 2);
}

TEST(Relay, StreamAskAndIncludeUsage) {
  EXPECT_FALSE(stream_ask_of(R"({"model":"m"})").stream);
  EXPECT_TRUE(stream_ask_of(R"({"model":"m","stream":true})").stream);
  EXPECT_FALSE(stream_ask_of(R"({"model":"m","stream":false})").stream);
  EXPECT_FALSE(stream_ask_of(R"({"stream":true)").stream) << "not JSON";
  const auto asked = stream_ask_of(R"({"stream":true,"stream_options":{"include_usage":true}})");
  EXPECT_TRUE(asked.stream && asked.include_usage);
  EXPECT_FALSE(stream_ask_of(R"({"stream":true,"stream_options":{"include_usage":false}})").include_usage);

  // Without stream_options every byte stays, the member goes last: the same body a client
  // would send with it last.
  EXPECT_EQ(with_include_usage(R"({"model":"m", "stream":true} )"),
            std::string(R"({"model":"m", "stream":true,"stream_options":{"include_usage":true}} )"));
  EXPECT_EQ(with_include_usage("{}"), std::string(R"({"stream_options":{"include_usage":true}})"));
  EXPECT_EQ(with_include_usage(R"({"stream":true,"stream_options":{"include_usage":false},"n":1})"),
            std::string(R"({"stream":true,"stream_options":{"include_usage":true},"n":1})"));
  EXPECT_EQ(with_include_usage(R"({"stream":true,"stream_options":null})"),
            std::string(R"({"stream":true,"stream_options":{"include_usage":true}})"));
  EXPECT_FALSE(with_include_usage("[1]"));
  EXPECT_FALSE(with_include_usage(""));
}

TEST(Relay, AStreamTheClientAskedUsageOfIsRelayedAsItIsAndItsUsageNoted) {
  SseRelay relay(false);
  std::string out;
  relay.feed(stream(true), out);
  relay.finish(out);
  EXPECT_EQ(out, stream(true));
  ASSERT_TRUE(relay.usage());
  EXPECT_EQ(relay.usage()->input_tokens, 11);
  EXPECT_EQ(relay.usage()->output_tokens, 7);
}

TEST(Relay, UsageTheClientDidNotAskForIsNotedAndRemoved) {
  SseRelay relay(true);
  std::string out;
  relay.feed(stream(true), out);
  relay.finish(out);
  EXPECT_EQ(out, stream(false)) << "what the client would have had without the gateway";
  ASSERT_TRUE(relay.usage());
  EXPECT_EQ(relay.usage()->output_tokens, 7);
}

TEST(Relay, EventsGoOutAsSoonAsTheyAreWholeWhateverThePieces) {
  const std::string all = stream(true);
  for (const std::size_t size : {1u, 2u, 7u, 64u}) {
    SseRelay relay(true);
    std::string out;
    std::size_t events_out = 0;
    for (std::size_t at = 0; at < all.size(); at += size) {
      relay.feed(std::string_view(all).substr(at, size), out);
      // Never a partial event: what went out always ends at an event's end.
      if (!out.empty()) {
        EXPECT_TRUE(out.ends_with("\n\n")) << size << " at " << at;
      }
      events_out = 0;
      for (std::size_t p = out.find("\n\n"); p != std::string::npos; p = out.find("\n\n", p + 2)) ++events_out;
    }
    relay.finish(out);
    EXPECT_EQ(out, stream(false)) << "pieces of " << size;
    EXPECT_EQ(events_out, 4u);
  }
  // The first event goes out before the rest exists.
  SseRelay relay(false);
  std::string out;
  relay.feed(chunk(R"({"index":0,"delta":{"content":"Hi"}})", false) + "data: {\"partial", out);
  EXPECT_EQ(out, chunk(R"({"index":0,"delta":{"content":"Hi"}})", false));
  // CRLF line ends and an unterminated last event.
  SseRelay crlf(true);
  std::string crlf_out;
  crlf.feed("data: {\"choices\":[{}],\"usage\":null}\r\n\r\ndata: [DONE]", crlf_out);
  crlf.finish(crlf_out);
  EXPECT_EQ(crlf_out, "data: {\"choices\":[{}]}\r\n\r\ndata: [DONE]");
}

TEST(Relay, UpstreamUrls) {
  const auto openai = parse_upstream_url("https://api.openai.com/v1");
  EXPECT_TRUE(openai.tls);
  EXPECT_EQ(openai.host, "api.openai.com");
  EXPECT_EQ(openai.port, "443");
  EXPECT_EQ(openai.base_path, "/v1");
  EXPECT_EQ(openai.host_header, "api.openai.com");
  const auto local = parse_upstream_url("http://127.0.0.1:8080/v1/");
  EXPECT_FALSE(local.tls);
  EXPECT_EQ(local.port, "8080");
  EXPECT_EQ(local.base_path, "/v1");
  EXPECT_EQ(local.host_header, "127.0.0.1:8080");
  const auto v6 = parse_upstream_url("http://[::1]:80");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, "80");
  EXPECT_EQ(v6.base_path, "");
  EXPECT_EQ(v6.host_header, "[::1]");
  EXPECT_THROW((void)parse_upstream_url("ftp://x/v1"), floodgate::Error);
  EXPECT_THROW((void)parse_upstream_url("https:///v1"), floodgate::Error);
  EXPECT_THROW((void)parse_upstream_url("https://user:pw@host/v1"), floodgate::Error);
  EXPECT_THROW((void)parse_upstream_url("http://host:x/v1"), floodgate::Error);
}
