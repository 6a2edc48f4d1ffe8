#pragma once
// Sixteen lower-case hex digits of a 64-bit value (journal identities and fingerprints).

#include <cstdint>
#include <string>

namespace floodgate::engine {

[[nodiscard]] std::string hex64(std::uint64_t v);

}  // namespace floodgate::engine
