// Fuzz target: the tokenizer never crashes on arbitrary bytes (valid UTF-8 or not),
// decode(encode(x)) == x byte for byte in both encodings, count agrees with encode, and
// cutting at safe_split_points does not change the ids.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "floodgate/tokens/encoding.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace floodgate::tokens;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const EncodingId id : {EncodingId::cl100k_base, EncodingId::o200k_base}) {
    const Encoding& enc = Encoding::get(id);
    const std::vector<Rank> ids = enc.encode(text);
    if (enc.decode(ids) != text) std::abort();
    if (enc.count(text) != ids.size()) std::abort();
    const std::vector<Rank> special = enc.encode_with_special(text);
    if (enc.decode(special) != text) std::abort();
    std::vector<Rank> parts;
    std::size_t from = 0;
    for (const std::size_t cut : Encoding::safe_split_points(text, 4)) {
      enc.encode_into(text.substr(from, cut - from), parts);
      from = cut;
    }
    enc.encode_into(text.substr(from), parts);
    if (parts != ids) std::abort();
  }
  return 0;
}
