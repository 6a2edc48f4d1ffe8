#include "floodgate/core/text.hpp"

#include <chrono>

#include <gtest/gtest.h>

namespace floodgate {
namespace {

TEST(Text, TrimDropsAsciiWhitespaceOnBothEnds) {
  EXPECT_EQ(trim("  \tvalue \r\n"), "value");
  EXPECT_EQ(trim("a b"), "a b");
  EXPECT_EQ(trim(" \t\r\n"), "");
  EXPECT_EQ(trim(""), "");
  EXPECT_EQ(trim("\xc2\xa0x"), "\xc2\xa0x");  // a no-break space is not ASCII whitespace
}

TEST(Text, IequalsIgnoresAsciiCaseOnly) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_FALSE(iequals("content-length", "content-lengt"));
  EXPECT_FALSE(iequals("\xc3\x89", "\xc3\xa9"));  // É and é differ beyond ASCII
  EXPECT_EQ(ascii_lower("GMT+X"), "gmt+x");
}

TEST(Text, Iso8601UtcWithMilliseconds) {
  using std::chrono::milliseconds;
  using std::chrono::system_clock;
  EXPECT_EQ(iso8601_utc(system_clock::time_point(milliseconds(1'700'000'000'123))), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(iso8601_utc(system_clock::time_point(milliseconds(0))), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(iso8601_utc(system_clock::time_point(milliseconds(-1))), "1969-12-31T23:59:59.999Z");
}

}  // namespace
}  // namespace floodgate
