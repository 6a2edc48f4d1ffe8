#include "audio/audio_fixture.hpp"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <stdexcept>

namespace floodgate::audio::testing {

namespace {

constexpr double kPauseSeconds = 1.5;
constexpr int kSpeechRate = 22050;
const std::array<const char*, 4> kSentences = {
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Floodgate splits long recordings at the quiet moments between sentences.",
    "Every chunk is sent once and the transcripts come back in order.",
    "This is the last sentence of the test recording.",
};

std::string quote(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

std::string capture(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run: " + command);
  std::array<char, 512> buf{};
  while (std::fgets(buf.data(), buf.size(), pipe) != nullptr) out += buf.data();
  const int rc = ::pclose(pipe);
  if (rc != 0) throw std::runtime_error("command failed (" + std::to_string(rc) + "): " + command + "\n" + out);
  return out;
}

std::filesystem::path tmp_name(const std::filesystem::path& final_path) {
  return final_path.parent_path() /
         (".tmp-" + std::to_string(::getpid()) + "-" + final_path.stem().string() + final_path.extension().string());
}

// The sentences as separate WAVs (mono 22.05 kHz 16-bit).
std::filesystem::path sentence(std::size_t i) {
  const auto path = fixture_dir() / ("sentence-" + std::to_string(i) + ".wav");
  if (std::filesystem::exists(path)) return path;
  const auto tmp = tmp_name(path);
  run("espeak-ng -s 170 -w " + quote(tmp) + " '" + kSentences[i] + "'");
  std::filesystem::rename(tmp, path);
  return path;
}

void generate(const std::string& name, const std::filesystem::path& path) {
  const auto tmp = tmp_name(path);
  const std::string ffmpeg = "ffmpeg -hide_banner -loglevel error -nostdin -y ";
  if (name == "speech.wav") {
    const auto dir = fixture_dir();
    const auto pause = dir / (".pause-" + std::to_string(::getpid()) + ".wav");
    run("sox -n -r " + std::to_string(kSpeechRate) + " -c 1 -b 16 " + quote(pause) + " trim 0 " +
        std::to_string(kPauseSeconds));
    std::string parts;
    for (std::size_t i = 0; i < kSentences.size(); ++i) {
      if (i > 0) parts += quote(pause) + " ";
      parts += quote(sentence(i)) + " ";
    }
    const auto joined = dir / (".joined-" + std::to_string(::getpid()) + ".wav");
    run("sox " + parts + quote(joined));
    // Mix in a quiet noise floor (-60 dBFS) the length of the speech.
    const double len = sox_duration_seconds(joined);
    const auto noise = dir / (".noise-" + std::to_string(::getpid()) + ".wav");
    run("sox -n -r " + std::to_string(kSpeechRate) + " -c 1 -b 16 " + quote(noise) + " synth " +
        std::to_string(len) + " whitenoise vol 0.001");
    run("sox -m " + quote(joined) + " " + quote(noise) + " " + quote(tmp));
    std::filesystem::remove(pause);
    std::filesystem::remove(joined);
    std::filesystem::remove(noise);
  } else if (name == "speech.mp3") {
    run(ffmpeg + "-i " + quote(fixture("speech.wav")) + " -c:a libmp3lame -b:a 64k " + quote(tmp));
  } else if (name == "speech.m4a") {
    run(ffmpeg + "-i " + quote(fixture("speech.wav")) + " -c:a aac -b:a 64k -f ipod " + quote(tmp));
  } else if (name == "speech.ogg") {
    run(ffmpeg + "-i " + quote(fixture("speech.wav")) + " -c:a libvorbis -q:a 3 -f ogg " + quote(tmp));
  } else if (name == "big.wav") {
    // 96 kHz stereo 32-bit: 768 kB per second; the speech twice is about 40 s, 30 MB.
    run("sox " + quote(fixture("speech.wav")) + " -r 96000 -c 2 -b 32 " + quote(tmp) + " repeat 1");
  } else if (name == "tone.wav") {
    run("sox -n -r 16000 -c 1 -b 16 " + quote(tmp) + " synth 30 sine 440 vol 0.5");
  } else if (name == "tone.mp3") {
    run(ffmpeg + "-i " + quote(fixture("tone.wav")) + " -c:a libmp3lame -b:a 32k " + quote(tmp));
  } else if (name == "long.flac") {
    run("sox " + quote(fixture("speech.wav")) + " " + quote(tmp) + " repeat 2");
  } else if (name == "empty.mp3") {
    std::ofstream(tmp, std::ios::binary).flush();
  } else if (name == "truncated.mp3") {
    const auto full = fixture("speech.mp3");
    const auto half = std::filesystem::file_size(full) / 2;
    run("head -c " + std::to_string(half) + " " + quote(full) + " > " + quote(tmp));
  } else if (name == "text.mp3") {
    std::ofstream(tmp) << "This is not audio at all, only a text file with the wrong extension.\n";
  } else {
    throw std::runtime_error("unknown fixture " + name);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace

void run(const std::string& command) { capture(command + " 2>&1"); }

double sox_duration_seconds(const std::filesystem::path& path) {
  return std::stod(capture("soxi -D " + quote(path)));
}

std::filesystem::path fixture_dir() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path d = FLOODGATE_AUDIO_FIXTURE_DIR;
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

std::filesystem::path fixture(const std::string& name) {
  static std::recursive_mutex mutex;
  std::lock_guard lock(mutex);
  const auto path = fixture_dir() / name;
  if (!std::filesystem::exists(path)) generate(name, path);
  return path;
}

std::vector<Silence> speech_pauses() {
  std::vector<Silence> pauses;
  double t = 0;
  for (std::size_t i = 0; i < kSentences.size(); ++i) {
    if (i > 0) {
      pauses.push_back(Silence{Seconds(t), Seconds(t + kPauseSeconds)});
      t += kPauseSeconds;
    }
    t += sox_duration_seconds(sentence(i));
  }
  return pauses;
}

}  // namespace floodgate::audio::testing
