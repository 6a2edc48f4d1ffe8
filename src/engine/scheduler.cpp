#include "scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <unordered_set>

#include "floodgate/core/duration.hpp"
#include "floodgate/http/dialect.hpp"
#include "words.hpp"

namespace floodgate::engine {
namespace {

using std::chrono::duration_cast;

}  // namespace

Scheduler::Scheduler(const EngineOptions& options, Clock& clock, Progress& progress, Host& host)
    : opt_(options),
      clock_(clock),
      progress_(progress),
      host_(host),
      limiters_(opt_.limits, opt_.limiter),
      breaker_(opt_.breaker),
      backoff_(opt_.retry, std::random_device{}()) {}

limit::Admission& Scheduler::admission_for(const std::string& model) {
  auto it = admissions_.find(model);
  if (it == admissions_.end()) {
    std::unique_ptr<limit::Admission> a =
        opt_.make_admission ? opt_.make_admission(model) : std::make_unique<limit::LocalAdmission>(limiters_.for_model(model));
    it = admissions_.emplace(model, std::move(a)).first;
  }
  return *it->second;
}

Lane& Scheduler::lane_for(const std::string& model) {
  auto it = lanes_.find(model);
  if (it == lanes_.end()) {
    it = lanes_.emplace(model, Lane{}).first;
    Lane& lane = it->second;
    lane.model = model;
    lane.limiter = &admission_for(model);
    lane.charge = limiters_.config().charge_for(model);
    lane.provider = limiters_.config().provider_for(model);
    if (http::url_depends_on_model(lane.provider, opt_.base_url)) {
      for (const auto& [e, url] : urls_) lane.urls[e] = http::endpoint_url(lane.provider, opt_.base_url, e, model, opt_.api_version);
    }
  }
  return it->second;
}

void Scheduler::enqueue(Lane& lane, Item* item) {
  const int priority = item->priority;
  auto at = lane.queue.end();
  while (at != lane.queue.begin() && (*std::prev(at))->priority < priority) --at;
  lane.queue.insert(at, item);
  if (item->deadline) deadlines_.emplace(*item->deadline, item->seq);
}

void Scheduler::finish_expired(Item* item, TimePoint now) {
  if (item->attempts == 0 || item->last.ok()) {
    host_.finish(item, failure(*item, ErrorKind::max_wait, "not sent before its deadline"), now);
    return;
  }
  Outcome o = std::move(item->last);
  o.attempts = item->attempts;
  o.error_message += " (not sent again before its deadline)";
  host_.finish(item, std::move(o), now);
}

void Scheduler::expire_deadlines(TimePoint now) {
  if (deadlines_.empty() || deadlines_.begin()->first > now) return;
  std::unordered_set<std::uint64_t> due;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    due.insert(deadlines_.begin()->second);
    deadlines_.erase(deadlines_.begin());
  }
  // One pass over what waits (a request in flight runs; its retry is checked when it fails).
  std::vector<Item*> expired;
  for (auto& [name, lane] : lanes_) {
    std::erase_if(lane.queue, [&](Item* item) {
      if (!due.contains(item->seq)) return false;
      if (lane.head_seen == item) lane.head_seen = nullptr;
      expired.push_back(item);
      return true;
    });
  }
  std::erase_if(retry_at_, [&](const auto& r) {
    if (!due.contains(r.second->seq)) return false;
    expired.push_back(r.second);
    return true;
  });
  std::sort(expired.begin(), expired.end(), [](const Item* a, const Item* b) { return a->seq < b->seq; });
  for (Item* item : expired) finish_expired(item, now);
}

std::optional<TimePoint> Scheduler::next_timer() const {
  std::optional<TimePoint> next;
  if (!retry_at_.empty()) next = retry_at_.begin()->first;
  if (!deadlines_.empty() && (!next || deadlines_.begin()->first < *next)) next = deadlines_.begin()->first;
  return next;
}

// A pause an earlier run recorded (the provider asked to wait hours for a model) still in
// force suspends the model's lane from the start: nothing is sent for it, its requests
// are left for a re-run, other models go on, and the run ends with exit code 6.
void Scheduler::load_recorded_pauses(store::Journal& journal, TimePoint start) {
  const auto wall_now = clock_.wall_now();
  for (store::Journal::Pause& p : journal.pauses()) {
    if (p.until <= wall_now) {
      journal.clear_pause(p.model);
      continue;
    }
    if (opt_.ignore_pause) {
      progress_.message("warning", "model \"" + p.model + "\" was paused until " + format_utc(p.until) + " by " + p.reason +
                                       "; sending anyway (" + option_name(opt_, "ignore_pause") + ")");
      journal.clear_pause(p.model);
      continue;
    }
    Lane& lane = lane_for(p.model);
    const TimePoint until = start + duration_cast<Duration>(p.until - wall_now);
    lane.limiter->pause_until(until);
    lane.suspended = true;
    lane.suspended_until = until;
    pauses_[p.model] = PauseNote{p.until, std::move(p.reason), true, 0};
  }
}

// The server's windows still hold what an earlier run sent (a re-run right after a crash or
// a stop): the journal keeps the last day's admissions per model and second, and each
// model's limiter starts with them, as if admitted at the end of their second (never
// later than it). Without this a re-run starts with empty windows and sends a minute's
// worth on top of what the server counted in the last 60 s.
void Scheduler::seed_limiters(store::Journal& journal, TimePoint start) {
  const auto wall_now = clock_.wall_now();
  for (const store::Journal::Admission& a : journal.admissions_since(wall_now - kAdmissionHorizon)) {
    const std::chrono::system_clock::time_point end_of_second{std::chrono::seconds(a.unix_second + 1)};
    const Duration ago = end_of_second < wall_now ? duration_cast<Duration>(wall_now - end_of_second) : Duration{0};
    admission_for(a.model).record_admitted(limit::Cost{a.requests, a.tokens}, start - ago, start);
  }
}

// The requests queued on a suspended lane are left for a re-run (unwritten, so resumable).
void Scheduler::abandon_suspended(Lane& lane, TimePoint now) {
  if (lane.queue.empty()) return;
  PauseNote& note = pauses_[lane.model];
  if (note.recorded && note.left == 0) {
    progress_.message("warning", pause_text(lane.model, note));
  }
  if (!paused_until_ || lane.suspended_until > *paused_until_) {
    paused_until_ = lane.suspended_until;
    paused_model_ = lane.model;
  }
  while (!lane.queue.empty()) {
    Item* item = lane.queue.front();
    lane.queue.pop_front();
    ++note.left;
    if (opt_.record_outcomes) {
      host_.abandon(item, now);
    } else {  // no resume to leave it for: it ends saying why
      host_.finish(item, failure(*item, ErrorKind::cancelled, "not sent: model \"" + lane.model + "\" is paused until " +
                                                                  format_utc(note.until) + " by " + note.reason),
                   now);
    }
  }
}

std::string Scheduler::pause_text(const std::string& model, const PauseNote& note) const {
  if (note.recorded) {
    return "model \"" + model + "\" paused until " + format_utc(note.until) + " by " + note.reason +
           "; nothing sent for it; re-run after that or pass " + option_name(opt_, "ignore_pause");
  }
  return "model \"" + model + "\" may resume after " + format_utc(note.until) + ", paused by " + note.reason +
         "; re-run after that to resume";
}

std::string Scheduler::pause_reason() const {
  std::string out = "paused:";
  const char* sep = " ";
  for (const auto& [model, note] : pauses_) {
    if (note.left == 0 && note.recorded) continue;  // a recorded pause of a model this input did not need
    out += sep + pause_text(model, note);
    sep = "; ";
  }
  return out;
}

TimePoint Scheduler::admit(TimePoint now, bool stopping, bool& budget_stop) {
  TimePoint wake = TimePoint::max();
  if (stopping || lanes_.empty()) return wake;
  const auto bstate = breaker_.state(now);
  if (bstate == limit::BreakerState::open) return std::min(wake, breaker_.blocked_until());
  if (bstate == limit::BreakerState::half_open && breaker_.blocked_until() == TimePoint::max()) return wake;  // probe out

  order_.clear();
  for (auto& [name, lane] : lanes_) order_.push_back(&lane);
  const std::size_t n = order_.size();
  lane_cursor_ = (lane_cursor_ + 1) % n;
  for (std::size_t k = 0; k < n; ++k) {
    Lane& lane = *order_[(lane_cursor_ + k) % n];
    if (lane.suspended) {
      abandon_suspended(lane, now);
      continue;
    }
    while (!lane.queue.empty()) {
      if (in_flight_.size() >= opt_.max_in_flight) return wake;
      if (lane.next_try > now) {
        wake = std::min(wake, lane.next_try);
        break;
      }
      Item* head = lane.queue.front();
      if (expired(*head, now)) {  // a retry released after its deadline
        lane.queue.pop_front();
        finish_expired(head, now);
        continue;
      }
      if (head != lane.head_seen) {
        lane.head_seen = head;
        lane.head_since = now;
      }
      if (opt_.max_wait && now - lane.head_since > *opt_.max_wait) {
        lane.queue.pop_front();
        host_.finish(head, failure(*head, ErrorKind::max_wait, "waited longer than " + option_name(opt_, "max_wait") + " (" + format_duration(*opt_.max_wait) + ") for admission"),
                     now);
        continue;
      }
      const limit::Cost cost{1, head->pace_tokens};
      const bool closed = breaker_.state(now) == limit::BreakerState::closed;
      limit::Decision d = closed ? lane.limiter->try_acquire(cost, now) : lane.limiter->peek(cost, now);
      if (d.verdict == limit::Decision::Verdict::cannot_fit) {
        lane.queue.pop_front();
        const auto lim = lane.limiter->limits();
        host_.finish(head,
                     failure(*head, ErrorKind::cannot_fit,
                             "the request is charged an estimated " + std::to_string(head->pace_tokens) + " tokens, more than the " +
                                 std::string(limit::to_string(d.blocked_by)) + " limit allows (tokens/min " +
                                 std::to_string(static_cast<long long>(lim.tokens_per_minute)) + "); it can never be sent"),
                     now);
        continue;
      }
      if (d.verdict == limit::Decision::Verdict::wait) {
        lane.waiting_for = d.blocked_by;
        lane.waiting_until = d.not_before;
        lane.next_try = d.not_before;
        if (opt_.max_wait) lane.next_try = std::min(lane.next_try, lane.head_since + *opt_.max_wait + std::chrono::milliseconds(1));
        wake = std::min(wake, lane.next_try);
        break;
      }
      if (opt_.admit) {
        const EngineOptions::Admit a = opt_.admit(head->req);
        if (a != EngineOptions::Admit::yes) {
          if (closed) lane.limiter->reconcile(d.grant, limit::Cost{0, 0}, now);  // give the reservation back
          if (a == EngineOptions::Admit::stop) {
            budget_stop = true;
            return wake;
          }
          // not_yet: ask again when an attempt completes (its settlement may free budget).
          lane.next_try = in_flight_.empty() ? now + std::chrono::milliseconds(100) : TimePoint::max();
          if (lane.next_try != TimePoint::max()) wake = std::min(wake, lane.next_try);
          break;
        }
      }
      if (!closed) {
        if (!breaker_.try_pass(now)) return std::min(wake, breaker_.blocked_until());
        d = lane.limiter->try_acquire(cost, now);
        if (!d.admitted()) continue;
      }
      lane.queue.pop_front();
      host_.send(head, lane, d.grant, now);
      if (!closed) return wake;  // the probe: nothing else until it answers
    }
  }
  return wake;
}

void Scheduler::release_due_retries(TimePoint now) {
  if (retry_at_.empty() || retry_at_.begin()->first > now) return;
  std::vector<Item*> due;
  while (!retry_at_.empty() && retry_at_.begin()->first <= now) {
    due.push_back(retry_at_.begin()->second);
    retry_at_.erase(retry_at_.begin());
  }
  // Older requests first, each before the requests of its priority not sent yet (all 0 for
  // a file's lines: the front): inserted in descending input order.
  std::sort(due.begin(), due.end(), [](const Item* a, const Item* b) { return a->seq > b->seq; });
  for (Item* item : due) {
    Lane& lane = lane_for(item->req.model);
    const int priority = item->priority;
    lane.queue.insert(std::find_if(lane.queue.begin(), lane.queue.end(), [priority](const Item* q) { return q->priority <= priority; }),
                      item);
    lane.next_try = std::min(lane.next_try, now);
  }
}

std::optional<InFlight> Scheduler::take(std::uint64_t tag) {
  auto it = in_flight_.find(tag);
  if (it == in_flight_.end()) return std::nullopt;
  InFlight f = it->second;
  in_flight_.erase(it);
  return f;
}

// A provider that charges at admission (OpenAI) keeps that charge whatever the answer used;
// one that settles at usage (",refund" rules) counts the usage.
void Scheduler::settle(InFlight& f, const limit::RateLimitHeaders& rl, const Outcome& o, TimePoint now) {
  limit::Answer answer{rl, false, false, std::nullopt};
  answer.rate_limited = o.error == ErrorKind::rate_limited;
  if (o.ok()) {
    if (f.lane->charge.refunds_unused && o.usage.total_tokens > 0) answer.used_tokens = o.usage.total_tokens;
  } else {
    answer.refused = o.error == ErrorKind::rate_limited || o.error == ErrorKind::insufficient_quota || !is_retryable(o.error);
  }
  f.lane->limiter->settle(f.grant, answer, now);
}

void Scheduler::wake_lanes(Lane& answered, TimePoint now) {
  answered.next_try = TimePoint{};  // observe/reconcile may have made room
  for (auto& [name, l] : lanes_) l.next_try = std::min(l.next_try, now);
}

void Scheduler::on_rate_limited(Lane& lane, const limit::RateLimitHeaders& rl, limit::Cost cost, TimePoint now) {
  if (lane.limiter->on_rate_limited(rl, now, cost)) {
    progress_.message("warning", "model \"" + lane.model + "\": a 429 although the server's remaining said there was room: it "
                                 "enforces its limit over a shorter period than the minute; pacing evenly from now on (250ms tolerance, no 1s burst)");
  }
  const auto before = breaker_.times_opened();
  breaker_.on_rate_limited(now, rl.wait_hint());
  if (breaker_.times_opened() != before) {
    const auto wait = breaker_.blocked_until() - now;
    progress_.message("warning", "circuit breaker open after " + std::to_string(opt_.breaker.threshold) +
                                     " consecutive 429s: pausing all sending for " + format_duration(wait));
  }
}

// A retry that backs off longer than 10 s after an error: said once per 10 s, with the wait
// in seconds as a field (wait_s) in JSON logs. Waiting for the limiter's window is ordinary
// pacing, not a warning: the progress line shows it.
void Scheduler::warn_long_backoff(Duration wait, const Item& item, TimePoint now) {
  if (wait <= std::chrono::seconds(10)) return;
  if (now - last_long_wait_warning_ < std::chrono::seconds(10) && last_long_wait_warning_ != TimePoint{}) return;
  last_long_wait_warning_ = now;
  const Outcome& o = item.last;
  const std::string after = o.status_code > 0 ? "HTTP " + std::to_string(o.status_code) + " " + std::string(to_string(o.error))
                                              : std::string(to_string(o.error));
  progress_.message("warning",
                    "backing off after " + after + " (" + item.req.custom_id + ", attempt " + std::to_string(item.attempts) + " of " +
                        std::to_string(opt_.retry.max_attempts) + "): retrying in " + format_duration(wait),
                    {{"wait_s", std::chrono::duration<double>(wait).count()}});
}

bool Scheduler::retry_or_pause(Item* item, Lane& lane, Outcome& o, std::optional<Duration> hint, store::Journal& journal, TimePoint now) {
  limit::RetryDecision d = backoff_.next(static_cast<int>(item->attempts - item->spared), hint);
  if (d.verdict != limit::RetryVerdict::give_up && item->deadline && now + d.delay > *item->deadline) {
    o.error_message += " (not retried: its deadline comes first)";
    return false;
  }
  if (d.verdict == limit::RetryVerdict::retry) {
    item->last = std::move(o);
    retry_at_.emplace(now + d.delay, item);
    warn_long_backoff(d.delay, *item, now);
    return true;
  }
  if (d.verdict != limit::RetryVerdict::suspend) return false;
  // A wait beyond --max-pause (retry-after: 999999999 is 31 years) is capped: the run
  // stops, and a re-run after the cap asks the server again.
  const Duration asked = d.delay;
  d.delay = std::min(d.delay, opt_.max_pause);
  const TimePoint until = now + d.delay;
  // The other requests in flight when the model was paused get the same 429: one warning.
  const bool already_paused = lane.suspended;
  lane.limiter->pause_until(until);
  lane.suspended = true;
  lane.suspended_until = until;
  if (!paused_until_ || until > *paused_until_) {
    paused_until_ = until;
    paused_model_ = lane.model;
  }
  // Remembered in the journal: a re-run before `until` sends nothing for the model.
  const auto wall_until = clock_.wall_now() + duration_cast<std::chrono::system_clock::duration>(d.delay);
  const std::string capped = asked > d.delay ? ", capped at " + option_name(opt_, "max_pause") + " " + format_duration(duration_cast<std::chrono::seconds>(d.delay)) : "";
  const std::string reason = std::string(d.delay >= std::chrono::hours(1) ? "the provider's daily limit" : "the provider's rate limit") +
                             " (a 429 asked to wait " + format_duration(duration_cast<std::chrono::seconds>(asked)) + capped + ")";
  journal.set_pause(store::Journal::Pause{lane.model, wall_until, reason});
  PauseNote& note = pauses_[lane.model];
  if (note.until < wall_until) note = PauseNote{wall_until, reason, false, note.left};
  if (!already_paused) {
    progress_.message("warning", "the server asks to wait " + format_duration(duration_cast<std::chrono::seconds>(asked)) + capped +
                                     " for model \"" + lane.model +
                                     "\" (beyond the retry horizon): no more requests for it in this run; re-run after that to resume");
  }
  lane.queue.push_front(item);  // stays unfinished: resumable
  return true;
}

std::vector<Item*> Scheduler::drop_in_flight(TimePoint now) {
  for (auto& [seq, f] : in_flight_) {
    (void)seq;
    f.lane->limiter->reconcile(f.grant, limit::Cost{1, f.grant.cost.tokens}, now);
    if (opt_.settle) opt_.settle(f.item->req, Usage{});
  }
  std::vector<Item*> flying;
  for (auto& [seq, f] : in_flight_) flying.push_back(f.item);
  in_flight_.clear();
  return flying;
}

bool Scheduler::give_up(Item* item, http::Transport& transport, TimePoint now) {
  if (const auto f = in_flight_.find(item->seq); f != in_flight_.end()) {
    if (breaker_.state(now) != limit::BreakerState::closed || breaker_.in_outage()) return false;
    if (!transport.cancel(item->seq)) return false;  // the transport cannot: it runs to its end
    // It went out: it counts in the windows as charged, as after a second Ctrl-C.
    f->second.lane->limiter->reconcile(f->second.grant, limit::Cost{1, f->second.grant.cost.tokens}, now);
    if (opt_.settle) opt_.settle(item->req, Usage{});
    in_flight_.erase(f);
    return true;
  }
  for (auto& [name, lane] : lanes_) {
    const auto q = std::find(lane.queue.begin(), lane.queue.end(), item);
    if (q == lane.queue.end()) continue;
    if (lane.head_seen == item) lane.head_seen = nullptr;
    lane.queue.erase(q);
    return true;
  }
  for (auto r = retry_at_.begin(); r != retry_at_.end(); ++r) {
    if (r->second != item) continue;
    retry_at_.erase(r);
    return true;
  }
  return false;
}

bool Scheduler::idle() const {
  return in_flight_.empty() && retry_at_.empty() &&
         std::all_of(lanes_.begin(), lanes_.end(), [](const auto& l) { return l.second.queue.empty(); });
}

void Scheduler::take_queued(std::vector<Item*>& out) {
  for (auto& [name, lane] : lanes_) {
    for (Item* item : lane.queue) out.push_back(item);
    lane.queue.clear();
  }
  for (auto& [t, item] : retry_at_) out.push_back(item);
  retry_at_.clear();
}

bool Scheduler::stuck_on_suspended() const {
  if (!paused_until_ || !in_flight_.empty()) return false;
  for (const auto& [name, lane] : lanes_) {
    if (!lane.suspended && !lane.queue.empty()) return false;
  }
  for (const auto& [t, item] : retry_at_) {
    auto it = lanes_.find(item->req.model);
    if (it != lanes_.end() && !it->second.suspended) return false;
  }
  return true;
}

void Scheduler::pause_note(ProgressState& s, TimePoint now) const {
  if (paused_until_) s.note = "model \"" + paused_model_ + "\" paused for " + format_duration(*paused_until_ - now);
}

limit::Limits Scheduler::limits() const {
  return lanes_.empty() ? limiters_.config().defaults : lanes_.begin()->second.limiter->limits();
}

void Scheduler::fill_progress(ProgressState& s, TimePoint now) const {
  s.in_flight = in_flight_.size();
  s.breaker = std::string(limit::to_string(breaker_.state(now)));
  if (lanes_.empty()) {
    // Nothing sent yet (or nothing to send: a resumed run with every line done): the limits
    // given (--rpm/--tpm, --limits FILE), not "-".
    const limit::Limits& given = limiters_.config().defaults;
    s.rpm_limit = given.requests_per_minute;
    s.tpm_limit = given.tokens_per_minute;
  } else {
    const Lane& lane = lanes_.begin()->second;
    const auto snap = lane.limiter->snapshot(now);
    s.requests_last_minute = snap.requests_last_minute;
    s.tokens_last_minute = snap.tokens_last_minute;
    s.rpm_limit = snap.limits.requests_per_minute;
    s.tpm_limit = snap.limits.tokens_per_minute;
    s.charge = lane.charge.describe();
    if (snap.learned_extra_tokens != 0) {
      const auto extra = static_cast<long long>(std::ceil(snap.learned_extra_tokens));
      s.charge += (extra >= 0 ? "+" : "") + std::to_string(extra) + " learned";
    }
    if (snap.learning) {
      s.note = "learning limits";
    } else if (!snap.limits.any()) {
      s.note = "limits unknown (the server sends none): by concurrency, " + option_name(opt_, "max_in_flight") + " " + std::to_string(opt_.max_in_flight);
    } else if (snap.even_pacing && opt_.limiter.pacing == limit::LimiterOptions::Pacing::whole_window) {
      s.note = "even pacing (429s inside the window)";
    }
    // Pacing at a low limit: the next request waits for room in the window (no warning:
    // that is the limit at work), said here so a line with nothing moving is explained.
    for (const auto& [name, l] : lanes_) {
      const bool a_limit = l.waiting_for == limit::Dimension::requests_per_minute || l.waiting_for == limit::Dimension::tokens_per_minute ||
                           l.waiting_for == limit::Dimension::requests_per_day || l.waiting_for == limit::Dimension::tokens_per_day;
      if (!s.note.empty() || !a_limit || l.queue.empty() || l.suspended || l.next_try <= now || l.waiting_until == TimePoint::max() ||
          l.waiting_until <= now + std::chrono::seconds(1)) {
        continue;
      }
      s.note = "waiting for the " + std::string(limit::to_string(l.waiting_for)) + " limit of model \"" + name + "\": next request in " +
               format_duration(duration_cast<std::chrono::seconds>(l.waiting_until - now));
    }
  }
}

}  // namespace floodgate::engine
