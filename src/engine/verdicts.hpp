#pragma once
// Verdicts: when the job as a whole must stop, rather than one line fail. Each stop sets
// "stop admitting" (what is in flight drains, what is queued is left unsent: resumable),
// says why once, and gives the run its exit code:
//
//   rejected     9  the first answers are all the same refusal (401/403/404): a wrong key,
//                   base URL path or model. The refused lines are held unrecorded until the
//                   verdict; any other answer clears the suspicion and fails them as usual.
//   unreachable  7  no answer yet, and connecting has failed for --unreachable-after (8
//                   attempts at least): the lines whose attempts all failed are parked,
//                   unrecorded, until the verdict; an answer fails them as usual.
//   outage       8  after the first answer, a run of attempts with no answer at all: the
//                   breaker pauses sending and probes; longer than --outage-limit stops.
//   quota        3  a 429 insufficient_quota.
//   budget       4  the budget hook said stop.
//   interrupted  5  Ctrl-C (request_stop): drain; a second one stops at once.
//
// The verdicts keep the evidence (answered yet? failures in a row, the refusals) and the
// lines held for a verdict; they act on items only through the Host (item.hpp).

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "floodgate/engine/engine.hpp"
#include "item.hpp"

namespace floodgate::engine {

class Verdicts {
 public:
  Verdicts(const EngineOptions& options, Progress& progress, limit::CircuitBreaker& breaker, Host& host)
      : opt_(options), progress_(progress), breaker_(breaker), host_(host) {}

  // ---- the state the loop reads ----
  [[nodiscard]] bool stopping() const noexcept { return stop_admitting_; }
  void stop_admitting() noexcept { stop_admitting_ = true; }
  [[nodiscard]] bool interrupted() const noexcept { return interrupted_; }
  [[nodiscard]] bool stopped_at_once() const noexcept { return stop_now_; }
  [[nodiscard]] bool answered_once() const noexcept { return answered_once_; }
  [[nodiscard]] bool unreachable() const noexcept { return unreachable_stop_; }
  [[nodiscard]] bool outage() const noexcept { return outage_stop_; }
  [[nodiscard]] bool holding() const noexcept { return !parked_.empty() || !refused_.empty(); }
  // A timeout after the request went out while the server answered other requests since
  // it was sent: this one was slow, the server is up.
  [[nodiscard]] bool others_answered(TimePoint now, Duration elapsed) const noexcept {
    return answered_once_ && last_answer_at_ >= now - elapsed;
  }

  // ---- evidence ----
  // An attempt that reached the server: it is there. Lines parked for the unreachable
  // verdict were bad lines after all: they fail now.
  void on_reached(TimePoint now);
  // An answer before any that cleared the refusal suspicion: true when the item is held
  // or left unsent (the caller is done with it), false when it goes on as usual.
  bool hold_refusal(Item* item, Outcome& o, const std::string& refusal, const std::string& url, TimePoint now);
  // An attempt after the first answer that got no answer at all (see the outage above).
  void on_no_contact(TimePoint now, const std::string& error);
  // An attempt before the first answer that got no answer at all.
  void on_connect_failure(TimePoint now, const std::string& error, bool slow);
  // A line whose attempts all found no server, held for the verdict.
  void park(Item* item, Outcome o) { parked_.emplace_back(item, std::move(o)); }
  void on_quota(const std::string& code);
  void on_budget();
  // request_stop() was called `requests` times; true the first time it asks to stop at once.
  bool on_stop_request(int requests, std::size_t in_flight);

  // ---- checks at each turn of the loop ----
  void check_unreachable(TimePoint now);
  void check_outage(TimePoint now);
  void check_parked(TimePoint now);
  void check_rejected(TimePoint now);

  // The lines held for a verdict, for the stop that leaves everything unsent.
  void release_held(std::vector<Item*>& out);
  // Engine::cancel(): lets go of the item if it is held for a verdict (true).
  bool unhold(Item* item);
  // The progress line's note while draining ("interrupted: draining" ...).
  [[nodiscard]] const char* draining_note() const noexcept;
  // The run's exit code and stop (typed, and in describe's words): a full disk (its message),
  // else a verdict, else a paused model (the scheduler's reason), else whether the output
  // holds error lines.
  void conclude(RunSummary& summary, const std::string* disk_full, std::optional<std::string> paused) const;

 private:
  static constexpr std::uint64_t kRefusalsToStop = 5;
  [[nodiscard]] JobEvent event(JobEvent::Kind kind, bool error) const;
  void add_refusal(JobEvent& ev) const;  // the refusal's facts: key, URL, model
  [[nodiscard]] std::string words(const JobEvent& ev) const;
  void report(const JobEvent& ev);
  // Lines held for a verdict that stopped the job: left for a resume; without recorded
  // outcomes there is none, so each ends with what it met.
  void leave_held(std::vector<std::pair<Item*, Outcome>>& held, TimePoint now);

  const EngineOptions& opt_;
  Progress& progress_;
  limit::CircuitBreaker& breaker_;
  Host& host_;

  bool stop_admitting_ = false;
  bool interrupted_ = false;
  bool stop_now_ = false;
  bool quota_stop_ = false;
  bool budget_stop_ = false;
  // Before the first HTTP answer: the connection failures in a row and when they began.
  bool answered_once_ = false;
  std::uint64_t connect_failures_ = 0;
  std::optional<TimePoint> first_connect_failure_;
  std::string last_connect_error_;
  bool last_failure_was_slow_ = false;  // ... and the last of them a timeout after the request went out
  TimePoint last_answer_at_{};          // the latest answer (a status line) of this run
  bool unreachable_stop_ = false;
  bool outage_stop_ = false;  // the server stopped answering mid-run for --outage-limit
  // Lines refused (401/403/404) before the first other answer, held unrecorded.
  std::vector<std::pair<Item*, Outcome>> refused_;
  std::string refusal_key_;      // "401 invalid_api_key", "404 model_not_found", "404 " ...
  std::string refusal_message_;  // the first refusal's message and the request's model / URL
  std::string refusal_model_;
  std::string refusal_url_;
  std::uint64_t refusals_ = 0;
  bool refusal_cleared_ = false;
  bool rejected_stop_ = false;
  // Lines whose attempts all failed to connect before any answer, held until the verdict.
  std::vector<std::pair<Item*, Outcome>> parked_;
};

}  // namespace floodgate::engine
