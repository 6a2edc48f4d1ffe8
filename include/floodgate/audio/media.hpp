#pragma once
// What the FFmpeg side of audio (floodgate::audio_media: probe, silence detection, split;
// its headers are floodgate/audio_media/, not installed) and the rest of audio share:
// plain types, no FFmpeg. A probed file's facts, the options of a split and the chunks
// it wrote travel between the `floodgate-audio` helper and `floodgate transcribe` as JSON
// (job.hpp).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace floodgate::audio {

using Seconds = std::chrono::duration<double>;

// What probe() found (audio_media/probe.hpp).
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

// What counts as a silence (audio_media/silence.hpp, with the reasons for the defaults).
struct SilenceOptions {
  int analysis_rate_hz = 8000;
  Seconds frame{0.020};
  double threshold_dbfs = -40.0;
  Seconds min_silence{0.30};
};

// The API's file size limit, and the default chunk size that leaves room for the
// container overhead of a remuxed chunk and the multipart envelope.
inline constexpr std::uint64_t kApiFileLimitBytes = 25ULL * 1024 * 1024;
inline constexpr std::uint64_t kDefaultMaxChunkBytes = 24'000'000;

enum class ChunkMode { automatic, remux, reencode };

// How split_audio() cuts (audio_media/split.hpp).
struct SplitOptions {
  Seconds max_chunk{600.0};
  std::uint64_t max_chunk_bytes = kDefaultMaxChunkBytes;
  double search_fraction = 0.25;  // look for a silence in the last 25% of each target length
  ChunkMode mode = ChunkMode::automatic;
  SilenceOptions silence;
};

// One file split_audio() wrote.
struct Chunk {
  std::size_t index = 0;
  std::filesystem::path path;
  Seconds offset{0};    // where the chunk starts in the original, from its first packet/sample
  Seconds duration{0};  // from its packets' timestamps and durations
  std::uint64_t size_bytes = 0;
};

}  // namespace floodgate::audio
