// Encoding: known ids, special tokens, round trips, invalid UTF-8, long pieces.
#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "floodgate/core/error.hpp"
#include "floodgate/tokens/encoding.hpp"

namespace floodgate::tokens {
namespace {

const Encoding& cl100k() { return Encoding::get(EncodingId::cl100k_base); }
const Encoding& o200k() { return Encoding::get(EncodingId::o200k_base); }

TEST(Encoding, KnownIds) {
  // Values from the official tiktoken.
  EXPECT_EQ(cl100k().encode("hello world"), (std::vector<Rank>{15339, 1917}));
  EXPECT_EQ(o200k().encode("hello world"), (std::vector<Rank>{24912, 2375}));
  EXPECT_EQ(cl100k().encode("Hello world, it's a test! I'm 12345 years old.\n\n  foo"),
            (std::vector<Rank>{9906, 1917, 11, 433, 596, 264, 1296, 0, 358, 2846, 220, 4513, 1774, 1667, 2362, 382, 220, 15586}));
  EXPECT_EQ(o200k().encode("Hello world, it's a test! I'm 12345 years old.\n\n  foo"),
            (std::vector<Rank>{13225, 2375, 11, 4275, 261, 1746, 0, 5477, 220, 7633, 2548, 2101, 2890, 364, 220, 30551}));
  EXPECT_TRUE(cl100k().encode("").empty());
  EXPECT_EQ(cl100k().count(""), 0u);
}

TEST(Encoding, NamesAndSizes) {
  EXPECT_EQ(cl100k().name(), "cl100k_base");
  EXPECT_EQ(o200k().name(), "o200k_base");
  EXPECT_EQ(encoding_from_name("o200k_base"), EncodingId::o200k_base);
  EXPECT_FALSE(encoding_from_name("p50k_base").has_value());
  EXPECT_EQ(cl100k().vocabulary_size(), 100277u);
  EXPECT_EQ(o200k().vocabulary_size(), 200019u);
}

TEST(Encoding, SpecialTokensAreTextUnlessAsked) {
  const std::string text = "a<|endoftext|>b";
  const auto plain = cl100k().encode(text);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), Rank{100257}), 0);
  EXPECT_EQ(cl100k().decode(plain), text);
  const auto special = cl100k().encode_with_special(text);
  EXPECT_EQ(special, (std::vector<Rank>{64, 100257, 65}));
  EXPECT_EQ(cl100k().decode(special), text);
  EXPECT_EQ(o200k().encode_with_special("<|endoftext|>"), (std::vector<Rank>{199999}));
  EXPECT_EQ(o200k().special_token("<|endofprompt|>"), Rank{200018});
  EXPECT_FALSE(o200k().special_token("<|fim_prefix|>").has_value());
}

TEST(Encoding, DecodeRejectsUnknownIds) {
  const std::vector<Rank> ids{1, 999999};
  EXPECT_THROW((void)cl100k().decode(ids), Error);
  EXPECT_TRUE(cl100k().token_bytes(999999).empty());
  EXPECT_EQ(cl100k().token_bytes(15339), "hello");
}

TEST(Encoding, InvalidUtf8RoundTripsByteForByte) {
  const std::vector<std::string> inputs = {
      std::string("\xff\xfe\x80", 3), std::string("abc\xc3", 4), std::string("\xed\xa0\x80x", 4),  // surrogate
      std::string("\xf4\x90\x80\x80", 4), std::string("\xc0\xaf 's", 5), std::string("\xe2\x82", 2),
      std::string("a\0b", 3)};
  for (const auto& s : inputs) {
    for (const Encoding* e : {&cl100k(), &o200k()}) {
      const auto ids = e->encode(s);
      EXPECT_EQ(e->decode(ids), s);
      EXPECT_EQ(e->count(s), ids.size());
    }
  }
}

TEST(Encoding, RandomBytesRoundTrip) {
  std::mt19937 rng(42);
  for (int i = 0; i < 300; ++i) {
    std::string s(rng() % 200, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 256);
    for (const Encoding* e : {&cl100k(), &o200k()}) EXPECT_EQ(e->decode(e->encode(s)), s);
  }
}

TEST(Encoding, LongSingleWordIsExactAndRoundTrips) {
  // 1 MB of one letter is one piece, merged with the heap (the conformance corpus checks
  // the heap's ids against tiktoken on runs of a few thousand bytes).
  const std::string big(1 << 20, 'a');
  for (const Encoding* e : {&cl100k(), &o200k()}) {
    const auto ids = e->encode(big);
    EXPECT_EQ(e->decode(ids), big);
    EXPECT_LT(ids.size(), big.size() / 4);
    EXPECT_GT(ids.size(), big.size() / 128);
  }
  // A 600-letter random word (heap path) round-trips and counts like it encodes.
  std::string word;
  std::mt19937 rng(7);
  for (int i = 0; i < 600; ++i) word.push_back(static_cast<char>('a' + rng() % 26));
  const auto whole = cl100k().encode(word);
  EXPECT_EQ(cl100k().decode(whole), word);
  EXPECT_EQ(cl100k().count(word), whole.size());
}

}  // namespace
}  // namespace floodgate::tokens
