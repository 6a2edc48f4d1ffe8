#pragma once
// Durations as OpenAI writes them in x-ratelimit-reset-* headers: "1s", "6m0s", "120ms",
// "1m30.5s", "2h", "2m59.56s", "0s", and also a bare number of seconds ("20", "0.5")
// as in retry-after. Plain text in, plain value out: shared by the client and the sim.

#include <optional>
#include <string>
#include <string_view>

#include "floodgate/core/clock.hpp"

namespace floodgate {

// Parses a Go-style duration ("1h2m3.5s", "250ms", "10us", "5ns") or a bare decimal number
// of seconds. Returns nullopt for empty, negative or malformed text, or an absurd value
// (over ~100 years).
[[nodiscard]] std::optional<Duration> parse_duration(std::string_view text) noexcept;

// Formats like OpenAI: under one second as "NNNms"; under a minute as seconds with up to
// three decimals ("1s", "1.5s", "59.999s"); then "XmYs" ("6m0s", "1m30.5s"); then
// "XhYmZs" ("2h0m0s").
[[nodiscard]] std::string format_duration(Duration d);

}  // namespace floodgate
