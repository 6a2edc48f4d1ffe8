#include "floodgate/audio_media/silence.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "audio/decode.hpp"

namespace floodgate::audio {

namespace {
constexpr float kFloorDbfs = -120.0F;
}

float rms_dbfs(std::span<const float> samples) noexcept {
  if (samples.empty()) return kFloorDbfs;
  double sum = 0;
  for (float s : samples) sum += static_cast<double>(s) * static_cast<double>(s);
  const double mean = sum / static_cast<double>(samples.size());
  if (mean <= 1e-12) return kFloorDbfs;
  return std::max(kFloorDbfs, static_cast<float>(10.0 * std::log10(mean)));
}

AudioResult<EnergyProfile> measure_energy(const std::filesystem::path& path, const AudioInfo& info,
                                          const SilenceOptions& options) {
  const int rate = options.analysis_rate_hz > 0 ? options.analysis_rate_hz : 8000;
  const auto frame_samples =
      static_cast<std::size_t>(std::max(1.0, std::round(options.frame.count() * static_cast<double>(rate))));
  EnergyProfile profile;
  profile.frame = Seconds(static_cast<double>(frame_samples) / rate);
  if (info.duration.count() > 0) {
    profile.rms_dbfs.reserve(static_cast<std::size_t>(info.duration.count() / profile.frame.count()) + 2);
  }
  std::vector<float> pending;
  pending.reserve(frame_samples);
  auto sink = [&](const std::uint8_t* data, int n) {
    const auto* s = reinterpret_cast<const float*>(data);
    std::size_t i = 0;
    const auto count = static_cast<std::size_t>(n);
    while (i < count) {
      const std::size_t take = std::min(frame_samples - pending.size(), count - i);
      pending.insert(pending.end(), s + i, s + i + take);
      i += take;
      if (pending.size() == frame_samples) {
        profile.rms_dbfs.push_back(rms_dbfs(pending));
        pending.clear();
      }
    }
    return true;
  };
  auto stats = detail::decode_resampled(path, info, 1, AV_SAMPLE_FMT_FLT, rate, sink);
  if (!stats) return stats.error();
  if (!pending.empty()) profile.rms_dbfs.push_back(rms_dbfs(pending));
  profile.decoded_duration = Seconds(static_cast<double>(stats->samples_out) / rate);
  profile.decode_errors = stats->decode_errors;
  if (stats->samples_out == 0) {
    return detail::make_error(AudioErrc::corrupt, path,
                              "no audio could be decoded (" + std::to_string(stats->decode_errors) + " decode errors)");
  }
  return profile;
}

std::vector<Silence> find_silences(const EnergyProfile& profile, const SilenceOptions& options) {
  std::vector<Silence> out;
  const double frame_s = profile.frame.count();
  const double end_s = profile.decoded_duration.count() > 0 ? profile.decoded_duration.count()
                                                            : frame_s * static_cast<double>(profile.rms_dbfs.size());
  std::size_t run_start = 0;
  bool in_run = false;
  auto close_run = [&](std::size_t run_end) {
    const double a = frame_s * static_cast<double>(run_start);
    const double b = std::min(end_s, frame_s * static_cast<double>(run_end));
    if (b - a + 1e-9 >= options.min_silence.count()) out.push_back(Silence{Seconds(a), Seconds(b)});
  };
  for (std::size_t i = 0; i < profile.rms_dbfs.size(); ++i) {
    const bool quiet = profile.rms_dbfs[i] < options.threshold_dbfs;
    if (quiet && !in_run) {
      run_start = i;
      in_run = true;
    } else if (!quiet && in_run) {
      close_run(i);
      in_run = false;
    }
  }
  if (in_run) close_run(profile.rms_dbfs.size());
  return out;
}

}  // namespace floodgate::audio
