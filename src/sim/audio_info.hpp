#pragma once
// Duration of an uploaded audio file, learned from its first bytes as they stream by.
//  - WAV: the RIFF header is parsed exactly: data chunk size / (sample rate × block align).
//  - MP3: the first MPEG audio frame header (after an ID3v2 tag, if any) gives the bit
//    rate; duration = file bytes × 8 / bit rate (exact for constant bit rate files).
//  - anything else: estimated from the size at 128 kbit/s (16,000 bytes per second).

#include <cstdint>
#include <string>
#include <string_view>

namespace floodgate::sim {

class AudioSniffer {
 public:
  static constexpr std::size_t kHeadBytes = 64 * 1024;
  void feed(std::string_view data);
  [[nodiscard]] std::uint64_t total_bytes() const noexcept { return total_; }
  // Seconds of audio; `method` is set to "wav", "mp3" or "estimate".
  [[nodiscard]] double duration_seconds(std::string* method = nullptr) const;

 private:
  std::string head_;  // the first kHeadBytes bytes
  std::uint64_t total_ = 0;
};

}  // namespace floodgate::sim
