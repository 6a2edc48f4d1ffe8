#pragma once
// Small deterministic helpers of the simulator: a strong body hash (SHA-256, incremental),
// a seeded mixing function for reproducible "random" choices, hex and base64.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace floodgate::sim {

// SplitMix64 finaliser: a well-mixed 64-bit function of its input.
[[nodiscard]] constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A uniform double in [0, 1) from a 64-bit value.
[[nodiscard]] constexpr double unit_interval(std::uint64_t x) noexcept {
  return static_cast<double>(x >> 11) * (1.0 / 9007199254740992.0);
}

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  // Finishes and returns the 32-byte digest; the object may not be updated afterwards.
  std::array<std::uint8_t, 32> finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

[[nodiscard]] std::array<std::uint8_t, 32> sha256(std::string_view data);
[[nodiscard]] std::string to_hex(const std::uint8_t* data, std::size_t size);
// The first 8 bytes of a digest as a number (a seed for deterministic content).
[[nodiscard]] std::uint64_t digest_seed(const std::array<std::uint8_t, 32>& digest) noexcept;
[[nodiscard]] std::string base64_encode(std::string_view data);

}  // namespace floodgate::sim
