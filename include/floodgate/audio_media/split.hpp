#pragma once
// Splitting long audio into chunks the API accepts (25 MB per file) and that are short
// enough to transcribe in parallel (`max_chunk`, 600 s by default).
//
// 1. The target length is min(max_chunk, max_chunk_bytes / the file's average byte rate),
//    so a chunk stays under the size limit whatever its duration.
// 2. plan_cuts() walks the file: from each chunk start s it looks for silences in the
//    search window [s + (1 - search_fraction) * target, s + target]. Among them it takes
//    the longest (ties: the later), and cuts in the middle of the part of it that lies in
//    the window. With no silence in the window it cuts at exactly s + target.
// 3. write_chunks() cuts the file at those times. Where the container has a muxer it
//    copies packets (no re-encoding, no quality loss): each packet goes to the chunk its
//    timestamp falls in, timestamps are rebased to start at 0, and the chunk's offset is
//    the first packet's actual timestamp, so the cut is off the planned time by at most
//    one packet (26 ms for MP3, 23 ms for AAC at 44.1 kHz) and chunks neither overlap nor
//    leave gaps. Otherwise (or when remuxing fails) it decodes and re-encodes each chunk as
//    16 kHz mono FLAC, cutting at the exact sample.
//
// Chunks go into a directory the caller owns (see ChunkDir), named chunk-0000.<ext>.

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "floodgate/audio/error.hpp"
#include "floodgate/audio/media.hpp"
#include "floodgate/audio_media/silence.hpp"

namespace floodgate::audio {

struct Cut {
  Seconds at{0};
  bool in_silence = false;
};

struct SplitResult {
  std::vector<Chunk> chunks;
  std::vector<Cut> cuts;
  std::vector<Silence> silences;
  bool reencoded = false;
  Seconds decoded_duration{0};
};

// True when the file must be split: larger than max_chunk_bytes or longer than max_chunk.
[[nodiscard]] bool needs_split(const AudioInfo& info, const SplitOptions& options) noexcept;

// min(max_chunk, max_chunk_bytes / average byte rate), never below 1 s.
[[nodiscard]] Seconds target_chunk_length(const AudioInfo& info, const SplitOptions& options) noexcept;

// Pure: the cut points for a file of `duration` with these silences (sorted), each chunk at
// most `target` long. Empty when the file fits in one chunk.
[[nodiscard]] std::vector<Cut> plan_cuts(Seconds duration, std::span<const Silence> silences, Seconds target,
                                         double search_fraction = 0.25);

// Writes one file per chunk into out_dir (which must exist).
[[nodiscard]] AudioResult<std::vector<Chunk>> write_chunks(const std::filesystem::path& input, const AudioInfo& info,
                                                           std::span<const Cut> cuts,
                                                           const std::filesystem::path& out_dir, ChunkMode mode,
                                                           bool* reencoded = nullptr);

// measure_energy + find_silences + plan_cuts + write_chunks. A file that does not need
// splitting still yields one chunk (a copy made by the same writer) only when asked to
// split; callers normally send such a file as it is.
[[nodiscard]] AudioResult<SplitResult> split_audio(const std::filesystem::path& input, const AudioInfo& info,
                                                   const std::filesystem::path& out_dir,
                                                   const SplitOptions& options = {});

}  // namespace floodgate::audio
