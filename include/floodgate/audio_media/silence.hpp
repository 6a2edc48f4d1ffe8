#pragma once
// Silence detection by energy. The audio is decoded and resampled (libswresample) to mono
// float at a low rate (8 kHz by default: speech energy is below 4 kHz, and it is cheap),
// cut into short frames (20 ms), and each frame's RMS level is taken in dBFS. A silence is
// a run of frames below `threshold_dbfs` lasting at least `min_silence`.
//
// measure_energy() does the decoding (one pass, memory bounded by the frame list: 4 bytes
// per 20 ms, 1.4 MB for a 2-hour file); find_silences() is a pure function of the profile,
// so the algorithm is tested on plain numbers.
//
// Defaults: threshold -40 dBFS (speech is typically -30..-10 dBFS, a quiet room -60..-50),
// minimum silence 0.3 s (longer than the gaps between words, shorter than a pause between
// sentences), frames of 20 ms at 8 kHz.

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "floodgate/audio/error.hpp"
#include "floodgate/audio/media.hpp"

namespace floodgate::audio {

// Times are seconds from the start of the audio (the stream's first timestamp is 0).
struct Silence {
  Seconds start{0};
  Seconds end{0};
  [[nodiscard]] Seconds length() const noexcept { return end - start; }
};

struct EnergyProfile {
  Seconds frame{0.020};
  std::vector<float> rms_dbfs;      // one value per frame; -120 for digital silence
  Seconds decoded_duration{0};      // samples actually decoded / rate
  std::uint64_t decode_errors = 0;  // packets the decoder rejected
};

// Decodes the audio stream chosen by probe() and measures its energy per frame.
[[nodiscard]] AudioResult<EnergyProfile> measure_energy(const std::filesystem::path& path, const AudioInfo& info,
                                                        const SilenceOptions& options = {});

// The silences of a profile, in order, non-overlapping.
[[nodiscard]] std::vector<Silence> find_silences(const EnergyProfile& profile, const SilenceOptions& options = {});

// RMS level of `samples` in dBFS (full scale = 1.0), floored at -120.
[[nodiscard]] float rms_dbfs(std::span<const float> samples) noexcept;

}  // namespace floodgate::audio
