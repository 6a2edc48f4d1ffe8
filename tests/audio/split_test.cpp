#include "floodgate/audio_media/split.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "audio/audio_fixture.hpp"
#include "floodgate/audio/chunk_dir.hpp"

namespace floodgate::audio {
namespace {

// Documented tolerances (docs/audio.md): a remuxed cut is off the plan by at most one
// packet; the chunks are contiguous exactly; their lengths add up to the original's within
// the codec's priming and padding (under 0.1 s, whatever the number of chunks).
constexpr double kPerChunkTolerance = 0.05;
constexpr double kTotalTolerance = 0.1;

struct Split {
  AudioInfo info;
  SplitResult result;
};

class SplitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = ChunkDir::create(::testing::TempDir() + "/floodgate-split-test");
    ASSERT_TRUE(d.ok()) << d.error().message;
    dir_.emplace(std::move(d.value()));
  }

  Split split(const std::string& name, SplitOptions options) {
    Split s;
    const auto info = probe(testing::fixture(name));
    EXPECT_TRUE(info.ok()) << info.error().message;
    if (!info.ok()) return s;
    s.info = *info;
    auto r = split_audio(testing::fixture(name), s.info, dir_->path(), options);
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (r.ok()) s.result = std::move(r.value());
    return s;
  }

  // Chunks are contiguous (no gap, no overlap), their durations add up to the original,
  // and each chunk file, probed on its own, is as long as the splitter says.
  static void expect_partition(const Split& s, double tolerance, double total_tolerance = kTotalTolerance) {
    const auto& chunks = s.result.chunks;
    ASSERT_EQ(chunks.size(), s.result.cuts.size() + 1);
    double sum = 0;
    double probed_sum = 0;
    EXPECT_NEAR(chunks.front().offset.count(), 0.0, total_tolerance);
    EXPECT_LE(chunks.front().offset.count(), 0.0);
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      SCOPED_TRACE("chunk " + std::to_string(i));
      EXPECT_EQ(chunks[i].index, i);
      EXPECT_TRUE(std::filesystem::exists(chunks[i].path));
      EXPECT_EQ(chunks[i].size_bytes, std::filesystem::file_size(chunks[i].path));
      if (i + 1 < chunks.size()) {
        EXPECT_NEAR(chunks[i].offset.count() + chunks[i].duration.count(), chunks[i + 1].offset.count(), 1e-6);
        // The cut lands within one packet of the plan.
        EXPECT_NEAR(chunks[i + 1].offset.count(), s.result.cuts[i].at.count(), tolerance);
      }
      sum += chunks[i].duration.count();
      const auto probed = probe(chunks[i].path);
      ASSERT_TRUE(probed.ok()) << probed.error().message;
      EXPECT_NEAR(probed->duration.count(), chunks[i].duration.count(), tolerance);
      probed_sum += probed->duration.count();
    }
    EXPECT_NEAR(sum, s.info.duration.count(), total_tolerance);
    EXPECT_NEAR(probed_sum, sum, tolerance * static_cast<double>(chunks.size()));
  }

  std::optional<ChunkDir> dir_;
};

SplitOptions short_chunks(double seconds) {
  SplitOptions o;
  o.max_chunk = Seconds(seconds);
  o.search_fraction = 0.5;
  return o;
}

TEST_F(SplitTest, WavSpeechIsCutInItsPauses) {
  const Split s = split("speech.wav", short_chunks(8));
  ASSERT_GE(s.result.chunks.size(), 2U);
  EXPECT_FALSE(s.result.reencoded);
  expect_partition(s, 0.001, 0.001);  // PCM is cut at the exact sample
  const auto pauses = testing::speech_pauses();
  for (std::size_t i = 0; i < s.result.cuts.size(); ++i) {
    const double at = s.result.chunks[i + 1].offset.count();
    bool in_pause = false;
    for (const Silence& p : pauses) in_pause = in_pause || (at > p.start.count() && at < p.end.count());
    EXPECT_TRUE(s.result.cuts[i].in_silence);
    EXPECT_TRUE(in_pause) << "cut at " << at;
    EXPECT_LE(s.result.chunks[i].duration.count(), 8.0 + 1e-6);
    EXPECT_EQ(s.result.chunks[i].path.extension(), ".wav");
  }
}

TEST_F(SplitTest, CompressedFormatsAreRemuxed) {
  struct Case {
    const char* name;
    const char* extension;
  };
  for (const Case& c : {Case{"speech.mp3", ".mp3"}, Case{"speech.m4a", ".m4a"}, Case{"speech.ogg", ".ogg"}}) {
    SCOPED_TRACE(c.name);
    const Split s = split(c.name, short_chunks(8));
    ASSERT_GE(s.result.chunks.size(), 2U);
    EXPECT_FALSE(s.result.reencoded);
    for (const Chunk& chunk : s.result.chunks) EXPECT_EQ(chunk.path.extension(), c.extension);
    expect_partition(s, kPerChunkTolerance);
    for (const Cut& cut : s.result.cuts) EXPECT_TRUE(cut.in_silence);
    for (const Chunk& chunk : s.result.chunks) std::filesystem::remove(chunk.path);
  }
}

TEST_F(SplitTest, WavAbove25MBIsSplitUnderTheLimit) {
  const auto path = testing::fixture("big.wav");
  ASSERT_GT(std::filesystem::file_size(path), kApiFileLimitBytes);
  SplitOptions o;  // defaults: 600 s, 24 MB
  const Split s = split("big.wav", o);
  EXPECT_TRUE(needs_split(s.info, o));
  ASSERT_GE(s.result.chunks.size(), 2U);
  for (const Chunk& c : s.result.chunks) EXPECT_LE(c.size_bytes, o.max_chunk_bytes);
  expect_partition(s, 0.001, 0.001);
}

TEST_F(SplitTest, NoSilenceIsCutAtTheTargetLength) {
  for (const char* name : {"tone.wav", "tone.mp3"}) {
    SCOPED_TRACE(name);
    const Split s = split(name, short_chunks(10));
    ASSERT_EQ(s.result.cuts.size(), 2U);
    EXPECT_TRUE(s.result.silences.empty());
    for (std::size_t i = 0; i < s.result.cuts.size(); ++i) {
      EXPECT_FALSE(s.result.cuts[i].in_silence);
      EXPECT_NEAR(s.result.cuts[i].at.count(), 10.0 * static_cast<double>(i + 1), 1e-9);
      EXPECT_NEAR(s.result.chunks[i + 1].offset.count(), 10.0 * static_cast<double>(i + 1), 0.03);
    }
    expect_partition(s, kPerChunkTolerance);
    for (const Chunk& chunk : s.result.chunks) std::filesystem::remove(chunk.path);
  }
}

TEST_F(SplitTest, ReencodeCutsAtTheExactSample) {
  SplitOptions o = short_chunks(8);
  o.mode = ChunkMode::reencode;
  const Split s = split("speech.mp3", o);
  EXPECT_TRUE(s.result.reencoded);
  ASSERT_GE(s.result.chunks.size(), 2U);
  for (std::size_t i = 0; i < s.result.cuts.size(); ++i) {
    EXPECT_NEAR(s.result.chunks[i + 1].offset.count(), s.result.cuts[i].at.count(), 1.0 / 16000);
  }
  for (const Chunk& c : s.result.chunks) {
    EXPECT_EQ(c.path.extension(), ".flac");
    const auto info = probe(c.path);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(info->sample_rate_hz, 16000);
    EXPECT_EQ(info->channels, 1);
  }
  expect_partition(s, kPerChunkTolerance);
}

TEST_F(SplitTest, FlacIsRemuxed) {
  const Split s = split("long.flac", short_chunks(20));
  EXPECT_FALSE(s.result.reencoded);
  ASSERT_GE(s.result.chunks.size(), 3U);
  // sox writes FLAC frames of 4608 samples (0.21 s at 22.05 kHz): a packet goes to the
  // chunk its middle falls in, so a cut is off the plan by at most half of one.
  expect_partition(s, 0.5 * 4608 / 22050.0 + 1e-6);
}

}  // namespace
}  // namespace floodgate::audio
