#include "floodgate/audio_media/silence.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "audio/audio_fixture.hpp"

namespace floodgate::audio {
namespace {

TEST(RmsDbfs, FullScaleSineIsMinus3AndZeroIsTheFloor) {
  std::vector<float> sine(8000);
  for (std::size_t i = 0; i < sine.size(); ++i) {
    sine[i] = static_cast<float>(std::sin(2 * std::numbers::pi * 440.0 * static_cast<double>(i) / 8000.0));
  }
  EXPECT_NEAR(rms_dbfs(sine), -3.01, 0.05);
  std::vector<float> half(sine);
  for (float& s : half) s *= 0.5F;
  EXPECT_NEAR(rms_dbfs(half), -9.03, 0.05);
  EXPECT_EQ(rms_dbfs(std::vector<float>(100, 0.0F)), -120.0F);
  EXPECT_EQ(rms_dbfs({}), -120.0F);
}

EnergyProfile profile_of(const std::vector<float>& levels) {
  EnergyProfile p;
  p.frame = Seconds(0.1);
  p.rms_dbfs = levels;
  p.decoded_duration = Seconds(0.1 * static_cast<double>(levels.size()));
  return p;
}

TEST(FindSilences, RunsBelowThresholdAtLeastMinLength) {
  SilenceOptions o;
  o.threshold_dbfs = -40;
  o.min_silence = Seconds(0.3);
  //                       0    1    2    3    4    5    6    7    8    9   10   11
  const auto p = profile_of({-20, -50, -50, -20, -60, -60, -60, -20, -45, -45, -45, -45});
  const auto s = find_silences(p, o);
  ASSERT_EQ(s.size(), 2U);  // the 0.2 s run at frame 1 is too short
  EXPECT_NEAR(s[0].start.count(), 0.4, 1e-9);
  EXPECT_NEAR(s[0].end.count(), 0.7, 1e-9);
  EXPECT_NEAR(s[1].start.count(), 0.8, 1e-9);  // a trailing run is closed at the end
  EXPECT_NEAR(s[1].end.count(), 1.2, 1e-9);
}

TEST(FindSilences, ThresholdIsStrict) {
  SilenceOptions o;
  o.threshold_dbfs = -40;
  o.min_silence = Seconds(0.1);
  EXPECT_TRUE(find_silences(profile_of({-40, -40, -40}), o).empty());
  EXPECT_EQ(find_silences(profile_of({-40.01F, -40, -40}), o).size(), 1U);
}

TEST(FindSilences, NothingInALoudSignal) {
  EXPECT_TRUE(find_silences(profile_of(std::vector<float>(100, -6.0F))).empty());
  EXPECT_TRUE(find_silences(profile_of({})).empty());
}

TEST(MeasureEnergy, FindsThePausesOfTheSpeechRecording) {
  const auto path = testing::fixture("speech.wav");
  const auto info = probe(path);
  ASSERT_TRUE(info.ok()) << info.error().message;
  const auto profile = measure_energy(path, *info);
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  EXPECT_NEAR(profile->decoded_duration.count(), info->duration.count(), 0.01);
  EXPECT_EQ(profile->decode_errors, 0U);
  const auto found = find_silences(*profile);
  const auto pauses = testing::speech_pauses();
  ASSERT_EQ(pauses.size(), 3U);
  // Each pause we inserted is covered by a detected silence.
  for (const Silence& pause : pauses) {
    bool covered = false;
    for (const Silence& s : found) {
      covered = covered || (s.start.count() <= pause.start.count() + 0.05 && s.end.count() >= pause.end.count() - 0.05);
    }
    EXPECT_TRUE(covered) << "pause at " << pause.start.count();
  }
  // And speech is not silence: the detected silences cover well under half the file.
  double silent = 0;
  for (const Silence& s : found) silent += s.length().count();
  EXPECT_LT(silent, 0.5 * info->duration.count());
}

TEST(MeasureEnergy, ToneHasNoSilenceAndCompressedSpeechKeepsItsPauses) {
  const auto tone = testing::fixture("tone.wav");
  const auto tone_info = probe(tone);
  ASSERT_TRUE(tone_info.ok());
  const auto tone_profile = measure_energy(tone, *tone_info);
  ASSERT_TRUE(tone_profile.ok());
  EXPECT_TRUE(find_silences(*tone_profile).empty());

  const auto mp3 = testing::fixture("speech.mp3");
  const auto mp3_info = probe(mp3);
  ASSERT_TRUE(mp3_info.ok());
  const auto mp3_profile = measure_energy(mp3, *mp3_info);
  ASSERT_TRUE(mp3_profile.ok());
  EXPECT_GE(find_silences(*mp3_profile).size(), 3U);
}

}  // namespace
}  // namespace floodgate::audio
