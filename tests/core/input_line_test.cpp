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
