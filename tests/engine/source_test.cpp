// The JSONL file source: what the engine reads from a file, item by item, and the identity
// a journal is checked against.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "floodgate/core/error.hpp"
#include "floodgate/engine/source.hpp"
#include "support/files.hpp"

namespace floodgate::engine {
namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string chat_line(const std::string& id) {
  return R"({"custom_id":")" + id + R"(","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}})";
}

std::vector<SourceItem> read_all(RequestSource& source) {
  std::vector<SourceItem> items;
  SourceItem item;
  while (source.next(item) == SourceStatus::item) items.push_back(item);
  return items;
}

TEST(JsonlSource, YieldsEveryLineWithItsNumberSkippingBlankLinesAndKeepingBadOnesAsErrors) {
  test::TempDir dir("source");
  write_file(dir.file("in.jsonl"), chat_line("a") + "\n\n   \n{not json\n" + chat_line("b") + "\n");
  auto source = open_jsonl_source(dir.file("in.jsonl"), InputOptions{});
  const auto items = read_all(*source);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].line_no, 1u);
  ASSERT_TRUE(items[0].parsed.request);
  EXPECT_EQ(items[0].parsed.request->custom_id, "a");
  EXPECT_EQ(items[1].line_no, 4u);
  EXPECT_FALSE(items[1].parsed.request);
  EXPECT_EQ(items[1].parsed.error, ErrorKind::invalid_input);
  EXPECT_EQ(items[2].line_no, 5u);
  EXPECT_EQ(items[2].parsed.request->custom_id, "b");
  for (const SourceItem& i : items) {
    EXPECT_EQ(i.skipped_bytes, 0u);
    EXPECT_EQ(i.payload, nullptr);
  }
  SourceItem after;
  EXPECT_EQ(source->next(after), SourceStatus::end);  // and stays there
  EXPECT_EQ(source->ready_fd(), -1);                   // a file never says none_yet
}

TEST(JsonlSource, ALineOverTheRequestLimitIsSkippedNotHeld) {
  test::TempDir dir("source");
  const std::string huge = R"({"custom_id":"big","body":")" + std::string(kMaxRequestBytes + (64u << 10) + 1, 'x') + "\"}";
  write_file(dir.file("in.jsonl"), chat_line("a") + "\n" + huge + "\n" + chat_line("c") + "\n");
  auto source = open_jsonl_source(dir.file("in.jsonl"), InputOptions{});
  const auto items = read_all(*source);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[1].line_no, 2u);
  EXPECT_EQ(items[1].skipped_bytes, huge.size());
  EXPECT_FALSE(items[1].parsed.request);
  EXPECT_EQ(items[2].parsed.request->custom_id, "c");
}

TEST(JsonlSource, AnInputThatCannotBeAJobIsRefusedWhenOpened) {
  test::TempDir dir("source");
  write_file(dir.file("empty.jsonl"), "\n\n");
  EXPECT_THROW((void)open_jsonl_source(dir.file("empty.jsonl"), InputOptions{}), Error);
  write_file(dir.file("bare.jsonl"), R"({"model":"m","messages":[]})" "\n");
  EXPECT_THROW((void)open_jsonl_source(dir.file("bare.jsonl"), InputOptions{}), Error);
  EXPECT_NO_THROW((void)open_jsonl_source(dir.file("bare.jsonl"), InputOptions{Endpoint::chat_completions}));
}

TEST(JsonlSource, IdentityDependsOnTheEndpointSettingAndFingerprintsTheFirstLines) {
  test::TempDir dir("source");
  write_file(dir.file("in.jsonl"), chat_line("a") + "\n" + chat_line("a") + "\n" + "{oops\n");
  const SourceIdentity plain = open_jsonl_source(dir.file("in.jsonl"), InputOptions{})->identity();
  const SourceIdentity chat = open_jsonl_source(dir.file("in.jsonl"), InputOptions{Endpoint::chat_completions})->identity();
  EXPECT_EQ(plain.name, "the input \"" + dir.file("in.jsonl") + "\"");
  EXPECT_EQ(plain.path, dir.file("in.jsonl"));
  EXPECT_TRUE(plain.tag.starts_with("v2:"));
  EXPECT_NE(plain.tag, chat.tag);
  EXPECT_TRUE(plain.legacy_tag.starts_with("v1:"));
  // Keys as the journal has them: the id the first time, "@line:N" for a repeat and a bad line.
  ASSERT_EQ(plain.first_lines.size(), 3u);
  EXPECT_EQ(plain.first_lines[0].key, "a");
  EXPECT_EQ(plain.first_lines[1].key, "@line:2");
  EXPECT_EQ(plain.first_lines[2].key, "@line:3");
  EXPECT_EQ(plain.first_lines[0].hash, plain.first_lines[1].hash);  // the same bytes
  EXPECT_NE(plain.first_lines[0].hash, plain.first_lines[2].hash);
  for (const LineFingerprint& l : plain.first_lines) EXPECT_TRUE(l.recorded);
}

TEST(JsonlSource, OnlyTheFirst256LinesAreRecordedInTheJournal) {
  test::TempDir dir("source");
  std::string text;
  for (int i = 0; i < 300; ++i) text += chat_line("q" + std::to_string(i)) + "\n";
  write_file(dir.file("in.jsonl"), text);
  const SourceIdentity id = open_jsonl_source(dir.file("in.jsonl"), InputOptions{})->identity();
  ASSERT_EQ(id.first_lines.size(), 300u);  // all within 128 KiB: compared
  EXPECT_TRUE(id.first_lines[255].recorded);
  EXPECT_FALSE(id.first_lines[256].recorded);
}

TEST(JsonlSource, ReopensAFileFromItsStartButNotStdin) {
  test::TempDir dir("source");
  write_file(dir.file("in.jsonl"), chat_line("a") + "\n" + chat_line("b") + "\n");
  auto source = open_jsonl_source(dir.file("in.jsonl"), InputOptions{});
  (void)read_all(*source);
  auto again = source->reopen();
  ASSERT_NE(again, nullptr);
  const auto items = read_all(*again);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].parsed.request->custom_id, "a");
  EXPECT_EQ(source->fraction_read(), 1.0);
}

TEST(InputItemKey, TheIdOnceThenTheLineNumber) {
  CustomIdSet ids;
  ParsedLine p;
  p.custom_id = "x";
  EXPECT_EQ(input_item_key(p, 1, ids), "x");
  EXPECT_EQ(input_item_key(p, 2, ids), "@line:2");
  EXPECT_EQ(input_item_key(ParsedLine{}, 3, ids), "@line:3");
}

}  // namespace
}  // namespace floodgate::engine
