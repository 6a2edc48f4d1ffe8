#include "sim/audio_info.hpp"

#include <algorithm>
#include <optional>

namespace floodgate::sim {
namespace {

std::uint32_t le32(std::string_view s, std::size_t at) {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(s[at])) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 1])) << 8) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 2])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 3])) << 24);
}

std::optional<double> wav_duration(std::string_view h, std::uint64_t total) {
  if (h.size() < 12 || h.substr(0, 4) != "RIFF" || h.substr(8, 4) != "WAVE") return std::nullopt;
  std::size_t at = 12;
  std::uint32_t byte_rate = 0;
  while (at + 8 <= h.size()) {
    const std::string_view id = h.substr(at, 4);
    const std::uint32_t size = le32(h, at + 4);
    if (id == "fmt " && at + 8 + 16 <= h.size()) {
      byte_rate = le32(h, at + 8 + 8);
    } else if (id == "data") {
      if (byte_rate == 0) return std::nullopt;
      std::uint64_t data_bytes = size;
      const std::uint64_t present = total > at + 8 ? total - (at + 8) : 0;
      if (size == 0xffffffffu || size == 0 || data_bytes > present) data_bytes = present;  // streamed WAV
      return static_cast<double>(data_bytes) / byte_rate;
    }
    at += 8 + static_cast<std::size_t>(size) + (size & 1);
  }
  return std::nullopt;
}

std::optional<double> mp3_duration(std::string_view h, std::uint64_t total) {
  std::size_t at = 0;
  if (h.size() >= 10 && h.substr(0, 3) == "ID3") {
    const auto b = [&](std::size_t i) { return static_cast<std::size_t>(static_cast<unsigned char>(h[i]) & 0x7f); };
    at = 10 + ((b(6) << 21) | (b(7) << 14) | (b(8) << 7) | b(9));
  }
  // Find the first frame sync within the head.
  for (; at + 4 <= h.size(); ++at) {
    const auto b0 = static_cast<unsigned char>(h[at]);
    const auto b1 = static_cast<unsigned char>(h[at + 1]);
    if (b0 != 0xff || (b1 & 0xe0) != 0xe0) continue;
    const int version = (b1 >> 3) & 3;  // 3 = MPEG1, 2 = MPEG2, 0 = MPEG2.5
    const int layer = (b1 >> 1) & 3;    // 1 = layer III
    const auto b2 = static_cast<unsigned char>(h[at + 2]);
    const int index = (b2 >> 4) & 0xf;
    if (version == 1 || layer != 1 || index == 0 || index == 15) continue;
    static constexpr int kMpeg1[] = {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320};
    static constexpr int kMpeg2[] = {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160};
    const int kbps = version == 3 ? kMpeg1[index] : kMpeg2[index];
    const std::uint64_t audio = total > at ? total - at : 0;
    return static_cast<double>(audio) * 8.0 / (kbps * 1000.0);
  }
  return std::nullopt;
}

}  // namespace

void AudioSniffer::feed(std::string_view data) {
  total_ += data.size();
  if (head_.size() < kHeadBytes) head_.append(data.substr(0, std::min(data.size(), kHeadBytes - head_.size())));
}

double AudioSniffer::duration_seconds(std::string* method) const {
  if (const auto wav = wav_duration(head_, total_)) {
    if (method != nullptr) *method = "wav";
    return *wav;
  }
  if (const auto mp3 = mp3_duration(head_, total_)) {
    if (method != nullptr) *method = "mp3";
    return *mp3;
  }
  if (method != nullptr) *method = "estimate";
  return static_cast<double>(total_) / 16000.0;
}

}  // namespace floodgate::sim
