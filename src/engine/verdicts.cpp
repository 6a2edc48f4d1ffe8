#include "verdicts.hpp"

#include <algorithm>

#include "floodgate/core/duration.hpp"
#include "floodgate/core/exit_codes.hpp"
#include "words.hpp"

namespace floodgate::engine {

using std::chrono::duration_cast;

void Verdicts::on_reached(TimePoint now) {
  answered_once_ = true;
  last_answer_at_ = now;
  for (auto& [parked_item, parked_outcome] : parked_) host_.finish(parked_item, std::move(parked_outcome), now);
  parked_.clear();
}

bool Verdicts::hold_refusal(Item* item, Outcome& o, const std::string& answer_refusal, const std::string& url, TimePoint now) {
  if (rejected_stop_) {
    if (answer_refusal != refusal_key_) return false;
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

// What to fix, by the refusal.
std::string Verdicts::refusal_advice() const {
  const std::string status = refusal_key_.substr(0, 3);
  const std::string code = refusal_key_.size() > 4 ? refusal_key_.substr(4) : std::string();
  if (status == "401") return "the API key was refused: check OPENAI_API_KEY (or --api-key), and --organization / --project if given";
  if (code == "model_not_found") {
    return "model \"" + refusal_model_ + "\" does not exist or this key's project has no access to it: check the model name in the input, "
           "or the project's model access (--project)";
  }
  if (status == "404") return "the URL " + refusal_url_ + " does not exist: check --base-url / OPENAI_BASE_URL (the API's is https://api.openai.com/v1)";
  return "the key's organization or project may not use model \"" + refusal_model_ + "\" or this endpoint: check --organization / --project, "
         "the model, and the project's permissions";
}

// The first answers are all the same refusal (kRefusalsToStop of them, or fewer when no
// other line can answer): stop, leave every line unsent, exit 9.
void Verdicts::check_rejected(TimePoint now) {
  if (rejected_stop_ || refusal_cleared_ || refused_.empty()) return;
  if (refusals_ < kRefusalsToStop && !host_.nothing_else_to_try()) return;
  rejected_stop_ = true;
  stop_admitting_ = true;
  progress_.message("error", "every answer so far was the same refusal (" + thousands(refusals_) + " of them, HTTP " + refusal_key_.substr(0, 3) +
                                 (refusal_key_.size() > 4 ? " " + refusal_key_.substr(4) : std::string()) + ": " + refusal_message_ + "): " +
                                 refusal_advice() + ". Stopped; nothing was recorded for the lines not sent or refused. "
                                 "Fix it, then re-run the same command.");
  for (auto& [item, outcome] : refused_) host_.abandon(item, now);
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
  std::string bound = opt_.outage_limit > Duration{0} ? "; if that takes longer than --outage-limit (" + format_duration(opt_.outage_limit) +
                                                            ") the run stops, resumable (exit 8)"
                                                      : "";
  progress_.message("warning", "the server stopped answering (" + std::to_string(breaker_.consecutive_no_contact()) +
                                   " attempts in a row got no answer; last: " + error +
                                   "): pausing all sending and probing one request at a time until it answers" + bound);
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
    progress_.message("error", "429 " + code + ": the account is out of quota or over a spend/usage limit (check the plan, "
                               "billing details and limits). Stopped admitting; draining requests in flight. Re-run the same command to resume.");
  }
  quota_stop_ = true;
  stop_admitting_ = true;
}

void Verdicts::on_budget() {
  if (!budget_stop_) {
    progress_.message("warning", "budget reached: " + (opt_.budget_reason ? opt_.budget_reason() : std::string("stop")) +
                                     "; no new requests, draining those in flight. Re-run to resume.");
  }
  budget_stop_ = true;
  stop_admitting_ = true;
}

bool Verdicts::on_stop_request(int requests, std::size_t in_flight) {
  if (!interrupted_) {
    interrupted_ = true;
    stop_admitting_ = true;
    progress_.message("warning", "interrupted: no new requests; waiting for " + std::to_string(in_flight) +
                                     " in flight (Ctrl-C again to stop at once). Re-run the same command to resume.");
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
  progress_.message("error", "no answer from " + opt_.base_url + " for " +
                                 format_duration(duration_cast<std::chrono::seconds>(now - breaker_.outage_since())) +
                                 " (--outage-limit " + format_duration(opt_.outage_limit) + "; last: " + last_connect_error_ +
                                 "). Stopped; the lines not finished were not recorded. Re-run the same command to resume once the server is back.");
  for (auto& [item, outcome] : parked_) host_.abandon(item, now);
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
  const std::string over = thousands(connect_failures_) + " attempts in a row over " +
                           format_duration(duration_cast<std::chrono::seconds>(now - *first_connect_failure_));
  if (last_failure_was_slow_) {
    // The server took the requests but answered none in time: slow, not unreachable.
    progress_.message("error", "no answer from " + opt_.base_url + " in time: " + last_connect_error_ + " (" + over +
                                   "; the server accepted the connections and the requests). Stopped; the lines not answered were not "
                                   "recorded. If its answers take longer (long completions, a slow model or server), raise --timeout; "
                                   "then re-run the same command to resume.");
  } else {
    progress_.message("error", "cannot reach " + opt_.base_url + ": " + last_connect_error_ + " (" + over +
                                   ", no answer yet). Stopped; the lines that could not be sent were not recorded. Check --base-url / "
                                   "OPENAI_BASE_URL and the network, then re-run the same command to resume.");
  }
  for (auto& [item, outcome] : parked_) host_.abandon(item, now);
  parked_.clear();
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

void Verdicts::conclude(RunSummary& summary, const std::string* disk_full, std::optional<std::string> paused) const {
  if (disk_full != nullptr) {
    summary.exit_code = exit_code::disk_full;
    summary.stop_reason = "cannot write: " + *disk_full +
                          ". Nothing is lost that was recorded; the job is resumable: make room (or move the output and its "
                          "journal to a larger disk) and re-run the same command";
  } else if (interrupted_) {
    summary.exit_code = exit_code::interrupted;
    summary.stop_reason = "interrupted";
  } else if (unreachable_stop_) {
    summary.exit_code = exit_code::unreachable;
    summary.stop_reason = last_failure_was_slow_ ? "unreachable: no answer in time from " + opt_.base_url + " (it took the requests; raise --timeout)"
                                                 : "unreachable: no answer from " + opt_.base_url;
  } else if (outage_stop_) {
    summary.exit_code = exit_code::outage;
    summary.stop_reason = "outage: " + opt_.base_url + " stopped answering mid-run for longer than --outage-limit (" +
                          format_duration(opt_.outage_limit) + ")";
  } else if (rejected_stop_) {
    summary.exit_code = exit_code::rejected;
    summary.stop_reason = "rejected: " + refusal_advice();
  } else if (quota_stop_) {
    summary.exit_code = exit_code::insufficient_quota;
    summary.stop_reason = "insufficient_quota";
  } else if (budget_stop_) {
    summary.exit_code = exit_code::budget;
    summary.stop_reason = "budget: " + (opt_.budget_reason ? opt_.budget_reason() : std::string("reached"));
  } else if (paused) {
    summary.exit_code = exit_code::paused;
    summary.stop_reason = std::move(*paused);
  } else if (summary.failed + summary.earlier_failed > 0) {
    summary.exit_code = exit_code::some_failed;  // error lines in the output, this run's or earlier
  } else {
    summary.exit_code = exit_code::ok;
  }
}

}  // namespace floodgate::engine
