#pragma once
// Errors of the audio component are values, never exceptions: a file that is not audio,
// is empty or corrupt is an ordinary outcome of a job with thousands of files. An
// AudioResult<T> holds either the value or an AudioError whose message is one sentence
// that names the file's problem (and the FFmpeg reason where there is one).

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace floodgate::audio {

enum class AudioErrc {
  not_found,     // the path does not exist
  unreadable,    // exists but cannot be opened (permissions, a directory ...)
  empty,         // zero bytes, or no audio samples at all
  not_audio,     // no known container, or a container without an audio stream
  corrupt,       // a known container whose data is broken or truncated
  unsupported,   // audio we can read but cannot split (no muxer and no encoder)
  write_failed,  // writing a chunk failed (disk full, permissions)
  internal,      // an FFmpeg call failed where it should not
};

[[nodiscard]] std::string_view to_string(AudioErrc code) noexcept;

struct AudioError {
  AudioErrc code = AudioErrc::internal;
  std::string message;
};

// Either a T or an AudioError, in the manner of simdjson_result<T>.
template <class T>
class AudioResult {
 public:
  AudioResult(T value) : v_(std::move(value)) {}             // NOLINT(google-explicit-constructor)
  AudioResult(AudioError error) : v_(std::move(error)) {}    // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  [[nodiscard]] T& value() & { return std::get<0>(v_); }
  [[nodiscard]] const T& value() const& { return std::get<0>(v_); }
  [[nodiscard]] T&& value() && { return std::get<0>(std::move(v_)); }
  [[nodiscard]] const AudioError& error() const& { return std::get<1>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, AudioError> v_;
};

}  // namespace floodgate::audio
