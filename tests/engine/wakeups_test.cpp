// Wakeups (src/engine/wakeups.hpp): what other threads hand the engine's loop. The rule under
// test: the pipe is readable exactly while something is pending, so the loop's wait neither
// misses a request nor returns at once for nothing (a byte left behind would make it spin).
#include "engine/wakeups.hpp"

#include <poll.h>

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace floodgate::engine {
namespace {

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

TEST(Wakeups, NothingPendingMeansNothingTakenAndAQuietFd) {
  Wakeups w;
  int stops = 0;
  std::vector<std::string> cancels;
  EXPECT_FALSE(w.take(stops, cancels));
  EXPECT_FALSE(readable(w.fd()));
}

TEST(Wakeups, ACancelWakesTheLoopOnceAndIsTakenOnce) {
  Wakeups w;
  w.cancel("a");
  w.cancel("b");
  EXPECT_TRUE(readable(w.fd()));
  int stops = 0;
  std::vector<std::string> cancels;
  ASSERT_TRUE(w.take(stops, cancels));
  EXPECT_EQ(cancels, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(stops, 0);
  EXPECT_FALSE(readable(w.fd()));  // drained: the loop's next wait blocks
  cancels.clear();
  EXPECT_FALSE(w.take(stops, cancels));
  EXPECT_TRUE(cancels.empty());
  // Broken by: a drain that leaves the byte (the fd stays readable) or a take that hands
  // the same ids twice.
}

TEST(Wakeups, StopRequestsCountUpAndStayPending) {
  Wakeups w;
  w.request_stop();
  w.request_stop();
  int stops = 0;
  std::vector<std::string> cancels;
  ASSERT_TRUE(w.take(stops, cancels));
  EXPECT_EQ(stops, 2);
  EXPECT_FALSE(readable(w.fd()));
  ASSERT_TRUE(w.take(stops, cancels));  // a stop is for good: seen at every turn
  EXPECT_EQ(stops, 2);
}

TEST(Wakeups, EveryCancelFromRacingThreadsIsTakenAndNoByteIsLeftBehind) {
  Wakeups w;
  constexpr int kThreads = 4;
  constexpr int kEach = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&w, t] {
      for (int i = 0; i < kEach; ++i) w.cancel(std::to_string(t) + "-" + std::to_string(i));
    });
  }
  std::size_t taken = 0;
  int stops = 0;
  std::vector<std::string> cancels;
  // The loop's side, as the engine does it: take while the others write (bounded).
  for (int turn = 0; turn < 10'000'000 && taken < kThreads * kEach; ++turn) {
    cancels.clear();
    if (w.take(stops, cancels)) taken += cancels.size();
  }
  for (auto& t : threads) t.join();
  cancels.clear();
  if (w.take(stops, cancels)) taken += cancels.size();
  EXPECT_EQ(taken, static_cast<std::size_t>(kThreads * kEach));
  EXPECT_FALSE(readable(w.fd()));
}

}  // namespace
}  // namespace floodgate::engine
