#pragma once
// Probing a file before it is sent: what container and codec it is, how long, how big.
// probe() opens the file with libavformat, picks the best audio stream, and checks the
// tail: it seeks to a little before the declared end and reads the last packets, so a
// file whose header promises more audio than it holds (a truncated MP3 with a Xing
// header, a cut WAV) is reported as corrupt rather than sent. It never decodes the
// whole file; its cost is a few reads at the head and the tail.

#include <filesystem>

#include "floodgate/audio/error.hpp"
#include "floodgate/audio/media.hpp"

namespace floodgate::audio {

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
