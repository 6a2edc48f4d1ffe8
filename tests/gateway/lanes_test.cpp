#include "floodgate/gateway/lanes.hpp"

#include <gtest/gtest.h>

#include "floodgate/core/error.hpp"

using namespace std::chrono_literals;
using floodgate::ManualClock;
using floodgate::TimePoint;
using namespace floodgate::gateway;

namespace {

constexpr std::size_t kInteractive = 0;
constexpr std::size_t kBatch = 1;

std::vector<LaneConfig> two_lanes(std::uint32_t batch_share_permille = 250, std::size_t max_queued = 1000,
                                  floodgate::Duration interactive_wait = 30s, floodgate::Duration batch_wait = 600s) {
  return {LaneConfig{"interactive", max_queued, interactive_wait, 0},
          LaneConfig{"batch", max_queued, batch_wait, batch_share_permille}};
}

// Fills a lane with ids base, base+1, ... (all accepted).
void fill(Lanes& lanes, std::size_t lane, TicketId base, int n, TimePoint now) {
  for (int i = 0; i < n; ++i) ASSERT_FALSE(lanes.enqueue(base + static_cast<TicketId>(i), lane, now).has_value());
}

}  // namespace

TEST(Lanes, InteractiveIsAdmittedBeforeBatchThatArrivedEarlier) {
  ManualClock clock;
  Lanes lanes(two_lanes(/*batch_share_permille=*/0));
  fill(lanes, kBatch, 100, 3, clock.now());
  clock.advance(1s);
  fill(lanes, kInteractive, 1, 2, clock.now());
  std::vector<TicketId> order;
  while (auto next = lanes.pull(clock.now())) order.push_back(next->id);
  EXPECT_EQ(order, (std::vector<TicketId>{1, 2, 100, 101, 102}));
}

TEST(Lanes, EachLaneIsFirstInFirstOut) {
  ManualClock clock;
  Lanes lanes(two_lanes(0));
  for (TicketId id = 1; id <= 5; ++id) {
    ASSERT_FALSE(lanes.enqueue(id, kInteractive, clock.now()));
    clock.advance(1ms);
  }
  for (TicketId id = 1; id <= 5; ++id) EXPECT_EQ(lanes.pull(clock.now())->id, id);
  EXPECT_FALSE(lanes.pull(clock.now()).has_value());
}

TEST(Lanes, BatchKeepsItsMinimumShareUnderSaturation) {
  ManualClock clock;
  Lanes lanes(two_lanes(/*batch_share_permille=*/250));
  fill(lanes, kInteractive, 1, 500, clock.now());
  fill(lanes, kBatch, 10'000, 500, clock.now());
  int batch = 0;
  for (int i = 1; i <= 400; ++i) {
    const auto next = lanes.pull(clock.now());
    ASSERT_TRUE(next);
    // Exactly every 4th admission is batch's, however many interactive requests wait.
    EXPECT_EQ(next->lane == kBatch, i % 4 == 0) << "admission " << i;
    batch += next->lane == kBatch;
  }
  EXPECT_EQ(batch, 100);
}

TEST(Lanes, WithoutAShareBatchWaitsWhileInteractiveHasWork) {
  ManualClock clock;
  Lanes lanes(two_lanes(/*batch_share_permille=*/0));
  fill(lanes, kInteractive, 1, 100, clock.now());
  fill(lanes, kBatch, 10'000, 100, clock.now());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(lanes.pull(clock.now())->lane, kInteractive);
  EXPECT_EQ(lanes.pull(clock.now())->lane, kBatch);
}

TEST(Lanes, AnIdleBatchLaneEarnsNoBurst) {
  ManualClock clock;
  Lanes lanes(two_lanes(/*batch_share_permille=*/250));
  // 100 interactive admissions while batch has nothing waiting: it earns nothing.
  fill(lanes, kInteractive, 1, 100, clock.now());
  for (int i = 0; i < 100; ++i) ASSERT_EQ(lanes.pull(clock.now())->lane, kInteractive);
  fill(lanes, kInteractive, 1000, 8, clock.now());
  fill(lanes, kBatch, 10'000, 8, clock.now());
  std::vector<std::size_t> order;
  for (int i = 0; i < 8; ++i) order.push_back(lanes.pull(clock.now())->lane);
  EXPECT_EQ(order, (std::vector<std::size_t>{0, 0, 0, 1, 0, 0, 0, 1}));
}

TEST(Lanes, ALaneAloneTakesEveryAdmission) {
  ManualClock clock;
  Lanes lanes(two_lanes(250));
  fill(lanes, kBatch, 1, 10, clock.now());
  for (TicketId id = 1; id <= 10; ++id) EXPECT_EQ(lanes.pull(clock.now())->id, id);
}

TEST(Lanes, AFullQueueRefusesBothSidesOfTheBound) {
  ManualClock clock;
  Lanes lanes(two_lanes(0, /*max_queued=*/3));
  fill(lanes, kInteractive, 1, 3, clock.now());  // 3 of 3: all taken
  const auto refused = lanes.enqueue(4, kInteractive, clock.now());
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->reason, RefusalReason::queue_full);
  EXPECT_EQ(refused->lane, kInteractive);
  EXPECT_EQ(refused->depth, 3u);
  EXPECT_FALSE(lanes.enqueue(5, kBatch, clock.now())) << "the other lane has its own bound";
  ASSERT_TRUE(lanes.pull(clock.now()));
  EXPECT_FALSE(lanes.enqueue(6, kInteractive, clock.now())) << "one admitted: one place free";
  EXPECT_EQ(lanes.stats()[kInteractive].rejected_queue_full, 1u);
}

TEST(Lanes, RetryAfterOfAFullQueueIsWhenANewRequestWouldBeAdmittedInTime) {
  ManualClock clock;
  // Interactive: 20 places, 5 s of wait at most; measured over the default 10 s window.
  Lanes lanes({LaneConfig{"interactive", 20, 5s, 0}});
  // 10 admissions in the last 10 s: 1 per second.
  for (TicketId id = 1; id <= 10; ++id) {
    ASSERT_FALSE(lanes.enqueue(id, 0, clock.now()));
    ASSERT_EQ(lanes.pull(clock.now())->id, id);
    clock.advance(1s);
  }
  clock.advance(-1s);  // the 10th admission is now; the 1st 9 s ago: all 10 in the window
  fill(lanes, 0, 100, 20, clock.now());
  const auto refused = lanes.enqueue(200, 0, clock.now());
  ASSERT_TRUE(refused);
  // 20 ahead at 1/s: 20 s to drain, of which 5 s may be waited: come back in 15 s.
  EXPECT_EQ(refused->retry_after, 15s);
}

TEST(Lanes, RetryAfterIsAtLeastOneAdmissionInterval) {
  ManualClock clock;
  Lanes lanes({LaneConfig{"interactive", 2, 60s, 0}});
  for (TicketId id = 1; id <= 5; ++id) {  // 5 admissions in the 10 s window: one per 2 s
    ASSERT_FALSE(lanes.enqueue(id, 0, clock.now()));
    ASSERT_TRUE(lanes.pull(clock.now()));
  }
  fill(lanes, 0, 100, 2, clock.now());
  // 2 ahead take 4 s, well within 60 s of wait: only a free place is missing, one interval.
  EXPECT_EQ(lanes.enqueue(200, 0, clock.now())->retry_after, 2s);
}

TEST(Lanes, RetryAfterWithNothingAdmittedIsTheLanesWait) {
  ManualClock clock;
  Lanes lanes({LaneConfig{"interactive", 1, 7s, 0}});
  fill(lanes, 0, 1, 1, clock.now());
  EXPECT_EQ(lanes.enqueue(2, 0, clock.now())->retry_after, 7s);
}

TEST(Lanes, AWaitReachingItsDeadlineIsRefusedAtTheDeadlineNotBefore) {
  ManualClock clock;
  Lanes lanes(two_lanes(0, 100, /*interactive_wait=*/2s));
  const TimePoint t0 = clock.now();
  fill(lanes, kInteractive, 1, 1, t0);
  fill(lanes, kInteractive, 2, 1, t0 + 500ms);
  EXPECT_EQ(lanes.next_deadline(), t0 + 2s);
  EXPECT_TRUE(lanes.expire(t0 + 2s - 1ns).empty());
  const auto expired = lanes.expire(t0 + 2s);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].id, 1u);
  EXPECT_EQ(expired[0].refusal.reason, RefusalReason::deadline);
  EXPECT_GT(expired[0].refusal.retry_after, floodgate::Duration::zero());
  EXPECT_EQ(lanes.next_deadline(), t0 + 2500ms);
  EXPECT_EQ(lanes.depth(kInteractive), 1u);
  EXPECT_EQ(lanes.stats()[kInteractive].rejected_deadline, 1u);
}

TEST(Lanes, PullNeverAdmitsARequestPastItsDeadlineAndKeepsItForExpire) {
  ManualClock clock;
  Lanes lanes(two_lanes(0, 100, /*interactive_wait=*/2s));
  const TimePoint t0 = clock.now();
  fill(lanes, kInteractive, 1, 1, t0);
  fill(lanes, kBatch, 50, 1, t0);
  const auto next = lanes.pull(t0 + 3s);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->id, 50u) << "the interactive request's wait is over; batch's is not";
  const auto expired = lanes.expire(t0 + 3s);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].id, 1u);
}

TEST(Lanes, CancelRemovesAWaitingRequestOnce) {
  ManualClock clock;
  Lanes lanes(two_lanes(0));
  fill(lanes, kInteractive, 1, 3, clock.now());
  EXPECT_TRUE(lanes.cancel(2));
  EXPECT_FALSE(lanes.cancel(2));
  EXPECT_EQ(lanes.pull(clock.now())->id, 1u);
  EXPECT_EQ(lanes.pull(clock.now())->id, 3u);
  EXPECT_FALSE(lanes.pull(clock.now()));
  EXPECT_FALSE(lanes.cancel(1)) << "admitted: no longer waiting";
  EXPECT_EQ(lanes.stats()[kInteractive].cancelled_total, 1u);
}

TEST(Lanes, WaitHistogramCountsEachAdmissionInItsBucket) {
  ManualClock clock;
  Lanes lanes(two_lanes(0));
  const TimePoint t0 = clock.now();
  fill(lanes, kInteractive, 1, 3, t0);
  ASSERT_TRUE(lanes.pull(t0));                  // 0 s: the first bucket (<= 5 ms)
  ASSERT_TRUE(lanes.pull(t0 + 5ms));            // exactly 5 ms: still the first (le is inclusive)
  ASSERT_TRUE(lanes.pull(t0 + 5ms + 1us));      // just above: the second (<= 10 ms)
  const LaneStats s = lanes.stats()[kInteractive];
  EXPECT_EQ(s.wait_bucket_counts[0], 2u);
  EXPECT_EQ(s.wait_bucket_counts[1], 1u);
  EXPECT_EQ(s.admitted_total, 3u);
  EXPECT_EQ(s.queued_total, 3u);
  EXPECT_NEAR(s.wait_seconds_sum, 0.010001, 1e-9);
}

TEST(Lanes, RejectsConfigurationsThatCannotWork) {
  EXPECT_THROW(Lanes({}), floodgate::Error);
  EXPECT_THROW(Lanes({LaneConfig{"a", 1, 1s, 0}, LaneConfig{"a", 1, 1s, 0}}), floodgate::Error);
  EXPECT_THROW(Lanes({LaneConfig{"a", 0, 1s, 0}}), floodgate::Error);
  EXPECT_THROW(Lanes({LaneConfig{"a", 1, 0s, 0}}), floodgate::Error);
  EXPECT_THROW(Lanes({LaneConfig{"a", 1, 1s, 600}, LaneConfig{"b", 1, 1s, 401}}), floodgate::Error);
  EXPECT_NO_THROW(Lanes({LaneConfig{"a", 1, 1s, 600}, LaneConfig{"b", 1, 1s, 400}}));
}

TEST(Lanes, DefaultLanesAreInteractiveThenBatchWithAShare) {
  Lanes lanes(default_lanes());
  EXPECT_EQ(lanes.find("interactive"), 0u);
  EXPECT_EQ(lanes.find("batch"), 1u);
  EXPECT_FALSE(lanes.find("Batch"));
  EXPECT_GT(lanes.config(1).min_share_permille, 0u);
  EXPECT_EQ(lanes.names(), "interactive, batch");
}
