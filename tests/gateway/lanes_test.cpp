#include "floodgate/gateway/lanes.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

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

// Batch alone takes every admission, and is owed nothing for them: an interactive request
// that arrives after any number of them goes next (before, every 10th pull at 100 per mille
// found batch's credit at 1000 and put batch first).
TEST(Lanes, ABatchLaneServedByItsRankIsOwedNothing) {
  ManualClock clock;
  for (int served = 0; served < 25; ++served) {
    Lanes lanes(two_lanes(/*batch_share_permille=*/100));
    fill(lanes, kBatch, 10'000, 100, clock.now());
    for (int i = 0; i < served; ++i) ASSERT_EQ(lanes.pull(clock.now())->lane, kBatch);
    fill(lanes, kInteractive, 1, 1, clock.now());
    EXPECT_EQ(lanes.pull(clock.now())->lane, kInteractive) << "after " << served << " batch admissions";
  }
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

// ---- Rooms: what the lanes hand over, and when (the room signal) ----

TEST(Lanes, PullTakesTheOldestRequestWhoseRoomFitsFifoPerRoom) {
  ManualClock clock;
  Lanes lanes(two_lanes(0));
  ASSERT_FALSE(lanes.enqueue(1, kBatch, clock.now(), /*room=*/7));
  ASSERT_FALSE(lanes.enqueue(2, kBatch, clock.now(), 7));
  ASSERT_FALSE(lanes.enqueue(3, kBatch, clock.now(), 8));
  ASSERT_FALSE(lanes.enqueue(4, kBatch, clock.now(), 8));
  const auto room8_only = [](std::size_t, RoomId room, bool) { return room == 8; };
  const auto a = lanes.pull(clock.now(), room8_only);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->id, 3u);
  EXPECT_EQ(a->room, 8u);
  EXPECT_EQ(lanes.depth(kBatch), 3u);
  std::vector<TicketId> order;
  while (auto next = lanes.pull(clock.now())) order.push_back(next->id);
  EXPECT_EQ(order, (std::vector<TicketId>{1, 2, 4}));
}

TEST(Lanes, APullThatFindsNoRoomEarnsNoShareCredit) {
  ManualClock clock;
  Lanes lanes(two_lanes(/*batch_share_permille=*/250));
  fill(lanes, kInteractive, 1, 20, clock.now());
  fill(lanes, kBatch, 100, 20, clock.now());
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(lanes.pull(clock.now(), [](std::size_t, RoomId, bool) { return false; }));
  std::vector<bool> owed;
  for (int i = 0; i < 8; ++i) {
    const auto next = lanes.pull(clock.now());
    ASSERT_TRUE(next);
    EXPECT_EQ(next->lane == kBatch, next->owed) << i;
    owed.push_back(next->owed);
  }
  EXPECT_EQ(owed, (std::vector<bool>{false, false, false, true, false, false, false, true})) << "every 4th, as without the 10 empty pulls";
}

TEST(Lanes, AnOwedLaneWhoseRoomIsFullLetsTheOthersGo) {
  ManualClock clock;
  Lanes lanes(two_lanes(/*batch_share_permille=*/500));
  fill(lanes, kInteractive, 1, 10, clock.now());
  fill(lanes, kBatch, 100, 10, clock.now());
  const auto no_batch = [](std::size_t lane, RoomId, bool) { return lane != kBatch; };
  for (TicketId id = 1; id <= 4; ++id) EXPECT_EQ(lanes.pull(clock.now(), no_batch)->id, id);
  const auto next = lanes.pull(clock.now());  // room again: the share it is owed
  ASSERT_TRUE(next);
  EXPECT_EQ(next->id, 100u);
  EXPECT_TRUE(next->owed);
}

TEST(Room, CountsUnsentRequestsPerLaneAndModelAndRelayCallsInFlight) {
  Room room(/*relay_in_flight=*/2, /*unsent_per_lane=*/2);
  const RoomId a = room.of("gpt-4o-mini");
  const RoomId b = room.of("gpt-4o");
  EXPECT_NE(a, Room::kRelay);
  EXPECT_NE(a, b);
  EXPECT_EQ(room.of("gpt-4o-mini"), a);
  room.take(kBatch, a);
  room.take(kBatch, a);
  EXPECT_FALSE(room.fits(kBatch, a, false));
  EXPECT_TRUE(room.fits(kBatch, a, /*owed=*/true)) << "one more for the share";
  EXPECT_TRUE(room.fits(kBatch, b, false)) << "another model's queue";
  EXPECT_TRUE(room.fits(kInteractive, a, false)) << "another lane";
  room.take(kBatch, a);
  EXPECT_FALSE(room.fits(kBatch, a, true));
  room.give_back(kBatch, a);
  room.give_back(kBatch, a);
  EXPECT_EQ(room.unsent(kBatch, a), 1u);
  EXPECT_TRUE(room.fits(kBatch, a, false));
  room.take(kInteractive, Room::kRelay);
  room.take(kBatch, Room::kRelay);
  EXPECT_FALSE(room.fits(kInteractive, Room::kRelay, true)) << "the relay's cap is for every lane";
  room.give_back(kBatch, Room::kRelay);
  EXPECT_TRUE(room.fits(kInteractive, Room::kRelay, false));
  EXPECT_EQ(room.relay_in_flight(), 1u);
}

TEST(Room, ModelsPastTheCapShareOneRoom) {
  Room room;
  std::set<RoomId> ids;
  for (std::size_t i = 0; i < Room::kMaxModels; ++i) ids.insert(room.of("m" + std::to_string(i)));
  EXPECT_EQ(ids.size(), Room::kMaxModels);
  const RoomId others = room.of("one-too-many");
  EXPECT_EQ(ids.count(others), 0u);
  EXPECT_EQ(room.of("and-another"), others);
  EXPECT_EQ(room.of("m0"), *ids.begin());
}

namespace {

// The engine as the gateway sees it: a queue per model, highest priority first, equal ones
// in submission order; each admission (one per pace interval, as a limiter at its limit
// admits) sends the head of one model's queue. Sending gives the room back, as the admit
// hook does.
struct FakeEngine {
  struct Held {
    TicketId id;
    std::size_t lane;
    RoomId room;
    int priority;
    std::uint64_t seq;
  };
  std::map<RoomId, std::vector<Held>> queues;
  std::uint64_t seq = 0;
  std::set<RoomId> paused;

  void submit(const Admitted& a) { queues[a.room].push_back(Held{a.id, a.lane, a.room, Room::priority(a), seq++}); }
  // Sends the next request of `model`, if one is held and the model is not paused.
  std::optional<Held> admit(RoomId model, Room& room) {
    auto& q = queues[model];
    if (q.empty() || paused.count(model) != 0) return std::nullopt;
    const auto best = std::min_element(q.begin(), q.end(), [](const Held& x, const Held& y) {
      return x.priority != y.priority ? x.priority > y.priority : x.seq < y.seq;
    });
    const Held h = *best;
    q.erase(best);
    room.give_back(h.lane, h.room);
    return h;
  }
};

void pump(Room& room, Lanes& lanes, FakeEngine& engine, TimePoint now) {
  while (auto next = room.pull(lanes, now)) engine.submit(*next);
}

}  // namespace

TEST(RoomSignal, AnInteractiveRequestGoesAtTheNextAdmissionAheadOfABatchFlood) {
  ManualClock clock;
  Lanes lanes(two_lanes(/*batch_share_permille=*/100, /*max_queued=*/5000));
  Room room(64, 2);
  FakeEngine engine;
  const RoomId model = room.of("gpt-4o-mini");
  for (TicketId id = 1000; id < 3000; ++id) ASSERT_FALSE(lanes.enqueue(id, kBatch, clock.now(), model));
  pump(room, lanes, engine, clock.now());
  EXPECT_EQ(engine.queues[model].size(), 2u) << "the engine holds 2 batch requests, not 64";
  int batch_sent = 0;
  for (int tick = 1; tick <= 100; ++tick) {  // one admission per pace interval
    clock.advance(100ms);
    if (tick % 10 == 5) {  // an interactive request arrives between two admissions
      ASSERT_FALSE(lanes.enqueue(static_cast<TicketId>(tick), kInteractive, clock.now(), model));
      pump(room, lanes, engine, clock.now());
    }
    clock.advance(1ms);
    const auto sent = engine.admit(model, room);
    ASSERT_TRUE(sent);
    if (tick % 10 == 5) {
      EXPECT_EQ(sent->id, static_cast<TicketId>(tick)) << "sent at the very next admission";
    }
    if (sent->lane == kBatch) ++batch_sent;
    pump(room, lanes, engine, clock.now());
    EXPECT_LE(room.unsent(kBatch, model), 3u);
  }
  EXPECT_EQ(batch_sent, 90) << "batch takes every admission interactive does not need";
}

TEST(RoomSignal, BatchKeepsItsShareWhileInteractiveFloods) {
  ManualClock clock;
  Lanes lanes(two_lanes(/*batch_share_permille=*/250, /*max_queued=*/5000, /*interactive_wait=*/600s));
  Room room(64, 2);
  FakeEngine engine;
  const RoomId model = room.of("gpt-4o-mini");
  for (TicketId id = 1; id <= 1000; ++id) ASSERT_FALSE(lanes.enqueue(id, kInteractive, clock.now(), model));
  for (TicketId id = 10'000; id < 11'000; ++id) ASSERT_FALSE(lanes.enqueue(id, kBatch, clock.now(), model));
  pump(room, lanes, engine, clock.now());
  int batch_sent = 0;
  for (int tick = 1; tick <= 400; ++tick) {
    clock.advance(100ms);
    const auto sent = engine.admit(model, room);
    ASSERT_TRUE(sent);
    if (sent->lane == kBatch) ++batch_sent;
    pump(room, lanes, engine, clock.now());
    EXPECT_LE(room.unsent(kBatch, model), 3u) << "bounded, flood or not";
  }
  // Without the owed priority batch would get none (its requests wait behind interactive's
  // in the engine); with it, its share of the admissions to within one.
  EXPECT_GE(batch_sent, 99);
  EXPECT_LE(batch_sent, 101);
}

TEST(RoomSignal, AModelWhosePaceIsPausedHoldsBackOnlyItsOwnRequests) {
  ManualClock clock;
  Lanes lanes(two_lanes(0, 5000));
  Room room(64, 2);
  FakeEngine engine;
  const RoomId stuck = room.of("paused-model");
  const RoomId free = room.of("gpt-4o-mini");
  engine.paused.insert(stuck);
  // Batch: 50 for the paused model first, then 50 for the other one.
  for (TicketId id = 1; id <= 50; ++id) ASSERT_FALSE(lanes.enqueue(id, kBatch, clock.now(), stuck));
  for (TicketId id = 100; id < 150; ++id) ASSERT_FALSE(lanes.enqueue(id, kBatch, clock.now(), free));
  pump(room, lanes, engine, clock.now());
  std::vector<TicketId> sent;
  for (int tick = 1; tick <= 60; ++tick) {
    clock.advance(100ms);
    EXPECT_FALSE(engine.admit(stuck, room));
    if (const auto h = engine.admit(free, room)) sent.push_back(h->id);
    pump(room, lanes, engine, clock.now());
  }
  ASSERT_EQ(sent.size(), 50u) << "every request of the other model, in order";
  for (std::size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(sent[i], 100 + i);
  EXPECT_EQ(engine.queues[stuck].size(), 2u) << "the paused model holds its lane's 2, no more";
  EXPECT_EQ(lanes.depth(kBatch), 48u);
}
