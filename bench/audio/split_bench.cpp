// Throughput of splitting long audio: seconds of audio processed per second of CPU for
// each stage (probe, silence detection, remux of every chunk), measured with
// getrusage(RUSAGE_SELF) around each stage. Prints one JSON object.
//
//   split_bench FILE [--max-chunk-seconds 600] [--reencode] [--repetitions 3]
//
// The best of the repetitions is reported (the least disturbed by other processes).

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "floodgate/audio/chunk_dir.hpp"
#include "floodgate/audio_media/probe.hpp"
#include "floodgate/audio_media/silence.hpp"
#include "floodgate/audio_media/split.hpp"

namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "split_bench: %s\n", what.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace floodgate::audio;
  if (argc < 2) fail("usage: split_bench FILE [--max-chunk-seconds N] [--reencode] [--repetitions N]");
  const std::filesystem::path input = argv[1];
  SplitOptions options;
  int repetitions = 3;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--max-chunk-seconds") == 0 && i + 1 < argc) {
      options.max_chunk = Seconds(std::atof(argv[++i]));
    } else if (std::strcmp(argv[i], "--reencode") == 0) {
      options.mode = ChunkMode::reencode;
    } else if (std::strcmp(argv[i], "--repetitions") == 0 && i + 1 < argc) {
      repetitions = std::max(1, std::atoi(argv[++i]));
    } else {
      fail(std::string("unknown argument ") + argv[i]);
    }
  }

  double best_probe = 1e300;
  double best_silence = 1e300;
  double best_write = 1e300;
  AudioInfo info;
  std::size_t chunks = 0;
  std::size_t cuts_in_silence = 0;
  std::size_t silences = 0;
  for (int rep = 0; rep < repetitions; ++rep) {
    double t0 = cpu_seconds();
    auto probed = probe(input);
    if (!probed) fail(probed.error().message);
    info = *probed;
    double t1 = cpu_seconds();
    auto profile = measure_energy(input, info, options.silence);
    if (!profile) fail(profile.error().message);
    const auto found = find_silences(*profile, options.silence);
    const auto cuts = plan_cuts(profile->decoded_duration, found, target_chunk_length(info, options),
                                options.search_fraction);
    double t2 = cpu_seconds();
    auto dir = ChunkDir::create(std::filesystem::temp_directory_path() / "floodgate-split-bench");
    if (!dir) fail(dir.error().message);
    auto written = write_chunks(input, info, cuts, dir->path(), options.mode);
    if (!written) fail(written.error().message);
    double t3 = cpu_seconds();
    best_probe = std::min(best_probe, t1 - t0);
    best_silence = std::min(best_silence, t2 - t1);
    best_write = std::min(best_write, t3 - t2);
    chunks = written->size();
    silences = found.size();
    cuts_in_silence = static_cast<std::size_t>(std::count_if(cuts.begin(), cuts.end(), [](const Cut& c) { return c.in_silence; }));
  }
  const double audio_s = info.duration.count();
  std::printf(
      "{\"file\":\"%s\",\"container\":\"%s\",\"codec\":\"%s\",\"audio_seconds\":%.1f,\"size_bytes\":%llu,"
      "\"chunks\":%zu,\"cuts_in_silence\":%zu,\"silences\":%zu,\"mode\":\"%s\","
      "\"cpu_seconds\":{\"probe\":%.4f,\"silence_detection\":%.3f,\"write_chunks\":%.3f},"
      "\"audio_seconds_per_cpu_second\":{\"silence_detection\":%.0f,\"write_chunks\":%.0f,\"total\":%.0f}}\n",
      input.filename().c_str(), info.container.c_str(), info.codec.c_str(), audio_s,
      static_cast<unsigned long long>(info.size_bytes), chunks, cuts_in_silence, silences,
      options.mode == ChunkMode::reencode ? "reencode" : "remux", best_probe, best_silence, best_write,
      audio_s / std::max(best_silence, 1e-9), audio_s / std::max(best_write, 1e-9),
      audio_s / std::max(best_probe + best_silence + best_write, 1e-9));
  return 0;
}
