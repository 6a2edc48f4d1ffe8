#include "floodgate/csv/csv.hpp"

#include <gtest/gtest.h>

#include <random>

namespace floodgate::csv {
namespace {

std::vector<std::vector<std::string>> fields_of(std::string_view text, ReaderOptions o = {}) {
  std::vector<std::vector<std::string>> out;
  for (auto& r : parse(text, o)) {
    EXPECT_EQ(r.error, "") << "record " << r.number;
    out.push_back(r.fields);
  }
  return out;
}

using Rows = std::vector<std::vector<std::string>>;

TEST(CsvReader, PlainQuotedAndEscapedQuotes) {
  EXPECT_EQ(fields_of("a,b,c\n1,2,3\n"), (Rows{{"a", "b", "c"}, {"1", "2", "3"}}));
  EXPECT_EQ(fields_of("\"x, y\",\"say \"\"hi\"\"\",z\n"), (Rows{{"x, y", "say \"hi\"", "z"}}));
  EXPECT_EQ(fields_of("\"\"\n"), (Rows{{""}}));
  EXPECT_EQ(fields_of("a,,\n"), (Rows{{"a", "", ""}}));
}

TEST(CsvReader, EmbeddedNewlinesCrlfAndNoFinalNewline) {
  const auto rows = parse("id,text\r\n1,\"line one\r\nline two\nthree\"\r\n2,last");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].fields, (std::vector<std::string>{"1", "line one\r\nline two\nthree"}));
  EXPECT_EQ(rows[1].first_line, 2u);
  EXPECT_EQ(rows[2].fields, (std::vector<std::string>{"2", "last"}));
  EXPECT_EQ(rows[2].first_line, 5u);
  EXPECT_EQ(rows[2].number, 3u);
}

TEST(CsvReader, BomIsSkippedOnlyAtTheStart) {
  EXPECT_EQ(fields_of("\xEF\xBB\xBFid,name\n1,\xEF\xBB\xBFx\n"), (Rows{{"id", "name"}, {"1", "\xEF\xBB\xBFx"}}));
  EXPECT_EQ(fields_of("\xEF\xBB"), (Rows{{"\xEF\xBB"}}));
}

TEST(CsvReader, BlankLinesAreSkippedAndUtf8Passes) {
  EXPECT_EQ(fields_of("a\n\n\r\nb\n"), (Rows{{"a"}, {"b"}}));
  EXPECT_EQ(fields_of("émoji,🙂\n"), (Rows{{"émoji", "🙂"}}));
}

TEST(CsvReader, MalformedRecordsAreErrorsAndReadingGoesOn) {
  const auto rows = parse("a,b\n\"x\"y,2\n3,4\n\"open,5\n6,7\n");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_NE(rows[1].error.find("after a closing quote on line 2"), std::string::npos) << rows[1].error;
  EXPECT_EQ(rows[2].error, "");
  EXPECT_EQ(rows[2].fields, (std::vector<std::string>{"3", "4"}));
  EXPECT_NE(rows[3].error.find("opened on line 4 is never closed"), std::string::npos) << rows[3].error;
}

TEST(CsvReader, RecordTooLargeIsAnErrorNotUnboundedMemory) {
  ReaderOptions o;
  o.max_record_bytes = 10;
  const auto rows = parse("ok\n0123456789abcdef,x\nfine\n", o);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].error, "");
  EXPECT_NE(rows[1].error.find("larger than 10 bytes"), std::string::npos);
  EXPECT_TRUE(rows[1].fields.empty());
  EXPECT_EQ(rows[2].fields, (std::vector<std::string>{"fine"}));
}

TEST(CsvReader, OtherDelimiter) {
  ReaderOptions o;
  o.delimiter = ';';
  EXPECT_EQ(fields_of("a;\"b;c\";d,e\n", o), (Rows{{"a", "b;c", "d,e"}}));
}

TEST(CsvWriter, QuotesOnlyWhenNeeded) {
  std::string out;
  append_record(out, std::vector<std::string>{"plain", "a,b", "say \"x\"", "two\nlines", " pad", ""});
  EXPECT_EQ(out, "plain,\"a,b\",\"say \"\"x\"\"\",\"two\nlines\",\" pad\",\r\n");
  out.clear();
  append_record(out, std::vector<std::string>{""});
  EXPECT_EQ(out, "\"\"\r\n");
}

// Whatever we write reads back identically (a property over random tricky fields).
TEST(CsvRoundTrip, RandomFieldsSurviveWriteThenRead) {
  std::mt19937 rng(7);
  const std::vector<std::string> atoms = {"a", ",", "\"", "\n", "\r\n", "\r", " ", "é", "🙂", "x\"y", ";", "\t", ""};
  std::string text;
  Rows expected;
  for (int r = 0; r < 300; ++r) {
    std::vector<std::string> row;
    const int n = 1 + static_cast<int>(rng() % 5);
    for (int f = 0; f < n; ++f) {
      std::string field;
      const int parts = static_cast<int>(rng() % 6);
      for (int p = 0; p < parts; ++p) field += atoms[rng() % atoms.size()];
      row.push_back(field);
    }
    append_record(text, row);
    expected.push_back(row);
  }
  EXPECT_EQ(fields_of(text), expected);
}

}  // namespace
}  // namespace floodgate::csv
