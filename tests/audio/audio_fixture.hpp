#pragma once
// Test audio made at test time with espeak-ng, sox and the ffmpeg CLI (no binary fixtures
// in the repository). Each file is generated on first use into a directory under the
// build tree shared by the test processes of this binary, through a temporary name and an
// atomic rename, so parallel ctest processes never see half a file.
//
// speech.wav is built from known pieces, so the tests know where its pauses are:
//   [sentence 0][pause 1.5 s][sentence 1][pause 1.5 s][sentence 2][pause 1.5 s][sentence 3]
// mixed with white noise at about -60 dBFS (a quiet room, below the -40 dBFS threshold).

#include <filesystem>
#include <string>
#include <vector>

#include "floodgate/audio_media/probe.hpp"
#include "floodgate/audio_media/silence.hpp"

namespace floodgate::audio::testing {

// The fixture directory (created when needed).
std::filesystem::path fixture_dir();

// Path of a generated file; generates it (and what it depends on) when missing.
// Names: speech.wav, speech.mp3, speech.m4a, speech.ogg, big.wav (> 25 MB, 96 kHz stereo
// 32-bit), tone.wav (30 s, 440 Hz, no silence), tone.mp3, empty.mp3 (0 bytes),
// truncated.mp3 (first half of speech.mp3), text.mp3 (a text file), long.flac.
std::filesystem::path fixture(const std::string& name);

// The pauses of speech.wav, in seconds from its start.
std::vector<Silence> speech_pauses();

// Duration of an audio file as sox measures it (an oracle independent of FFmpeg's libs).
double sox_duration_seconds(const std::filesystem::path& path);

// Runs a shell command; throws std::runtime_error with its output on failure.
void run(const std::string& command);

}  // namespace floodgate::audio::testing
