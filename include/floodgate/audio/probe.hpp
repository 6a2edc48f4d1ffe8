#pragma once
// Probing a file before it is sent: what container and codec it is, how long, how big.
// probe() opens the file with libavformat, picks the best audio stream, and checks the
// tail: it seeks to a little before the declared end and reads the last packets, so a
// file whose header promises more audio than it holds (a truncated MP3 with a Xing
// header, a cut WAV) is reported as corrupt rather than sent. It never decodes the
// whole file; its cost is a few reads at the head and the tail.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

#include "floodgate/audio/error.hpp"

namespace floodgate::audio {

using Seconds = std::chrono::duration<double>;

struct AudioInfo {
  std::string container;      // libavformat's short name, e.g. "mp3", "wav", "mov,mp4,m4a,3gp,3g2,mj2"
  std::string codec;          // e.g. "mp3", "pcm_s16le", "aac", "vorbis", "opus", "flac"
  Seconds duration{0};        // of the audio stream (container duration when the stream has none)
  Seconds start_time{0};      // the audio stream's first timestamp (non-zero for MP3 encoder delay)
  std::uint64_t size_bytes = 0;
  int sample_rate_hz = 0;
  int channels = 0;
  std::int64_t bit_rate = 0;  // bits per second, 0 when unknown
  int stream_index = 0;       // the audio stream chosen
};

struct ProbeOptions {
  // Seek to the last `tail_check` of the declared duration and read to the end; the file
  // is corrupt (truncated) when its data stops more than `truncation_tolerance` (or 2% of
  // the duration, whichever is larger) before the declared end.
  bool check_tail = true;
  Seconds tail_check{3.0};
  Seconds truncation_tolerance{0.5};
};

[[nodiscard]] AudioResult<AudioInfo> probe(const std::filesystem::path& path, const ProbeOptions& options = {});

}  // namespace floodgate::audio
