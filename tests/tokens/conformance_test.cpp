// floodgate's token ids against the official tiktoken's, for every case the oracle wrote
// (see conformance/oracle.mjs): identical ids for cl100k_base and o200k_base, and
// decode(encode(x)) == x.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "floodgate/tokens/encoding.hpp"

namespace floodgate::tokens {
namespace {

std::string base64_decode(const std::string& in) {
  static const std::string abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : in) {
    if (c == '=') break;
    const auto v = abc.find(c);
    if (v == std::string::npos) continue;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

std::string fnv_hex(const std::vector<Rank>& ids) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const Rank id : ids) {
    for (int b = 0; b < 4; ++b) {
      h ^= (id >> (8 * b)) & 0xFF;
      h *= 0x100000001b3ull;
    }
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

TEST(TokensConformance, IdsEqualTheOfficialTiktoken) {
  const char* path = std::getenv("FG_TOKENS_ORACLE");
  ASSERT_NE(path, nullptr) << "FG_TOKENS_ORACLE names the oracle's expected.jsonl";
  std::ifstream in(path);
  ASSERT_TRUE(in) << "cannot open " << path;
  std::string line;
  int cases = 0, failures = 0;
  while (std::getline(in, line)) {
    const auto rec = nlohmann::json::parse(line);
    const std::string text = base64_decode(rec.at("text").get<std::string>());
    const std::string name = rec.at("name").get<std::string>();
    ++cases;
    for (const EncodingId id : {EncodingId::cl100k_base, EncodingId::o200k_base}) {
      const Encoding& enc = Encoding::get(id);
      const auto& want = rec.at(std::string(enc.name()));
      const std::vector<Rank> got = enc.encode(text);
      const bool same = got.size() == want.at("count").get<std::size_t>() && fnv_hex(got) == want.at("fnv").get<std::string>();
      if (!same && ++failures <= 25) {
        std::string detail;
        if (want.contains("ids")) {
          const auto ids = want.at("ids").get<std::vector<Rank>>();
          std::size_t i = 0;
          while (i < ids.size() && i < got.size() && ids[i] == got[i]) ++i;
          detail = " first difference at id #" + std::to_string(i);
        }
        ADD_FAILURE() << enc.name() << " case '" << name << "': " << got.size() << " ids, tiktoken has "
                      << want.at("count").get<std::size_t>() << detail;
      }
      EXPECT_EQ(enc.count(text), got.size()) << name;
      if (enc.decode(got) != text && ++failures <= 25) ADD_FAILURE() << enc.name() << " case '" << name << "' does not round-trip";
    }
  }
  EXPECT_GT(cases, 1000) << "the oracle wrote too few cases";
  EXPECT_EQ(failures, 0) << failures << " mismatches in " << cases << " cases";
}

}  // namespace
}  // namespace floodgate::tokens
