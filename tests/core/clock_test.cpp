#include "floodgate/core/clock.hpp"

#include <chrono>

#include <gtest/gtest.h>

namespace floodgate {
namespace {

using namespace std::chrono_literals;

TEST(ManualClock, TheCalendarMovesWithTheMonotonicClock) {
  ManualClock clock;
  const auto wall0 = clock.wall_now();
  EXPECT_EQ(wall0, ManualClock::kDefaultWallStart);
  clock.advance(90s);
  EXPECT_EQ(clock.wall_now() - wall0, 90s);
  clock.advance(250ms);
  EXPECT_EQ(clock.wall_now() - wall0, 90250ms);
}

TEST(ManualClock, TheCalendarCanStartAnywhere) {
  const std::chrono::system_clock::time_point wall{std::chrono::seconds(1'000'000'000)};
  ManualClock clock(TimePoint{} + 5h, wall);
  EXPECT_EQ(clock.wall_now(), wall);
  clock.set(TimePoint{} + 6h);
  EXPECT_EQ(clock.wall_now(), wall + 1h);
}

}  // namespace
}  // namespace floodgate
