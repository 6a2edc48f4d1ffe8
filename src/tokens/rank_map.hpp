#pragma once
// Byte string -> rank, for the BPE's inner loop: open addressing (linear probing) over a
// power-of-two table. Probing reads a parallel array of 16-bit hash tags (0.5-1 MB, it
// stays in cache), so a string that is not a token usually costs no slot access; on a
// tag match the 16-byte slot holds the token's first 8 bytes, rank and length (bytes past
// the 8th are compared in the blob). Two-byte strings, the most frequent lookup, go through a direct 64K table.
// Built once from the embedded rank blob; never allocates on lookup.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace floodgate::tokens::detail {

inline constexpr std::uint32_t kNoRank = std::numeric_limits<std::uint32_t>::max();

inline std::uint64_t load_partial(const std::uint8_t* p, std::size_t n) noexcept {
  std::uint64_t v = 0;
  std::memcpy(&v, p, n);
  return v;
}

inline std::uint64_t hash_bytes(const std::uint8_t* p, std::size_t n) noexcept {
  std::uint64_t h = (n + 1) * 0x9E3779B97F4A7C15ull;
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * 0xff51afd7ed558ccdull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n != 0) h = (h ^ load_partial(p, n)) * 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 32;
  h *= 0x9E3779B97F4A7C15ull;
  return h ^ (h >> 29);
}

class RankMap {
 public:
  RankMap() = default;
  // token_bytes + offsets[r] .. offsets[r + 1] are the bytes of rank r.
  void build(const std::uint8_t* token_bytes, const std::uint32_t* offsets, std::uint32_t count) {
    bytes_ = token_bytes;
    offsets_ = offsets;
    std::size_t size = 1;
    while (size < std::size_t{count} * 2 + 16) size <<= 1;
    slots_.assign(size, Slot{0, kNoRank, 0});
    tags_.assign(size, 0);
    pairs_.assign(1 << 16, kNoRank);
    mask_ = size - 1;
    for (std::uint32_t r = 0; r < count; ++r) {
      const std::uint32_t len = offsets[r + 1] - offsets[r];
      if (len == 0) continue;
      const std::uint8_t* b = bytes_ + offsets[r];
      const std::uint64_t h = hash_bytes(b, len);
      std::size_t i = h & mask_;
      while (slots_[i].rank != kNoRank) i = (i + 1) & mask_;
      tags_[i] = tag_of(h);
      slots_[i] = Slot{load_partial(b, len < 8 ? len : 8), r, len | (static_cast<std::uint32_t>(h >> 40) & 0xFFFFFF00u)};
      if (len > max_len_) max_len_ = len;
      if (len == 2) pairs_[std::size_t{b[0]} << 8 | b[1]] = r;
    }
  }

  [[nodiscard]] std::uint32_t find(const std::uint8_t* p, std::size_t n) const noexcept {
    if (n == 2) return pairs_[std::size_t{p[0]} << 8 | p[1]];
    if (n > max_len_) return kNoRank;
    return find_hashed(p, n, hash_bytes(p, n));
  }

  [[nodiscard]] std::uint32_t find_hashed(const std::uint8_t* p, std::size_t n, std::uint64_t h) const noexcept {
    const std::uint16_t tag = tag_of(h);
    std::size_t i = h & mask_;
    for (;;) {
      const std::uint16_t t = tags_[i];
      if (t == 0) return kNoRank;
      if (t == tag) {
        const Slot& s = slots_[i];
        if ((s.len_tag & 0xFF) == n && s.head == load_partial(p, n < 8 ? n : 8) &&
            (n <= 8 || std::memcmp(bytes_ + offsets_[s.rank] + 8, p + 8, n - 8) == 0)) {
          return s.rank;
        }
      }
      i = (i + 1) & mask_;
    }
  }

  [[nodiscard]] std::size_t max_len() const noexcept { return max_len_; }

 private:
  // Non-zero 16-bit tag of a hash (0 marks an empty slot).
  static std::uint16_t tag_of(std::uint64_t h) noexcept { return static_cast<std::uint16_t>((h >> 48) | 1); }

  struct Slot {
    std::uint64_t head;     // the first (up to) 8 bytes, zero-padded
    std::uint32_t rank;
    std::uint32_t len_tag;  // length in the low byte, 24 hash bits above
  };
  std::vector<Slot> slots_;
  std::vector<std::uint16_t> tags_;   // per slot; small enough to stay in cache, so most misses end here
  std::vector<std::uint32_t> pairs_;  // every two-byte token, indexed directly
  std::size_t mask_ = 0;
  std::size_t max_len_ = 0;
  const std::uint8_t* bytes_ = nullptr;
  const std::uint32_t* offsets_ = nullptr;
};

}  // namespace floodgate::tokens::detail
