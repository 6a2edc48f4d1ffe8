#include <gtest/gtest.h>

#include <vector>

#include "floodgate/audio_media/split.hpp"

namespace floodgate::audio {
namespace {

Silence sil(double a, double b) { return Silence{Seconds(a), Seconds(b)}; }

TEST(PlanCuts, NoCutWhenTheFileFits) {
  EXPECT_TRUE(plan_cuts(Seconds(600), {}, Seconds(600)).empty());
  EXPECT_TRUE(plan_cuts(Seconds(10), {}, Seconds(600)).empty());
  EXPECT_EQ(plan_cuts(Seconds(600.5), {}, Seconds(600)).size(), 1U);
}

TEST(PlanCuts, WithoutSilenceCutsAtExactlyTheTarget) {
  const auto cuts = plan_cuts(Seconds(35), {}, Seconds(10));
  ASSERT_EQ(cuts.size(), 3U);
  for (std::size_t i = 0; i < cuts.size(); ++i) {
    EXPECT_DOUBLE_EQ(cuts[i].at.count(), 10.0 * static_cast<double>(i + 1));
    EXPECT_FALSE(cuts[i].in_silence);
  }
}

TEST(PlanCuts, CutsInTheMiddleOfASilenceInTheWindow) {
  // target 100, window [75, 100]
  const std::vector<Silence> s = {sil(40, 45), sil(80, 82), sil(150, 151)};
  const auto cuts = plan_cuts(Seconds(160), s, Seconds(100));
  ASSERT_EQ(cuts.size(), 1U);  // 81 -> 160 is 79 s, fits
  EXPECT_DOUBLE_EQ(cuts[0].at.count(), 81.0);
  EXPECT_TRUE(cuts[0].in_silence);
}

TEST(PlanCuts, PrefersTheLongestSilenceAndClipsToTheWindow) {
  const std::vector<Silence> s = {sil(70, 78), sil(85, 86), sil(90, 93), sil(99, 110)};
  // In-window parts: [75,78]=3, [85,86]=1, [90,93]=3 (tie: the later wins), [99,100]=1
  const auto cuts = plan_cuts(Seconds(150), s, Seconds(100));
  ASSERT_EQ(cuts.size(), 1U);
  EXPECT_DOUBLE_EQ(cuts[0].at.count(), 91.5);
}

TEST(PlanCuts, SilenceBeforeTheWindowIsIgnored) {
  const std::vector<Silence> s = {sil(10, 70)};
  const auto cuts = plan_cuts(Seconds(150), s, Seconds(100));
  ASSERT_EQ(cuts.size(), 1U);
  EXPECT_DOUBLE_EQ(cuts[0].at.count(), 100.0);
  EXPECT_FALSE(cuts[0].in_silence);
}

TEST(PlanCuts, EveryChunkWithinTargetAndCutsIncreasing) {
  std::vector<Silence> s;
  for (int i = 0; i < 500; ++i) s.push_back(sil(i * 13.7 + 5, i * 13.7 + 5.6));
  const double total = 500 * 13.7;
  for (double target : {30.0, 61.0, 600.0}) {
    const auto cuts = plan_cuts(Seconds(total), s, Seconds(target));
    double prev = 0;
    for (const Cut& c : cuts) {
      EXPECT_GT(c.at.count(), prev);
      EXPECT_LE(c.at.count() - prev, target + 1e-9);
      EXPECT_GE(c.at.count() - prev, 0.75 * target - 1e-9);
      if (0.25 * target >= 13.7) {
        EXPECT_TRUE(c.in_silence);  // the window always holds one
      }
      prev = c.at.count();
    }
    EXPECT_LE(total - prev, target + 1e-9);
  }
}

TEST(TargetChunkLength, BoundedByTheByteLimit) {
  AudioInfo info;
  info.duration = Seconds(1000);
  info.size_bytes = 100'000'000;  // 100 kB/s
  SplitOptions o;
  EXPECT_DOUBLE_EQ(target_chunk_length(info, o).count(), 240.0);  // 24 MB / 100 kB/s
  o.max_chunk = Seconds(120);
  EXPECT_DOUBLE_EQ(target_chunk_length(info, o).count(), 120.0);
  EXPECT_TRUE(needs_split(info, o));
  info.size_bytes = 1000;
  info.duration = Seconds(119);
  EXPECT_FALSE(needs_split(info, o));
  info.duration = Seconds(121);
  EXPECT_TRUE(needs_split(info, o));
}

}  // namespace
}  // namespace floodgate::audio
