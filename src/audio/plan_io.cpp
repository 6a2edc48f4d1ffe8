#include "floodgate/audio_media/plan.hpp"

#include "floodgate/audio_media/probe.hpp"

namespace floodgate::audio {

FilePlan plan_file(std::size_t index, const std::filesystem::path& input, const SplitOptions& options,
                   const std::filesystem::path& chunk_dir, Seconds min_seconds) {
  FilePlan plan;
  plan.index = index;
  auto info = probe(input);
  if (!info) {
    plan.error = info.error();
    return plan;
  }
  plan.info = *info;
  if (info->duration < min_seconds || !needs_split(*info, options)) return plan;
  std::error_code ec;
  std::filesystem::create_directories(chunk_dir, ec);
  if (ec) {
    plan.error = AudioError{AudioErrc::write_failed, "cannot create " + chunk_dir.string() + ": " + ec.message()};
    return plan;
  }
  auto result = split_audio(input, *info, chunk_dir, options);
  if (!result) {
    plan.error = result.error();
    std::filesystem::remove_all(chunk_dir, ec);
    return plan;
  }
  plan.split = true;
  plan.chunks = std::move(result->chunks);
  return plan;
}

}  // namespace floodgate::audio
