#include "verdicts.hpp"

#include <algorithm>

#include "floodgate/core/exit_codes.hpp"

namespace floodgate::engine {

JobEvent Verdicts::event(JobEvent::Kind kind, bool error) const {
  JobEvent ev;
  ev.kind = kind;
  ev.error = error;
  ev.base_url = opt_.base_url;
  return ev;
}

void Verdicts::add_refusal(JobEvent& ev) const {
  ev.refusal = refusal_key_;
  ev.url = refusal_url_;
  ev.model = refusal_model_;
}

std::string Verdicts::words(const JobEvent& ev) const { return opt_.describe ? opt_.describe(ev) : std::string(name(ev)); }

// Typed to the caller (on_event), worded by it (describe) for the message.
void Verdicts::report(const JobEvent& ev) {
  if (opt_.on_event) opt_.on_event(ev);
  progress_.message(ev.error ? "error" : "warning", words(ev));
}

void Verdicts::on_reached(TimePoint now) {
  answered_once_ = true;
  last_answer_at_ = now;
  for (auto& [parked_item, parked_outcome] : parked_) host_.finish(parked_item, std::move(parked_outcome), now);
  parked_.clear();
}

bool Verdicts::hold_refusal(Item* item, Outcome& o, const std::string& answer_refusal, const std::string& url, TimePoint now) {
  if (rejected_stop_) {
    if (answer_refusal != refusal_key_ || !opt_.record_outcomes) return false;  // no resume: its answer is its outcome
    host_.abandon(item, now);  // in flight when the job stopped: left unsent like the rest
    return true;
  }
  if (refusal_cleared_) return false;
  if (answer_refusal.empty() || (!refusal_key_.empty() && answer_refusal != refusal_key_)) {
    refusal_cleared_ = true;  // another kind of answer: the refusals were per line after all
    std::sort(refused_.begin(), refused_.end(), [](const auto& a, const auto& b) { return a.first->seq < b.first->seq; });
    for (auto& [held, outcome] : refused_) host_.finish(held, std::move(outcome), now);
    refused_.clear();
    return false;
  }
  if (refusal_key_.empty()) {
    refusal_key_ = answer_refusal;
    refusal_message_ = o.error_message;
    refusal_model_ = item->req.model;
    refusal_url_ = url;
  }
  ++refusals_;
  refused_.emplace_back(item, std::move(o));
  check_rejected(now);
  return true;
}

// The first answers are all the same refusal (kRefusalsToStop of them, or fewer when no
// other line can answer): stop, leave every line unsent, exit 9.
void Verdicts::check_rejected(TimePoint now) {
  if (rejected_stop_ || refusal_cleared_ || refused_.empty()) return;
  if (refusals_ < kRefusalsToStop && !host_.nothing_else_to_try()) return;
  rejected_stop_ = true;
  stop_admitting_ = true;
  JobEvent ev = event(JobEvent::Kind::rejected, true);
  ev.count = refusals_;
  ev.detail = refusal_message_;
  add_refusal(ev);
  report(ev);
  leave_held(refused_, now);
  refused_.clear();
}

// An attempt after the first answer that got no answer at all. A run of them across all
// requests (CircuitBreaker's outage threshold) is an outage: sending pauses, one probe
// at a time, and the lines that met it keep their attempts.
void Verdicts::on_no_contact(TimePoint now, const std::string& error) {
  const bool was = breaker_.in_outage();
  breaker_.on_no_contact(now);
  last_connect_error_ = error;
  if (was || !breaker_.in_outage()) return;
  JobEvent ev = event(JobEvent::Kind::outage_began, false);
  ev.count = static_cast<std::uint64_t>(breaker_.consecutive_no_contact());
  ev.detail = error;
  ev.limit = std::max(opt_.outage_limit, Duration{0});
  report(ev);
  // Lines whose last attempt was one of the run of failures go back in line.
  for (auto& [parked_item, parked_outcome] : parked_) {
    ++parked_item->spared;
    parked_item->last = std::move(parked_outcome);
    host_.retry(parked_item, now);
  }
  parked_.clear();
}

void Verdicts::on_connect_failure(TimePoint now, const std::string& error, bool slow) {
  ++connect_failures_;
  if (!first_connect_failure_) first_connect_failure_ = now;
  last_connect_error_ = error;
  last_failure_was_slow_ = slow;
  check_unreachable(now);
}

void Verdicts::on_quota(const std::string& code) {
  if (!quota_stop_) {
    JobEvent ev = event(JobEvent::Kind::insufficient_quota, true);
    ev.detail = code;
    report(ev);
  }
  quota_stop_ = true;
  stop_admitting_ = true;
}

void Verdicts::on_budget() {
  if (!budget_stop_) {
    JobEvent ev = event(JobEvent::Kind::budget, false);
    ev.detail = opt_.budget_reason ? opt_.budget_reason() : std::string("stop");
    report(ev);
  }
  budget_stop_ = true;
  stop_admitting_ = true;
}

bool Verdicts::on_stop_request(int requests, std::size_t in_flight) {
  if (!interrupted_) {
    interrupted_ = true;
    stop_admitting_ = true;
    JobEvent ev = event(JobEvent::Kind::interrupted, false);
    ev.in_flight = in_flight;
    report(ev);
  }
  if (requests < 2 || stop_now_) return false;
  stop_now_ = true;
  return true;
}

// After the first answer, lines whose last attempt got no answer wait for the next answer
// (then they failed on their own) or for the outage verdict. When neither can come any
// more (nothing else in flight, waiting or queued, and too few failures in a row for an
// outage) they fail now, as the next answer would have made them: the run waited for ever.
void Verdicts::check_parked(TimePoint now) {
  if (parked_.empty() || !answered_once_ || breaker_.in_outage() || outage_stop_ || !host_.nothing_else_to_try()) return;
  for (auto& [item, outcome] : parked_) host_.finish(item, std::move(outcome), now);
  parked_.clear();
}

// The outage has lasted --outage-limit: stop, and leave every unfinished line unsent
// (resumable) rather than fail it.
void Verdicts::check_outage(TimePoint now) {
  if (outage_stop_ || !breaker_.in_outage() || opt_.outage_limit <= Duration{0}) return;
  if (now - breaker_.outage_since() < opt_.outage_limit) return;
  outage_stop_ = true;
  stop_admitting_ = true;
  JobEvent ev = event(JobEvent::Kind::outage_stopped, true);
  ev.span = now - breaker_.outage_since();
  ev.limit = opt_.outage_limit;
  ev.detail = last_connect_error_;
  report(ev);
  leave_held(parked_, now);
  parked_.clear();
}

// No answer yet, and connecting has failed for --unreachable-after (8 attempts at least, or
// fewer when nothing else is left to try): a wrong URL or a server that is down. Stop, and
// leave every unfinished line unsent instead of failing it.
void Verdicts::check_unreachable(TimePoint now) {
  if (answered_once_ || unreachable_stop_ || !first_connect_failure_ || opt_.unreachable_after <= Duration{0}) return;
  if (now - *first_connect_failure_ < opt_.unreachable_after) return;
  if (connect_failures_ < 8 && !host_.nothing_else_to_try()) return;
  unreachable_stop_ = true;
  stop_admitting_ = true;
  JobEvent ev = event(JobEvent::Kind::unreachable, true);
  ev.count = connect_failures_;
  ev.span = now - *first_connect_failure_;
  ev.slow = last_failure_was_slow_;  // the server took the requests but answered none in time
  ev.detail = last_connect_error_;
  report(ev);
  leave_held(parked_, now);
  parked_.clear();
}

void Verdicts::leave_held(std::vector<std::pair<Item*, Outcome>>& held, TimePoint now) {
  for (auto& [item, outcome] : held) {
    if (opt_.record_outcomes) {
      host_.abandon(item, now);
    } else {
      host_.finish(item, std::move(outcome), now);
    }
  }
}

bool Verdicts::unhold(Item* item) {
  for (auto* held : {&parked_, &refused_}) {
    const auto h = std::find_if(held->begin(), held->end(), [item](const auto& p) { return p.first == item; });
    if (h == held->end()) continue;
    held->erase(h);
    return true;
  }
  return false;
}

void Verdicts::release_held(std::vector<Item*>& out) {
  for (auto& [item, outcome] : parked_) out.push_back(item);  // awaiting the unreachable verdict
  parked_.clear();
  for (auto& [item, outcome] : refused_) out.push_back(item);  // awaiting the refusal verdict
  refused_.clear();
}

const char* Verdicts::draining_note() const noexcept {
  return interrupted_        ? "interrupted: draining"
         : quota_stop_       ? "insufficient_quota: draining"
         : budget_stop_      ? "budget reached: draining"
         : unreachable_stop_ ? "unreachable: draining"
         : outage_stop_      ? "outage: draining"
         : rejected_stop_    ? "refused: draining"
                             : "draining";
}

// The stop, typed (RunSummary::stop, and a last `stopped` event with its facts) and worded
// by describe (RunSummary::stop_reason).
void Verdicts::conclude(RunSummary& summary, const std::string* disk_full, std::optional<std::string> paused) const {
  JobEvent stop = event(JobEvent::Kind::stopped, true);
  if (disk_full != nullptr) {
    stop.cause = StopCause::disk_full;
    stop.detail = *disk_full;
  } else if (interrupted_) {
    stop.cause = StopCause::interrupted;
  } else if (unreachable_stop_) {
    stop.cause = StopCause::unreachable;
    stop.slow = last_failure_was_slow_;
  } else if (outage_stop_) {
    stop.cause = StopCause::outage;
    stop.limit = opt_.outage_limit;
  } else if (rejected_stop_) {
    stop.cause = StopCause::rejected;
    add_refusal(stop);
  } else if (quota_stop_) {
    stop.cause = StopCause::insufficient_quota;
  } else if (budget_stop_) {
    stop.cause = StopCause::budget;
    stop.detail = opt_.budget_reason ? opt_.budget_reason() : std::string("reached");
  } else if (paused) {
    stop.cause = StopCause::paused;
    stop.detail = std::move(*paused);
  }
  if (stop.cause == StopCause::none) {
    // error lines in the output, this run's or earlier
    summary.exit_code = summary.failed + summary.earlier_failed > 0 ? exit_code::some_failed : exit_code::ok;
    return;
  }
  summary.exit_code = exit_code_for(stop.cause);
  summary.stop = stop.cause;
  summary.stop_reason = words(stop);
  if (opt_.on_event) opt_.on_event(stop);
}

}  // namespace floodgate::engine
