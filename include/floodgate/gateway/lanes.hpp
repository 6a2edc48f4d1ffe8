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
// earns s credit, and a lane whose credit reaches 1000 goes first (paying 1000). Under
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
// *How this meets the engine (issue 14's engine::Client; not wired yet).* The Client takes
// a Submission with `priority` (higher first within a model) and an optional `deadline`,
// and completes it through a callback or an eventfd queue. The engine's own order is
// strict priority per model, which would starve batch if the gateway submitted everything
// at once. So the gateway keeps the lanes as the only queue of any length and hands the
// engine a small window: it pulls while `client.outstanding()` is below the engine's
// in-flight cap (plus a little look-ahead so the limiter never idles), submits each pulled
// request with priority = -lane index (interactive above batch, for the few handed over
// together) and deadline = its lane deadline (what is left of it), and pulls again from
// each Completion. A request that the engine ends as max_wait is refused like an expiry
// here. The room signal becomes the engine's (its limiter's next admission time when it
// exposes one, which also sharpens retry_after).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
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

  // Takes a request into its lane's queue, or refuses it (queue full). The id must be new.
  [[nodiscard]] std::optional<Refusal> enqueue(TicketId id, std::size_t lane, TimePoint now);

  // Refuses (RefusalReason::deadline) every request whose wait has reached its lane's
  // max_wait, and removes it.
  [[nodiscard]] std::vector<Expired> expire(TimePoint now);

  // The next request to hand upstream, given room for one: the lane owed its share, else
  // the first lane by rank that has one waiting. Never a request past its deadline: those
  // it meets are kept for the next expire().
  [[nodiscard]] std::optional<Admitted> pull(TimePoint now);

  // Removes a waiting request (its client went away). False when it is not waiting.
  bool cancel(TicketId id);

  // The earliest deadline of a waiting request (for a timer), or nullopt when none waits.
  [[nodiscard]] std::optional<TimePoint> next_deadline() const noexcept;

  [[nodiscard]] std::size_t depth(std::size_t lane) const { return lanes_.at(lane).queue.size(); }
  [[nodiscard]] std::size_t waiting() const noexcept { return index_.size(); }

  // What a request refused now from `lane` should be told (see the essay above).
  [[nodiscard]] Duration retry_after(std::size_t lane, TimePoint now);

  [[nodiscard]] std::vector<LaneStats> stats() const;

 private:
  struct Waiting {
    TicketId id;
    TimePoint enqueued;
  };
  struct Lane {
    LaneConfig config;
    std::deque<Waiting> queue;        // FIFO; cancelled entries are removed at once
    std::uint32_t credit_permille = 0;
    std::deque<TimePoint> admissions;  // within rate_window (bounded by kMaxRateSamples)
    LaneStats stats;
  };
  static constexpr std::size_t kMaxRateSamples = 4096;

  void record_admission(Lane& lane, Duration waited, TimePoint now);
  Refusal refusal(std::size_t lane, RefusalReason reason, TimePoint now);

  std::vector<Lane> lanes_;
  Duration rate_window_;
  std::unordered_map<TicketId, std::size_t> index_;  // waiting id -> lane
  std::vector<Expired> expired_;  // met by pull(), handed out by the next expire()
};

}  // namespace floodgate::gateway
