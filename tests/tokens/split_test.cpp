// Cutting a text at Encoding::safe_split_points and encoding the parts separately gives
// exactly the ids of encoding it whole; count_parallel equals count.
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "floodgate/tokens/encoding.hpp"

namespace floodgate::tokens {
namespace {

std::string mixed_text() {
  std::ifstream in(FG_TOKENS_NATURAL_TXT);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string natural = ss.str();
  std::string text;
  std::mt19937 rng(1);
  const std::vector<std::string> glue = {"\n", "\n\n", " \n", "\r\n", "\n  ", "\n\t", "\n1", "\n'", "\n\u00a0", "\n\u0301"};
  for (int i = 0; i < 40; ++i) {
    text += natural.substr(rng() % (natural.size() / 2), 200 + rng() % 2000);
    text += glue[rng() % glue.size()];
    text += "Word" + std::to_string(i) + " {\"k\": [1, 2]}\n";
  }
  return text;
}

TEST(SafeSplit, PartsEncodeLikeTheWhole) {
  const std::string text = mixed_text();
  ASSERT_GT(text.size(), 10000u);
  for (const EncodingId id : {EncodingId::cl100k_base, EncodingId::o200k_base}) {
    const Encoding& enc = Encoding::get(id);
    const auto whole = enc.encode(text);
    for (const std::size_t parts : {2u, 3u, 7u, 16u, 64u}) {
      const auto cuts = Encoding::safe_split_points(text, parts);
      ASSERT_FALSE(cuts.empty());
      EXPECT_LE(cuts.size(), parts - 1);
      std::vector<Rank> joined;
      std::size_t from = 0;
      for (std::size_t k = 0; k <= cuts.size(); ++k) {
        const std::size_t to = k < cuts.size() ? cuts[k] : text.size();
        ASSERT_LT(from, to);
        enc.encode_into(std::string_view(text).substr(from, to - from), joined);
        from = to;
      }
      EXPECT_EQ(joined, whole) << enc.name() << " with " << parts << " parts";
    }
  }
}

TEST(SafeSplit, EveryNewlineLetterBoundaryIsSafe) {
  // Exhaustive over one text: cut at every "\n" + letter position.
  const std::string text = mixed_text().substr(0, 6000);
  for (const EncodingId id : {EncodingId::cl100k_base, EncodingId::o200k_base}) {
    const Encoding& enc = Encoding::get(id);
    const auto whole = enc.encode(text);
    for (std::size_t i = 1; i < text.size(); ++i) {
      const char c = text[i];
      if (text[i - 1] != '\n' || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) continue;
      auto parts = enc.encode(std::string_view(text).substr(0, i));
      enc.encode_into(std::string_view(text).substr(i), parts);
      ASSERT_EQ(parts, whole) << enc.name() << " cut at " << i;
    }
  }
}

TEST(SafeSplit, UnsafeCutsWouldDiffer) {
  // The rule matters: cutting inside "\n  \n" or a word changes the ids.
  const Encoding& enc = Encoding::get(EncodingId::cl100k_base);
  const std::string text = "alpha\n  \nbeta";
  auto cut = enc.encode(std::string_view(text).substr(0, 7));
  enc.encode_into(std::string_view(text).substr(7), cut);
  EXPECT_NE(cut, enc.encode(text));
  EXPECT_TRUE(Encoding::safe_split_points("no newlines here at all", 4).empty());
}

TEST(SafeSplit, CountParallelEqualsCount) {
  std::string text;
  while (text.size() < (3u << 20)) text += mixed_text();
  for (const EncodingId id : {EncodingId::cl100k_base, EncodingId::o200k_base}) {
    const Encoding& enc = Encoding::get(id);
    EXPECT_EQ(enc.count_parallel(text, 4), enc.count(text));
  }
}

}  // namespace
}  // namespace floodgate::tokens
