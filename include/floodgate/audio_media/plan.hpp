#pragma once
// Planning one input of a transcription job (floodgate::audio_media, FFmpeg): probe it
// and, when it is too large or too long for one request, split it at silences into
// `chunk_dir`. Files shorter than `min_seconds` are only probed (the job skips them).
// The helper program `floodgate-audio plan` runs this for every file of a job and prints
// plan_to_json() lines (job.hpp), so the process that uploads never loads FFmpeg.

#include <cstddef>
#include <filesystem>

#include "floodgate/audio/job.hpp"
#include "floodgate/audio_media/split.hpp"

namespace floodgate::audio {

[[nodiscard]] FilePlan plan_file(std::size_t index, const std::filesystem::path& input, const SplitOptions& options,
                                 const std::filesystem::path& chunk_dir, Seconds min_seconds = Seconds(0));

}  // namespace floodgate::audio
