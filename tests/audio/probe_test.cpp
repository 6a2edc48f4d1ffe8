#include "floodgate/audio_media/probe.hpp"

#include <gtest/gtest.h>

#include "audio/audio_fixture.hpp"

namespace floodgate::audio {
namespace {

using testing::fixture;
using testing::sox_duration_seconds;

TEST(Probe, WavReportsContainerCodecDurationAndSize) {
  const auto path = fixture("speech.wav");
  const auto info = probe(path);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->container, "wav");
  EXPECT_EQ(info->codec, "pcm_s16le");
  EXPECT_EQ(info->sample_rate_hz, 22050);
  EXPECT_EQ(info->channels, 1);
  EXPECT_EQ(info->size_bytes, std::filesystem::file_size(path));
  EXPECT_NEAR(info->duration.count(), sox_duration_seconds(path), 0.01);
  EXPECT_GT(info->duration.count(), 10.0);
}

TEST(Probe, CompressedFormats) {
  struct Case {
    const char* name;
    const char* container;
    const char* codec;
  };
  for (const Case& c : {Case{"speech.mp3", "mp3", "mp3"}, Case{"speech.m4a", "mov,mp4,m4a,3gp,3g2,mj2", "aac"},
                        Case{"speech.ogg", "ogg", "vorbis"}}) {
    SCOPED_TRACE(c.name);
    const auto info = probe(fixture(c.name));
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(info->container, c.container);
    EXPECT_EQ(info->codec, c.codec);
    EXPECT_EQ(info->channels, 1);
    EXPECT_GT(info->bit_rate, 0);
    EXPECT_NEAR(info->duration.count(), sox_duration_seconds(fixture("speech.wav")), 0.1);
  }
}

TEST(Probe, EmptyFileIsAnErrorValue) {
  const auto info = probe(fixture("empty.mp3"));
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, AudioErrc::empty);
  EXPECT_NE(info.error().message.find("empty.mp3"), std::string::npos) << info.error().message;
}

TEST(Probe, TextRenamedMp3IsNotAudio) {
  const auto info = probe(fixture("text.mp3"));
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, AudioErrc::not_audio) << info.error().message;
  EXPECT_NE(info.error().message.find("not a recognised audio file"), std::string::npos) << info.error().message;
}

TEST(Probe, TruncatedMp3IsCorrupt) {
  const auto info = probe(fixture("truncated.mp3"));
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, AudioErrc::corrupt) << info.error().message;
  EXPECT_NE(info.error().message.find("truncated"), std::string::npos) << info.error().message;
}

TEST(Probe, TruncatedWavIsCorrupt) {
  const auto src = fixture("speech.wav");
  const auto cut = testing::fixture_dir() / "truncated-probe-test.wav";
  testing::run("head -c " + std::to_string(std::filesystem::file_size(src) / 2) + " '" + src.string() + "' > '" +
               cut.string() + "'");
  const auto info = probe(cut);
  std::filesystem::remove(cut);
  // A WAV's header declares its data size; half the data is missing.
  ASSERT_FALSE(info.ok()) << "duration " << info->duration.count();
  EXPECT_EQ(info.error().code, AudioErrc::corrupt) << info.error().message;
}

TEST(Probe, MissingFileAndDirectory) {
  const auto missing = probe(testing::fixture_dir() / "does-not-exist.mp3");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, AudioErrc::not_found);
  const auto dir = probe(testing::fixture_dir());
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().code, AudioErrc::unreadable);
}

TEST(Probe, TailCheckCanBeSkipped) {
  ProbeOptions options;
  options.check_tail = false;
  const auto info = probe(fixture("truncated.mp3"), options);
  // Without the tail check the header is believed: the point of the check.
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_GT(info->duration.count(), 10.0);
}

}  // namespace
}  // namespace floodgate::audio
