#pragma once
// One decoding pass over a file's audio stream, resampled to a fixed layout: the shared
// core of silence detection (mono float at 8 kHz) and re-encoding (mono s16 at 16 kHz).
// Samples reach the callback in order, in blocks; sample n of the output is at time
// n / rate_hz from the start of the audio.

#include <cstdint>
#include <filesystem>
#include <functional>

#include "audio/av.hpp"
#include "floodgate/audio/error.hpp"
#include "floodgate/audio_media/probe.hpp"

namespace floodgate::audio::detail {

struct DecodeStats {
  std::uint64_t samples_out = 0;
  std::uint64_t decode_errors = 0;
  std::uint64_t packets = 0;
};

// `on_samples(data, nb_samples)` receives interleaved samples of `fmt` with `channels`
// channels; it returns false to stop early (not an error).
using SampleSink = std::function<bool(const std::uint8_t* data, int nb_samples)>;

[[nodiscard]] AudioResult<DecodeStats> decode_resampled(const std::filesystem::path& path, const AudioInfo& info,
                                                        int channels, AVSampleFormat fmt, int rate_hz,
                                                        const SampleSink& on_samples);

// "<what> <path>: <reason>" as an AudioError.
[[nodiscard]] AudioError make_error(AudioErrc code, const std::filesystem::path& path, const std::string& what);

}  // namespace floodgate::audio::detail
