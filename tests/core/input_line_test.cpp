// Input lines are validated strictly (RFC 8259) before anything is taken from them: a body
// that is not JSON is an invalid_input line that names the column, never a request that
// comes back 400 (issue 13, item 5).
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "floodgate/core/batch_io.hpp"

namespace {

using floodgate::ErrorKind;
using floodgate::InputOptions;
using floodgate::parse_input_line;

const std::string kHead = R"({"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":)";

TEST(InputLine, BodyThatIsNotJsonIsInvalidInputWithTheColumn) {
  // The on-demand walk took the body as raw bytes and skipped what it did not read.
  for (const std::string body : {R"({"model":"gpt-4o-mini",...})", R"({"model":"gpt-4o-mini","messages":[],})",
                                 R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],}})",
                                 R"({"model":"gpt-4o-mini","temperature":01})", R"({"model":'gpt-4o-mini'})"}) {
    const auto p = parse_input_line(kHead + body + "}", 7, InputOptions{});
    EXPECT_FALSE(p.request.has_value()) << body;
    EXPECT_EQ(p.error, ErrorKind::invalid_input) << body;
    EXPECT_TRUE(p.not_json) << body;
    EXPECT_NE(p.error_message.find("line 7: not JSON"), std::string::npos) << p.error_message;
    EXPECT_NE(p.error_message.find("column "), std::string::npos) << p.error_message;
  }
}

TEST(InputLine, InvalidUtf8InsideTheBodyIsNotJson) {
  const auto p = parse_input_line(kHead + "{\"model\":\"gpt-4o-mini\",\"x\":\"\xff\xfe\"}}", 1, InputOptions{});
  EXPECT_FALSE(p.request.has_value());
  EXPECT_EQ(p.error, ErrorKind::invalid_input);
  EXPECT_TRUE(p.not_json);
}

TEST(InputLine, TrailingGarbageIsNamedWithItsColumn) {
  const std::string good = kHead + R"({"model":"gpt-4o-mini","messages":[]}})";
  const auto ok = parse_input_line(good, 3, InputOptions{});
  ASSERT_TRUE(ok.request.has_value()) << ok.error_message;
  for (const std::string tail : {"}", "],}}", " x", ",{}"}) {
    const auto p = parse_input_line(good + tail, 3, InputOptions{});
    EXPECT_FALSE(p.request.has_value()) << tail;
    EXPECT_EQ(p.error, ErrorKind::invalid_input);
    EXPECT_NE(p.error_message.find("trailing content"), std::string::npos) << p.error_message;
    // The column of the first byte after the object (1-based), or the next one.
    const std::string want = "column " + std::to_string(good.size() + 1 + (tail[0] == ' ' ? 1 : 0));
    EXPECT_NE(p.error_message.find(want), std::string::npos) << p.error_message << " want " << want;
  }
}

TEST(InputLine, ValidLinesStillParseAndKeepTheirBodyBytes) {
  const std::string body = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"caf\u00e9 \"q\""}],"n":1e0})";
  const auto p = parse_input_line(kHead + body + "}  ", 2, InputOptions{});
  ASSERT_TRUE(p.request.has_value()) << p.error_message;
  EXPECT_EQ(p.request->body, body);
  EXPECT_EQ(p.request->model, "gpt-4o-mini");
}

TEST(InputLine, BareBodyWithoutEndpointIsFlagged) {
  const auto p = parse_input_line(R"({"model":"gpt-4o-mini","messages":[]})", 1, InputOptions{});
  EXPECT_FALSE(p.request.has_value());
  EXPECT_TRUE(p.bare_body);
  EXPECT_FALSE(p.not_json);
  EXPECT_EQ(floodgate::guess_endpoint(R"({"model":"gpt-4o-mini","messages":[]})"), floodgate::Endpoint::chat_completions);
  EXPECT_EQ(floodgate::guess_endpoint(R"({"model":"text-embedding-3-small","input":"x"})"), floodgate::Endpoint::embeddings);
  EXPECT_EQ(floodgate::guess_endpoint(R"({"model":"gpt-4.1","input":"x"})"), floodgate::Endpoint::responses);
  EXPECT_EQ(floodgate::guess_endpoint(R"({"model":"x"})"), std::nullopt);
}

}  // namespace

// A line longer than max_line_bytes() is skipped while reading, never held: the reader
// reports its length and line number and goes on with the next line (issue 13, item 7).
namespace {

TEST(LineReaderLimit, SkipsALineOverTheLimitAndGoesOn) {
  const std::string path = ::testing::TempDir() + "/fg_long_line.jsonl";
  const std::string huge(3u << 20, 'x');
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fputs("first\n", f);
    std::fwrite(huge.data(), 1, huge.size(), f);
    std::fputs("\r\nthird\n", f);
    std::fwrite(huge.data(), 1, huge.size(), f);  // the last line, without a newline
    std::fclose(f);
  }
  floodgate::LineReader r(path);
  r.set_max_line_bytes(1u << 20);
  std::string_view line;
  ASSERT_TRUE(r.next(line));
  EXPECT_EQ(line, "first");
  EXPECT_EQ(r.skipped_bytes(), 0u);
  ASSERT_TRUE(r.next(line));
  EXPECT_TRUE(line.empty());
  EXPECT_EQ(r.line_no(), 2u);
  EXPECT_EQ(r.skipped_bytes(), huge.size() + 1);  // the '\r' is part of what was skipped
  ASSERT_TRUE(r.next(line));
  EXPECT_EQ(line, "third");
  EXPECT_EQ(r.skipped_bytes(), 0u);
  ASSERT_TRUE(r.next(line));
  EXPECT_EQ(r.line_no(), 4u);
  EXPECT_EQ(r.skipped_bytes(), huge.size());
  EXPECT_FALSE(r.next(line));
  EXPECT_EQ(r.bytes_read(), 6 + huge.size() + 2 + 6 + huge.size());

  // Without a limit the same line is read whole.
  floodgate::LineReader whole(path);
  ASSERT_TRUE(whole.next(line));
  ASSERT_TRUE(whole.next(line));
  EXPECT_EQ(line.size(), huge.size());
  std::remove(path.c_str());
}

}  // namespace

// parse_input_line() parses a line once (strict validation and the fields in one on-demand
// walk) and leaves every line it does not accept to the old two-parse way (DOM validation,
// then the fields). Both must give the same result on every line: valid lines of every
// shape, and every one-byte mutation of them (a byte dropped, inserted or replaced by one
// that matters to JSON), so the single pass never accepts what the DOM parser refuses and
// never reads a field differently.
namespace {

using floodgate::ParsedLine;

void expect_same(const ParsedLine& a, const ParsedLine& b, const std::string& line, bool bare) {
  const std::string where = "line [" + line + "] bare=" + (bare ? "1" : "0");
  ASSERT_EQ(a.request.has_value(), b.request.has_value()) << where << " one-pass: " << a.error_message << " two-pass: " << b.error_message;
  EXPECT_EQ(a.error, b.error) << where;
  EXPECT_EQ(a.error_message, b.error_message) << where;
  EXPECT_EQ(a.custom_id, b.custom_id) << where;
  EXPECT_EQ(a.not_json, b.not_json) << where;
  EXPECT_EQ(a.bare_body, b.bare_body) << where;
  if (!a.request) return;
  EXPECT_EQ(a.request->custom_id, b.request->custom_id) << where;
  EXPECT_EQ(a.request->method, b.request->method) << where;
  EXPECT_EQ(a.request->url, b.request->url) << where;
  EXPECT_EQ(a.request->endpoint, b.request->endpoint) << where;
  EXPECT_EQ(a.request->body, b.request->body) << where;
  EXPECT_EQ(a.request->model, b.request->model) << where;
  EXPECT_EQ(a.request->line_no, b.request->line_no) << where;
}

// Returns how many of the lines became requests.
int compare_both_ways(const std::string& line) {
  int requests = 0;
  for (const bool bare : {false, true}) {
    InputOptions options;
    if (bare) options.default_endpoint = floodgate::Endpoint::chat_completions;
    const ParsedLine one = parse_input_line(line, 5, options);
    const ParsedLine two = floodgate::detail::parse_input_line_two_pass(line, 5, options);
    expect_same(one, two, line, bare);
    requests += one.request.has_value() ? 1 : 0;
  }
  return requests;
}

const char* const kSeeds[] = {
    R"({"custom_id":"req-1","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"Say hello."}]}})",
    R"({"body":{"messages":[{"role":"user","content":"x"}],"model":"m-\u00e9\"q\""} , "custom_id":"b","url":"/v1/chat/completions"}  )",
    R"( { "custom_id" : "c\n" , "body" : { "model" : 5 , "n" : -0.5e-3 , "t" : true , "f" : false , "z" : null , "a" : [ ] , "o" : { } } } )",
    R"({"cust\u006fm_id":"d","url":"/v1/embeddings","body":{"model":"text-embedding-3-small","input":["a","b"],"x":[1,2.0,3e2,-4E+1,0]}})",
    R"({"custom_id":"e","body":{"model":"a"},"body":{"model":"b","model":"c"},"method":"POST","custom_id":"e2"})",
    R"({"custom_id":"f","body":{"model":{"nested":["model"]},"messages":[[[[{"k":[null]}]]]]},"url":"/v1/chat/completions"})",
    R"({"custom_id":"g","url":"/v1/chat/completions","body":{"messages":[],"meta":{"model":"inner"}},"model":"outer"})",
    R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"bare \ud83d\ude00"}],"temperature":0.2})",
    R"({"messages":[],"model":null,"model":"second"}	)",
    R"({"custom_id":"h","method":"GET","url":"/v1/chat/completions","body":{}})",
    R"({"custom_id":"i","url":"/v1/nope","body":{"model":"x"}})",
    R"({"custom_id":7,"body":{"model":"x"}})",
    R"({"custom_id":"j","body":[{"model":"x"}]})",
    R"({"custom_id":"","body":{"model":"x"},"url":"/v1/chat/completions"})",
    R"({"custom_id":"k","body":{"model":"x","big":18446744073709551615,"bigger":18446744073709551616,"neg":-9223372036854775808}})",
};

TEST(InputLineOnePass, SameResultAsTheTwoParseWayOnEveryMutation) {
  static const char kBytes[] = {',', ':', '{', '}', '[', ']', '"', '\\', ' ', '\n', 'x', '0', '1', '-', '.', 'e', 'n', 't', '\x01', '\xff'};
  int requests = 0;
  int lines = 0;
  for (const std::string seed : kSeeds) {
    requests += compare_both_ways(seed);
    ++lines;
    for (std::size_t i = 0; i <= seed.size(); ++i) {
      if (i < seed.size()) {
        requests += compare_both_ways(seed.substr(0, i) + seed.substr(i + 1));
        ++lines;
      }
      for (const char c : kBytes) {
        requests += compare_both_ways(seed.substr(0, i) + c + seed.substr(i));
        ++lines;
        if (i < seed.size() && seed[i] != c) {
          std::string replaced = seed;
          replaced[i] = c;
          requests += compare_both_ways(replaced);
          ++lines;
        }
      }
      if (HasFailure()) return;  // one mismatch is enough to read
    }
  }
  // The mutations must have exercised both ways: many lines became requests, many did not.
  EXPECT_GT(requests, lines / 4) << lines << " lines";
  EXPECT_LT(requests, 2 * lines - lines / 4) << lines << " lines";
}

TEST(InputLineOnePass, DeepNestingAndEdgesGoTheSameWay) {
  for (const int depth : {10, 255, 256, 300, 1100}) {
    const std::string nested = std::string(static_cast<std::size_t>(depth), '[') + std::string(static_cast<std::size_t>(depth), ']');
    compare_both_ways(R"({"custom_id":"a","body":{"model":"m","x":)" + nested + "}}");
  }
  for (const std::string line : {"", " ", "{}", "[]", "null", "\"x\"", "{\"custom_id\":\"a\"}", "{\"body\":{}}", "{\"custom_id\":\"a\",\"body\":{}}x"}) {
    compare_both_ways(line);
  }
}

}  // namespace
