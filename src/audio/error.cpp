#include "floodgate/audio/error.hpp"

namespace floodgate::audio {

std::string_view to_string(AudioErrc code) noexcept {
  switch (code) {
    case AudioErrc::not_found: return "not_found";
    case AudioErrc::unreadable: return "unreadable";
    case AudioErrc::empty: return "empty";
    case AudioErrc::not_audio: return "not_audio";
    case AudioErrc::corrupt: return "corrupt";
    case AudioErrc::unsupported: return "unsupported";
    case AudioErrc::write_failed: return "write_failed";
    case AudioErrc::internal: return "internal";
  }
  return "internal";
}

}  // namespace floodgate::audio
