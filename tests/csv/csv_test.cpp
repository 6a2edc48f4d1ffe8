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
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_NE(rows[1].error.find("after a closing quote on line 2"), std::string::npos) << rows[1].error;
  EXPECT_EQ(rows[2].error, "");
  EXPECT_EQ(rows[2].fields, (std::vector<std::string>{"3", "4"}));
  EXPECT_NE(rows[3].error.find("opened on line 4 is never closed"), std::string::npos) << rows[3].error;
  EXPECT_EQ(rows[4].error, "");
  EXPECT_EQ(rows[4].fields, (std::vector<std::string>{"6", "7"}));
}

// A quote left open in one row used to swallow the next row up to the next quote (6 rows in,
// 5 reported, the error naming the swallowed row's line): the row where the quote opened is
// the error, and every row after it is read as written.
TEST(CsvReader, UnclosedQuoteIsReportedWhereItOpenedAndSwallowsNothing) {
  const auto rows = parse("id,text\n1,a\n2,b\n3,\"He said hi\n4,\"quoted\"\n5,e\n6,f\n");
  ASSERT_EQ(rows.size(), 7u);
  EXPECT_EQ(rows[3].error, "a quote opened on line 4 is never closed");
  EXPECT_EQ(rows[3].first_line, 4u);
  EXPECT_EQ(rows[3].fields, (std::vector<std::string>{"3", "He said hi"}));
  for (std::size_t i : {1u, 2u, 4u, 5u, 6u}) {
    EXPECT_EQ(rows[i].error, "") << "record " << i;
    EXPECT_EQ(rows[i].fields.at(0), std::to_string(i)) << "record " << i;
    EXPECT_EQ(rows[i].first_line, i + 1) << "record " << i;
  }
  EXPECT_EQ(rows[4].fields, (std::vector<std::string>{"4", "quoted"}));

  // Open until the end of the file, with CRLF line ends.
  const auto crlf = parse("id,text\r\n1,\"open\r\n2,b\r\n3,c\r\n");
  ASSERT_EQ(crlf.size(), 4u);
  EXPECT_EQ(crlf[1].error, "a quote opened on line 2 is never closed");
  EXPECT_EQ(crlf[1].fields, (std::vector<std::string>{"1", "open"}));
  EXPECT_EQ(crlf[2].fields, (std::vector<std::string>{"2", "b"}));
  EXPECT_EQ(crlf[3].fields, (std::vector<std::string>{"3", "c"}));
  EXPECT_EQ(crlf[3].first_line, 4u);

  // A field that spans lines and closes properly is still one field.
  const auto ok = parse("1,\"two\nlines\",x\n2,y\n");
  ASSERT_EQ(ok.size(), 2u);
  EXPECT_EQ(ok[0].fields, (std::vector<std::string>{"1", "two\nlines", "x"}));
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
