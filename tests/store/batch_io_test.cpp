// Batch API input parsing, output formatting and the lazy line reader.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "floodgate/core/batch_io.hpp"

namespace floodgate {
namespace {

TEST(ParseInputLine, BatchLineKeepsBodyBytesExactly) {
  const std::string body = R"({"model":"gpt-4o-mini",  "messages":[{"role":"user","content":"h\u00e9 \"x\""}],"max_tokens":5})";
  const std::string line = R"({"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":)" + body + "}";
  auto p = parse_input_line(line, 1, {});
  ASSERT_TRUE(p.request) << p.error_message;
  EXPECT_EQ(p.request->custom_id, "r1");
  EXPECT_EQ(p.request->body, body);  // byte for byte, spacing and escapes kept
  EXPECT_EQ(p.request->model, "gpt-4o-mini");
  EXPECT_EQ(p.request->endpoint, Endpoint::chat_completions);
  EXPECT_EQ(p.request->line_no, 1u);
}

TEST(ParseInputLine, FieldOrderDoesNotMatter) {
  auto p = parse_input_line(R"({"body":{"model":"m","input":"x"},"url":"/v1/embeddings","custom_id":"e"})", 3, {});
  ASSERT_TRUE(p.request) << p.error_message;
  EXPECT_EQ(p.request->endpoint, Endpoint::embeddings);
  EXPECT_EQ(p.request->model, "m");
}

TEST(ParseInputLine, BareBodyNeedsEndpointAndUsesLineNumber) {
  const std::string line = R"({"model":"gpt-4o-mini","messages":[]})";
  auto no = parse_input_line(line, 7, {});
  EXPECT_FALSE(no.request);
  EXPECT_EQ(no.error, ErrorKind::invalid_input);
  EXPECT_NE(no.error_message.find("line 7"), std::string::npos);
  auto yes = parse_input_line(line, 7, InputOptions{Endpoint::chat_completions});
  ASSERT_TRUE(yes.request) << yes.error_message;
  EXPECT_EQ(yes.request->custom_id, "7");
  EXPECT_EQ(yes.request->body, line);
}

TEST(ParseInputLine, BadLinesNameTheLineAndReason) {
  struct Case {
    const char* line;
    const char* reason;
  } cases[] = {
      {"not json", "not JSON"},
      {R"({"custom_id":"a","url":"/v1/chat/completions"})", "no body"},
      {R"({"custom_id":"a","url":"/v1/nope","body":{}})", "unknown endpoint"},
      {R"({"url":"/v1/chat/completions","body":{}})", "no custom_id"},
      {R"({"custom_id":"a","url":"/v1/chat/completions","body":"str"})", "not a JSON object"},
      {R"({"custom_id":"a","url":"/v1/chat/completions","body":{}} trailing)", "not JSON"},
      {R"({"custom_id":"a","method":"GET","url":"/v1/chat/completions","body":{}})", "not POST"},
      {R"({"custom_id":"a","url":"/v1/chat/completions","body":{"model":)", "not JSON"},
      {"[1,2]", "not a JSON object"},
  };
  for (const auto& c : cases) {
    auto p = parse_input_line(c.line, 42, {});
    EXPECT_FALSE(p.request) << c.line;
    EXPECT_EQ(p.error, ErrorKind::invalid_input) << c.line;
    EXPECT_NE(p.error_message.find("line 42"), std::string::npos) << p.error_message;
    EXPECT_NE(p.error_message.find(c.reason), std::string::npos) << c.line << " -> " << p.error_message;
  }
}

TEST(CustomIdSet, DetectsDuplicatesAcrossGrowth) {
  CustomIdSet set;
  for (int i = 0; i < 50'000; ++i) ASSERT_TRUE(set.insert("id-" + std::to_string(i)));
  EXPECT_EQ(set.size(), 50'000u);
  EXPECT_FALSE(set.insert("id-123"));
  EXPECT_TRUE(set.contains("id-49999"));
  EXPECT_FALSE(set.contains("id-50000"));
}

TEST(OutputLine, SuccessAndErrorRoundTrip) {
  Outcome ok;
  ok.custom_id = "r\"1";
  ok.status_code = 200;
  ok.request_id = "req_1";
  ok.body = R"({"id":"x","usage":{"total_tokens":3}})";
  ok.attempts = 1;
  const std::string line = format_output_line(ok);
  ASSERT_EQ(line.back(), '\n');
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["custom_id"], "r\"1");
  EXPECT_EQ(j["response"]["status_code"], 200);
  EXPECT_EQ(j["response"]["body"]["usage"]["total_tokens"], 3);
  EXPECT_TRUE(j["error"].is_null());
  auto info = read_output_line(std::string_view(line).substr(0, line.size() - 1));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->custom_id, "r\"1");
  EXPECT_EQ(info->status_code, 200);

  Outcome bad;
  bad.line_no = 9;
  bad.error = ErrorKind::invalid_input;
  bad.error_message = "line 9: not JSON\n";
  const std::string bl = format_output_line(bad);
  auto bj = nlohmann::json::parse(bl);
  EXPECT_TRUE(bj["custom_id"].is_null());
  EXPECT_TRUE(bj["response"].is_null());
  EXPECT_EQ(bj["error"]["code"], "invalid_input");
  EXPECT_EQ(bj["error"]["line"], 9);
  auto binfo = read_output_line(bl);
  ASSERT_TRUE(binfo);
  EXPECT_EQ(binfo->error, ErrorKind::invalid_input);
  EXPECT_EQ(binfo->line_no, 9u);
}

// The exact bytes of an output line, escapes of every kind included (pinned from the
// per-byte writer of 9f02c42, which the run-at-a-time writer replaced).
TEST(OutputLine, ExactBytesWithEveryEscape) {
  static const char kId[] = "a\"b\\c\n\r\t\b\f\x01\x1f\x7f caf\xc3\xa9 end\0!";
  Outcome o;
  o.custom_id = std::string(kId, sizeof kId - 1);
  o.line_no = 12;
  o.status_code = 429;
  o.request_id = "req_\x02x";
  o.body = R"({"e":1})";
  o.error = ErrorKind::rate_limited;
  o.error_message = "slow \"down\"\x1b";
  o.attempts = 3;
  EXPECT_EQ(format_output_line(o),
            "{\"id\":\"batch_req_274f02e194b43ae8\",\"custom_id\":\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\x7f caf\xc3\xa9 end\\u0000!\","
            "\"response\":{\"status_code\":429,\"request_id\":\"req_\\u0002x\",\"body\":{\"e\":1}},"
            "\"error\":{\"code\":\"rate_limited\",\"message\":\"slow \\\"down\\\"\\u001b\",\"attempts\":3,\"line\":12}}\n");
}

TEST(LineReader, ReadsLinesLazilyIncludingLongOnesAndNoFinalNewline) {
  const auto path = std::filesystem::temp_directory_path() / ("fg_reader_" + std::to_string(::getpid()) + ".jsonl");
  const std::string long_line(200'000, 'x');
  {
    std::ofstream f(path, std::ios::binary);
    f << "a\r\n\n" << long_line << "\nlast";
  }
  LineReader r(path.string());
  EXPECT_EQ(r.prefix(2), "a\r");
  std::string_view line;
  ASSERT_TRUE(r.next(line));
  EXPECT_EQ(line, "a");
  ASSERT_TRUE(r.next(line));
  EXPECT_TRUE(is_blank_line(line));
  ASSERT_TRUE(r.next(line));
  EXPECT_EQ(line.size(), long_line.size());
  ASSERT_TRUE(r.next(line));
  EXPECT_EQ(line, "last");
  EXPECT_EQ(r.line_no(), 4u);
  EXPECT_FALSE(r.next(line));
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace floodgate
