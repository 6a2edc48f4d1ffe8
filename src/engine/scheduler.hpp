#pragma once
// Scheduler: which request goes next, and when. One lane per model (FIFO); at each turn
// admit() visits the lanes round-robin from a moving cursor and, for each lane's head, asks
//   1. the breaker (open: nothing goes; half-open: one probe, alone, until it answers),
//   2. --max-in-flight (the cap over all lanes),
//   3. --max-wait (a head that waited longer for admission fails as max_wait),
//   4. the model's Admission (limit/admission.hpp): admitted, wait until T (the lane sleeps
//      until then), or cannot_fit (the request can never go: it fails as cannot_fit),
//   5. the budget hook (EngineOptions::admit): not yet, or stop the job,
// and hands what may go to Host::send(). Failed attempts come back as retries at a time
// (retry_at, the backoff's or the server's), released to the front of their lane in input
// order. A model the provider asks to wait beyond the retry horizon is paused: its lane is
// suspended, its requests are left for a re-run, the pause is journaled so a re-run before
// its end sends nothing for the model, and the run ends with exit code 6.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "floodgate/engine/engine.hpp"
#include "floodgate/limit/backoff.hpp"
#include "floodgate/limit/circuit_breaker.hpp"
#include "floodgate/limit/limiter_set.hpp"
#include "floodgate/limit/rate_limit_headers.hpp"
#include "floodgate/store/journal.hpp"
#include "item.hpp"

namespace floodgate::engine {

// How far back the journal's admissions still matter: the longest window a server counts
// (a day), and a margin.
inline constexpr auto kAdmissionHorizon = std::chrono::hours(24) + std::chrono::minutes(2);

class Scheduler {
 public:
  Scheduler(const EngineOptions& options, Clock& clock, Progress& progress, Host& host);

  // ---- set-up ----
  // The endpoint URLs (a lane's own when its URL names the model).
  void set_urls(std::map<Endpoint, std::string> urls) { urls_ = std::move(urls); }
  [[nodiscard]] const std::string& url(Lane& lane, Endpoint endpoint) {
    return lane.urls.empty() ? urls_[endpoint] : lane.urls[endpoint];
  }
  [[nodiscard]] const std::string& url(Endpoint endpoint) { return urls_[endpoint]; }
  // Pauses an earlier run journaled, and what it admitted in the last day (the server's
  // windows still hold it). `start` is the run's start on the monotonic clock.
  void load_recorded_pauses(store::Journal& journal, TimePoint start);
  void seed_limiters(store::Journal& journal, TimePoint start);

  [[nodiscard]] limit::Admission& admission_for(const std::string& model);
  [[nodiscard]] Lane& lane_for(const std::string& model);
  // A request read: behind those of its lane with the same or a higher SourceItem::priority
  // (all 0 for a file's lines: the back), its deadline (SourceItem::deadline) watched.
  void enqueue(Lane& lane, Item* item);

  // ---- the turn of the loop ----
  // Admits what may go now; returns the earliest time anything blocked could go. Sets
  // `budget_stop` when the budget hook said stop.
  TimePoint admit(TimePoint now, bool stopping, bool& budget_stop);
  void release_due_retries(TimePoint now);
  void retry(Item* item, TimePoint at) { retry_at_.emplace(at, item); }
  // Requests whose deadline came while they waited in a lane or for a retry finish: unsent
  // as max_wait, or with their last attempt's failure.
  void expire_deadlines(TimePoint now);
  // The next retry or deadline.
  [[nodiscard]] std::optional<TimePoint> next_timer() const;

  // ---- attempts ----
  void track(Item* item, Lane& lane, const limit::Grant& grant) { in_flight_.emplace(item->seq, InFlight{item, &lane, grant}); }
  // The attempt of this tag (taken out of flight), if it is one of ours.
  [[nodiscard]] std::optional<InFlight> take(std::uint64_t tag);
  [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_.size(); }
  // The attempt's reservation settled with what the server counted (the grant may be raised).
  void settle(InFlight& f, const limit::RateLimitHeaders& rl, const Outcome& o, TimePoint now);
  // An answer may have made room: every lane asks again now.
  void wake_lanes(Lane& answered, TimePoint now);
  // A 429 rate_limit_exceeded: the limiter's fall-back to even pacing, the breaker.
  void on_rate_limited(Lane& lane, const limit::RateLimitHeaders& rl, limit::Cost cost, TimePoint now);
  // A retryable failure with attempts left: retry after the backoff (or the server's wait),
  // or pause the model when the server asks to wait beyond the horizon. False: give up.
  bool retry_or_pause(Item* item, Lane& lane, Outcome& o, std::optional<Duration> hint, store::Journal& journal, TimePoint now);
  // Ctrl-C twice: every attempt in flight is dropped; their reservations are kept.
  [[nodiscard]] std::vector<Item*> drop_in_flight(TimePoint now);
  // Engine::cancel(): takes the item out of its lane or the retry timers, or out of flight
  // when the transport gives its transfer up (it counts as sent in the rate windows). False
  // when it is in none of them (held for a verdict, or finished) or is in flight as the
  // probe of the breaker or of an outage (its answer is what the loop waits for).
  bool give_up(Item* item, http::Transport& transport, TimePoint now);

  // ---- the end ----
  // Nothing in flight, waiting or queued.
  [[nodiscard]] bool idle() const;
  // Everything queued or waiting to retry (left for a resume when admitting stops).
  void take_queued(std::vector<Item*>& out);
  // Only suspended lanes have work left: the run can end (paused, exit 6).
  [[nodiscard]] bool stuck_on_suspended() const;
  [[nodiscard]] bool paused() const noexcept { return paused_until_.has_value(); }
  // "paused: model ... may resume after ..." for the summary.
  [[nodiscard]] std::string pause_reason() const;
  void fill_progress(ProgressState& s, TimePoint now) const;
  // "model ... paused for ..." over any other note, while a model is paused.
  void pause_note(ProgressState& s, TimePoint now) const;
  [[nodiscard]] limit::Limits limits() const;
  [[nodiscard]] limit::CircuitBreaker& breaker() noexcept { return breaker_; }

 private:
  struct PauseNote {
    std::chrono::system_clock::time_point until;
    std::string reason;
    bool recorded = false;   // from the journal: nothing was sent for the model this run
    std::uint64_t left = 0;  // requests left for a re-run because of it
  };
  void abandon_suspended(Lane& lane, TimePoint now);
  // The item's deadline passed before it could be sent (again).
  void finish_expired(Item* item, TimePoint now);
  [[nodiscard]] static bool expired(const Item& item, TimePoint now) { return item.deadline && now >= *item.deadline; }
  [[nodiscard]] std::string pause_text(const std::string& model, const PauseNote& note) const;
  void warn_long_backoff(Duration wait, const Item& item, TimePoint now);

  const EngineOptions& opt_;
  Clock& clock_;
  Progress& progress_;
  Host& host_;
  limit::LimiterSet limiters_;
  std::map<std::string, std::unique_ptr<limit::Admission>, std::less<>> admissions_;  // by model
  limit::CircuitBreaker breaker_;
  limit::Backoff backoff_;
  std::map<std::string, Lane, std::less<>> lanes_;
  std::multimap<TimePoint, Item*> retry_at_;
  std::multimap<TimePoint, std::uint64_t> deadlines_;  // by seq: the item may have finished since
  std::unordered_map<std::uint64_t, InFlight> in_flight_;
  std::map<Endpoint, std::string> urls_;
  std::size_t lane_cursor_ = 0;
  std::vector<Lane*> order_;  // admit()'s visiting order, reused
  TimePoint last_long_wait_warning_{};
  std::optional<TimePoint> paused_until_;
  std::string paused_model_;
  // Paused models (this run's 429s, or recorded by an earlier run): for the stop reason.
  std::map<std::string, PauseNote, std::less<>> pauses_;
};

}  // namespace floodgate::engine
