#pragma once
// Lanes: the gateway's admission front. Every request the gateway will send upstream waits
// here, in the queue of its lane, until the upstream side has room for one more; then
// pull() says which request goes next. Not thread-safe (the server holds it under a lock);
// every method takes `now`, nothing reads a clock, so tests drive it with a ManualClock and
// never sleep.
//
// How are the lanes designed, and why?
//
// *Pull, not push.* The upstream side (today the placeholder forwarder's in-flight cap;
// with issue 14's engine::Client, the engine's limiter) knows when there is room: a window
// with permits left, an in-flight slot free. So the lanes never decide *when* a request
// goes, only *which* one goes when asked: `pull(now)` is "the next request to hand the
// engine, given there is room for one". That keeps one owner of the pace (the limiter) and
// one owner of the order (the lanes).
//
// *Interactive first, batch never starved.* Lanes are ranked: index 0 (interactive) before
// index 1 (batch) and so on. A lane with a minimum share s (per mille) is owed s/1000 of
// the admissions made while it is waiting: on each pull every waiting lane with a share
// earns s credit, and a lane whose credit reaches 1000 goes first. A lane pays 1000 (down to
// 0) for every admission it gets, by its share or by its rank: a batch lane that takes
// every admission while interactive has nothing waiting is owed nothing, so the next
// interactive request is never put behind a batch request "owed" a share it already had
// (it was, once every 1000/s admissions: an extra pace interval for ~10% of interactive
// requests at 100 per mille, the p95/p99 of the lanes-under-load benchmark). Under
// saturation a batch lane with 250 per mille gets exactly every 4th admission, however
// many interactive requests wait. Credit is capped at 1000 and earned only while the lane
// waits, so a lane that was idle does not come back with a burst owed to it; when only
// one lane waits it takes every admission (the share is a floor, not a ceiling).
// Integers, not doubles: the sequence is exact, and so are the tests.
//
// *Bounded queues, bounded waits, honest refusals.* Each lane holds at most `max_queued`
// requests, each for at most `max_wait`. A request that finds its lane full, or whose wait
// passes its lane's deadline, is refused with a retry-after the client can trust: from
// the lane's measured admission rate r (admissions in the last `rate_window`), a request
// retried after t would find depth - r*t ahead of it and wait (depth - r*t)/r, so
// retry_after = max(1/r, depth/r - max_wait): the earliest moment a new request would
// both find a free place and be admitted within its deadline. Nothing admitted in the
// window (upstream stalled): retry after max(max_wait, 1 s). The server turns a refusal
// into OpenAI's 429 (retry-after in whole seconds, rounded up; retry-after-ms exact).
//
// *How this meets the engine: the room signal.* The engine (issue 14's engine::Client)
// orders by strict priority within a model, which would starve batch if the gateway
// submitted everything, and a request it holds cannot be taken back to put an interactive
// one ahead. So the lanes stay the only queue of any length, and the engine is handed only
// what it is about to send: each lane may have at most `unsent_per_lane` (2) requests in the
// engine that it has not sent yet, per model (Room below). The engine says when one leaves
// its queue (EngineOptions::admit, called right before each send, after the limiter
// admitted it); the gateway then pulls again. Requests sent and not answered yet no longer
// count (the engine's own max_in_flight caps them). An interactive request therefore finds
// its lane's room free, is submitted at once with priority -lane (above batch's) and goes
// at the limiter's next admission: its wait is at most about one pace interval, however
// many batch requests wait. A lane served because of its minimum share (Admitted::owed) is
// submitted with a priority above every lane's, and may have one more unsent request than
// the others, so that its share is kept even while its earlier requests wait in the engine
// behind a flood of interactive ones. Rooms are per model because the engine keeps a queue
// and a limiter per model: a model whose limiter is paused holds back its own requests,
// never another model's (the lanes skip a head whose room is full and take the oldest
// request whose room has space). Calls the engine does not pace (the relay: streams and
// uploads today, everything with --no-engine) share one room, the in-flight cap.
// pull(now, fits) asks `fits` and leaves the credits of the shares untouched when nothing
// fits. A request that the engine ends as max_wait is refused like an expiry here.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "floodgate/core/clock.hpp"

namespace floodgate::gateway {

struct LaneConfig {
  std::string name;               // "interactive", "batch": what x-floodgate-lane names
  std::size_t max_queued = 256;   // waiting requests at most (at least 1)
  Duration max_wait = std::chrono::seconds(30);  // longest wait for admission
  std::uint32_t min_share_permille = 0;          // owed this share of admissions while waiting
};

// The two lanes of the default configuration: interactive (first, 256 waiting, 30 s) and
// batch (10,000 waiting, 10 min, 10% of admissions at least).
[[nodiscard]] std::vector<LaneConfig> default_lanes();

using TicketId = std::uint64_t;
// The upstream queue a request will wait in once the lanes hand it over: the engine's queue
// of its model, or the relay (Room::kRelay). Room::of() names them.
using RoomId = std::uint32_t;

enum class RefusalReason : std::uint8_t { queue_full, deadline };
[[nodiscard]] std::string_view to_string(RefusalReason reason) noexcept;

struct Refusal {
  RefusalReason reason = RefusalReason::queue_full;
  std::size_t lane = 0;
  Duration retry_after{0};
  std::size_t depth = 0;  // requests waiting in the lane when it refused
};

struct Admitted {
  TicketId id = 0;
  std::size_t lane = 0;
  Duration waited{0};
  RoomId room = 0;
  bool owed = false;  // its lane was served because of its minimum share
};

struct Expired {
  TicketId id = 0;
  Refusal refusal;
};

// What /metrics shows of one lane.
struct LaneStats {
  std::string name;
  std::size_t depth = 0;             // waiting now
  std::uint64_t queued_total = 0;    // ever taken into the queue
  std::uint64_t admitted_total = 0;  // ever handed upstream (queued first or not)
  std::uint64_t rejected_queue_full = 0;
  std::uint64_t rejected_deadline = 0;
  std::uint64_t cancelled_total = 0;  // left the queue without an answer (client gone)
  // Wait from enqueue to admission: counts per bucket of kWaitBucketsSeconds (not
  // cumulative; the last entry is +Inf), their sum in seconds.
  std::vector<std::uint64_t> wait_bucket_counts;
  double wait_seconds_sum = 0;
};

// Upper bounds (seconds) of the wait histogram's buckets, +Inf after the last.
inline constexpr double kWaitBucketsSeconds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

class Lanes {
 public:
  // Throws floodgate::Error for no lanes, an empty or repeated name, shares over 1000 in
  // total, a max_queued of 0 or a max_wait that is not above zero.
  explicit Lanes(std::vector<LaneConfig> lanes, Duration rate_window = std::chrono::seconds(10));

  [[nodiscard]] std::size_t lane_count() const noexcept { return lanes_.size(); }
  [[nodiscard]] const LaneConfig& config(std::size_t lane) const { return lanes_.at(lane).config; }
  // The index of the lane with this name (exact, as configured), or nullopt.
  [[nodiscard]] std::optional<std::size_t> find(std::string_view name) const noexcept;
  // "interactive, batch": for error messages.
  [[nodiscard]] std::string names() const;

  // Takes a request into its lane's queue, or refuses it (queue full). The id must be new;
  // `room`: where it will wait once handed over (pull's `fits` is asked about it).
  [[nodiscard]] std::optional<Refusal> enqueue(TicketId id, std::size_t lane, TimePoint now, RoomId room = 0);

  // Refuses (RefusalReason::deadline) every request whose wait has reached its lane's
  // max_wait, and removes it.
  [[nodiscard]] std::vector<Expired> expire(TimePoint now);

  // Whether a request of `lane` for `room` may be handed over now; `owed`: it would go
  // because of its lane's minimum share.
  using Fits = std::function<bool(std::size_t lane, RoomId room, bool owed)>;

  // The next request to hand upstream: the lane owed its share, else the first lane by rank
  // that has one waiting; within a lane the oldest request whose room `fits` (null: every
  // room fits), FIFO per room. Nothing fits: nullopt, and no lane earns share credit. Never
  // a request past its deadline: those it meets are kept for the next expire().
  [[nodiscard]] std::optional<Admitted> pull(TimePoint now, const Fits& fits = {});

  // Removes a waiting request (its client went away). False when it is not waiting.
  bool cancel(TicketId id);

  // The earliest deadline of a waiting request (for a timer), or nullopt when none waits.
  [[nodiscard]] std::optional<TimePoint> next_deadline() const noexcept;

  [[nodiscard]] std::size_t depth(std::size_t lane) const { return lanes_.at(lane).depth; }
  [[nodiscard]] std::size_t waiting() const noexcept { return index_.size(); }

  // What a request refused now from `lane` should be told (see the essay above).
  [[nodiscard]] Duration retry_after(std::size_t lane, TimePoint now);

  [[nodiscard]] std::vector<LaneStats> stats() const;

 private:
  struct Waiting {
    TicketId id;
    TimePoint enqueued;
    std::uint64_t seq;  // arrival order across the lane's rooms
  };
  struct Lane {
    LaneConfig config;
    std::map<RoomId, std::deque<Waiting>> rooms;  // FIFO per room, no empty deque; cancelled entries removed at once
    std::size_t depth = 0;                        // waiting, all rooms
    std::uint32_t credit_permille = 0;
    std::deque<TimePoint> admissions;  // within rate_window (bounded by kMaxRateSamples)
    LaneStats stats;
  };
  static constexpr std::size_t kMaxRateSamples = 4096;

  void record_admission(Lane& lane, Duration waited, TimePoint now);
  // The oldest waiting request of the lane whose room fits (every room when fits is null).
  static std::deque<Waiting>* oldest(Lane& lane, std::size_t index, const Fits& fits, bool owed);
  Refusal refusal(std::size_t lane, RefusalReason reason, TimePoint now);

  std::vector<Lane> lanes_;
  Duration rate_window_;
  std::unordered_map<TicketId, std::pair<std::size_t, RoomId>> index_;  // waiting id -> lane, room
  std::uint64_t next_seq_ = 0;
  std::vector<Expired> expired_;  // met by pull(), handed out by the next expire()
};

// The room the lanes pull against (the essay above): per lane and model, the requests
// handed to the engine and not sent yet; for the relay, the calls in flight. Not
// thread-safe (the server holds it under the lanes' lock).
class Room {
 public:
  static constexpr RoomId kRelay = 0;
  static constexpr std::size_t kMaxModels = 256;  // beyond: one room shared by the others

  explicit Room(std::size_t relay_in_flight = 64, std::size_t unsent_per_lane = 2);

  // The room of a model's engine queue (the same id for the same name; a name past the
  // first kMaxModels shares one room with the others).
  [[nodiscard]] RoomId of(std::string_view model);
  // For Lanes::pull: the relay while its calls in flight are under the cap; a model's queue
  // while the lane has fewer than unsent_per_lane requests there not sent yet (one more when
  // owed its share).
  [[nodiscard]] bool fits(std::size_t lane, RoomId room, bool owed) const;
  // Lanes::pull against this room, counting what it hands over (take()).
  [[nodiscard]] std::optional<Admitted> pull(Lanes& lanes, TimePoint now);
  // The engine priority of a request handed over: -lane (interactive above batch), above
  // every lane's (1) when its lane was owed its share.
  [[nodiscard]] static int priority(const Admitted& admitted) noexcept {
    return admitted.owed ? 1 : -static_cast<int>(admitted.lane);
  }
  // Handed over: counted (unsent in the engine, or in flight on the relay).
  void take(std::size_t lane, RoomId room);
  // Counted no more: the engine sent it (or finished it unsent), the relay call ended.
  void give_back(std::size_t lane, RoomId room);
  [[nodiscard]] std::size_t unsent(std::size_t lane, RoomId room) const;
  [[nodiscard]] std::size_t relay_in_flight() const noexcept { return relay_; }

 private:
  std::size_t relay_cap_;
  std::size_t unsent_per_lane_;
  std::size_t relay_ = 0;
  std::map<std::pair<std::size_t, RoomId>, std::size_t> unsent_;  // no zero entries
  std::unordered_map<std::string, RoomId> models_;
};

}  // namespace floodgate::gateway
