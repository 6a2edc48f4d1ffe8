#pragma once
// Byte string -> rank, for the BPE's inner loop: open addressing over a power-of-two
// table of 8-byte slots (rank, length, 16-bit hash tag), the bytes themselves compared
// only on a tag match. Built once from the embedded rank blob; never allocates on lookup.

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
    slots_.assign(size, Slot{kNoRank, 0, 0});
    mask_ = size - 1;
    for (std::uint32_t r = 0; r < count; ++r) {
      const std::uint32_t len = offsets[r + 1] - offsets[r];
      if (len == 0) continue;
      const std::uint64_t h = hash_bytes(bytes_ + offsets[r], len);
      std::size_t i = h & mask_;
      while (slots_[i].rank != kNoRank) i = (i + 1) & mask_;
      slots_[i] = Slot{r, static_cast<std::uint16_t>(len), static_cast<std::uint16_t>(h >> 48)};
      if (len > max_len_) max_len_ = len;
    }
  }

  [[nodiscard]] std::uint32_t find(const std::uint8_t* p, std::size_t n) const noexcept {
    if (n > max_len_) return kNoRank;
    const std::uint64_t h = hash_bytes(p, n);
    const auto tag = static_cast<std::uint16_t>(h >> 48);
    std::size_t i = h & mask_;
    for (;;) {
      const Slot s = slots_[i];
      if (s.rank == kNoRank) return kNoRank;
      if (s.tag == tag && s.len == n && std::memcmp(bytes_ + offsets_[s.rank], p, n) == 0) return s.rank;
      i = (i + 1) & mask_;
    }
  }

  [[nodiscard]] std::size_t max_len() const noexcept { return max_len_; }

 private:
  struct Slot {
    std::uint32_t rank;
    std::uint16_t len;
    std::uint16_t tag;
  };
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t max_len_ = 0;
  const std::uint8_t* bytes_ = nullptr;
  const std::uint32_t* offsets_ = nullptr;
};

}  // namespace floodgate::tokens::detail
