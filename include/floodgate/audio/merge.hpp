#pragma once
// Reassembling the transcripts of a file's chunks, in chunk order, into one transcript in
// the response format that was asked for:
// - text, json: the texts joined with one space (json: {"text": ...}).
// - srt, vtt: every cue shifted by its chunk's offset; cues renumbered 1..n; times
//   clamped to [0, total duration] and made monotonic (a cue never starts before the
//   previous one ends, never ends before it starts).
// - verbose_json: text joined; segments and words shifted the same way, segment ids
//   renumbered 0..n-1, `seek` shifted (it counts 10 ms frames), `duration` set to the
//   file's duration, `language` from the first chunk that has one.
// A chunk whose body does not parse in the expected format is an error (the merge
// never silently drops a chunk).

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "floodgate/audio/error.hpp"
#include "floodgate/audio/media.hpp"

namespace floodgate::audio {

enum class ResponseFormat { json, text, srt, vtt, verbose_json };

[[nodiscard]] std::optional<ResponseFormat> response_format_from_string(std::string_view name) noexcept;
[[nodiscard]] std::string_view to_string(ResponseFormat format) noexcept;
// The transcript file's extension: ".json", ".txt", ".srt", ".vtt", ".json".
[[nodiscard]] std::string_view transcript_extension(ResponseFormat format) noexcept;

struct ChunkTranscript {
  Seconds offset{0};
  std::string body;  // the API's response body for that chunk
};

[[nodiscard]] AudioResult<std::string> merge_transcripts(ResponseFormat format,
                                                         std::span<const ChunkTranscript> chunks,
                                                         Seconds total_duration);

// The plain text of one response body (json/verbose_json: "text"; srt/vtt: the cue texts
// joined with spaces; text: as is, trimmed). Empty when the body does not parse.
[[nodiscard]] std::string transcript_text(ResponseFormat format, std::string_view body);

// The last `max_chars` characters of `text`, starting at a word boundary: the prompt
// carried from one chunk to the next (--carry-prompt).
[[nodiscard]] std::string prompt_tail(std::string_view text, std::size_t max_chars = 800);

// "HH:MM:SS,mmm" (srt) or "HH:MM:SS.mmm" (vtt).
[[nodiscard]] std::string format_timestamp(Seconds t, char decimal_separator);
// Parses "HH:MM:SS,mmm", "HH:MM:SS.mmm" or "MM:SS.mmm"; nullopt when malformed.
[[nodiscard]] std::optional<Seconds> parse_timestamp(std::string_view text) noexcept;

}  // namespace floodgate::audio
