#pragma once
// The binary tables compiled into the library (see data_blobs.cpp and
// scripts/gen-tokenizer-data.mjs for their layout).

#include <cstdint>
#include <span>

namespace floodgate::tokens::detail {

[[nodiscard]] std::span<const std::uint8_t> cl100k_ranks_blob() noexcept;
[[nodiscard]] std::span<const std::uint8_t> o200k_ranks_blob() noexcept;
[[nodiscard]] std::span<const std::uint8_t> unicode_classes_blob() noexcept;

}  // namespace floodgate::tokens::detail
