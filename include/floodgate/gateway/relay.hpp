#pragma once
// What the gateway does to the bytes it relays, as pure functions tested as such
// (tests/gateway/relay_test.cpp); the sockets are server.cpp's and proxy.cpp's.
//
// Streamed chat completions. The gateway settles a call's usage from its answer; a streamed
// answer (stream: true) carries usage only in a last chunk, and only when the request asked
// for it (stream_options.include_usage). So a streamed chat request that does not ask is
// sent upstream asking (`with_include_usage`), and what comes back goes through an SseRelay
// that removes what the client did not ask for: the usage chunk (empty choices, a usage
// object) and the `"usage":null` that every other chunk then carries. The client sees the
// stream it would have seen without the gateway; the gateway sees the usage.
//
// Usage of a whole answer (`usage_of`): OpenAI puts the `"usage":{...}` object last, so it is
// searched from the end and only that object is parsed, never the whole body (an embeddings
// answer can be megabytes). A `"usage":{` in the text is always a key: inside a JSON string a
// quote is escaped.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace floodgate::gateway {

struct Usage {
  std::int64_t input_tokens = 0;   // prompt_tokens (chat, embeddings) or input_tokens (responses)
  std::int64_t output_tokens = 0;  // completion_tokens or output_tokens; 0 for embeddings
  std::int64_t cached_tokens = 0;  // of the input: {prompt,input}_tokens_details.cached_tokens (priced lower)
};

// The last top-level-looking "usage" object of a JSON text (a whole answer, an SSE event's
// data, or the tail of a long answer), or nullopt when there is none or it does not parse.
[[nodiscard]] std::optional<Usage> usage_of(std::string_view json_text);

// What a chat-completions body asks of a stream.
struct StreamAsk {
  bool stream = false;          // "stream": true
  bool include_usage = false;   // "stream_options": {"include_usage": true}
};
// Parses the body only when it mentions "stream" at all; not JSON: {false, false}.
[[nodiscard]] StreamAsk stream_ask_of(std::string_view json_body);

// The body with stream_options.include_usage set to true. A body without "stream_options"
// keeps every byte it had and gets `,"stream_options":{"include_usage":true}` before its
// closing brace (so the same body sent with that member last is byte-identical); a body that
// has stream_options is parsed and written again. nullopt when the body is not a JSON object.
[[nodiscard]] std::optional<std::string> with_include_usage(std::string_view json_body);

// Server-sent events relayed event by event: feed() appends to `out` every event completed
// by the bytes given (an event ends at a blank line, "\n\n" or "\r\n\r\n"); a partial event
// waits for its end. Each event's usage is noted (the last one seen wins). With
// `strip_usage`, the usage chunk is dropped and a data line ending in `,"usage":null}` loses
// that member.
class SseRelay {
 public:
  explicit SseRelay(bool strip_usage) : strip_usage_(strip_usage) {}
  void feed(std::string_view bytes, std::string& out);
  // At the end of the stream: what is left (an event without its blank line) as it is.
  void finish(std::string& out);
  [[nodiscard]] const std::optional<Usage>& usage() const noexcept { return usage_; }

 private:
  void event(std::string_view text, std::string& out);
  bool strip_usage_;
  std::string partial_;
  std::optional<Usage> usage_;
};

// The last bytes of a long answer, kept for usage_of at its end (bounded memory).
class Tail {
 public:
  static constexpr std::size_t kKeep = 4096;
  void add(std::string_view bytes);
  [[nodiscard]] std::string_view view() const noexcept { return bytes_; }

 private:
  std::string bytes_;
};

}  // namespace floodgate::gateway
