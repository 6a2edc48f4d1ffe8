#pragma once
// Deterministic answers: every text, JSON instance, vector and transcript the simulator
// writes is a pure function of a 64-bit seed derived from the request body, so the same
// request always gets the same content.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace floodgate::sim {

// The length a completion "wants" (8..64 tokens), before any max_tokens cap.
[[nodiscard]] std::int64_t natural_completion_tokens(std::uint64_t seed) noexcept;

// Words whose estimate_text_tokens() is exactly `tokens` (4 bytes per token).
[[nodiscard]] std::string completion_text(std::uint64_t seed, std::int64_t tokens);

// A minimal instance valid against a JSON Schema (objects with required properties,
// strings with length bounds and enums, numbers/integers with bounds, booleans, arrays
// with minItems, const, anyOf/oneOf/allOf (first branch), local $ref into $defs).
[[nodiscard]] nlohmann::json schema_instance(const nlohmann::json& schema, std::uint64_t seed);

// A JSON text that is NOT valid against the schema (a required property dropped, the
// wrong type at the root, or, for a schema accepting anything, text that is not JSON).
[[nodiscard]] std::string invalid_schema_content(const nlohmann::json& schema, std::uint64_t seed);

// A unit-length embedding of `dim` floats.
[[nodiscard]] std::vector<float> embedding_vector(std::uint64_t seed, int dim);

// Transcript words for an audio of `seconds` (about 2.5 words per second, at least one).
[[nodiscard]] std::vector<std::string> transcript_words(std::uint64_t seed, double seconds);

}  // namespace floodgate::sim
