#include "floodgate/engine/engine.hpp"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <random>
#include <unordered_map>

#include "classifier.hpp"
#include "floodgate/core/duration.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/core/exit_codes.hpp"
#include "floodgate/http/dialect.hpp"
#include "floodgate/http/multipart_body.hpp"
#include "floodgate/limit/rate_limit_headers.hpp"
#include "floodgate/store/run_lock.hpp"
#include "hex.hpp"
#include "item.hpp"
#include "options.hpp"
#include "recorder.hpp"
#include "scheduler.hpp"
#include "verdicts.hpp"
#include "wakeups.hpp"

namespace floodgate::engine {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

}  // namespace

// ---- the engine's state -------------------------------------------------------------------

struct Engine::Impl final : Host {
  EngineOptions opt;
  Clock& clock;
  Wakeups wakeups;  // stop requests and cancels from other threads
  // Without recorded outcomes: the items by custom_id, for cancel() (the first of a
  // repeated id).
  std::unordered_map<std::string_view, Item*> by_id;

  std::unique_ptr<http::Transport> transport;
  std::shared_ptr<store::RunLock> run_lock;  // held until the engine is gone (after the sinks closed)
  std::unique_ptr<Recorder> recorder;
  std::unique_ptr<Progress> progress;
  std::unique_ptr<Scheduler> sched;
  std::unique_ptr<Verdicts> verdicts;
  std::unique_ptr<RequestSource> source;

  std::unordered_map<std::uint64_t, std::unique_ptr<Item>> items;  // by seq: read, not yet terminal
  std::uint64_t next_seq = 0;

  CustomIdSet seen_ids;
  bool input_done = false;
  bool input_waiting = false;  // the source had nothing ready: wait for its ready_fd

  // Header lines shared by every request (built once, never copied per request).
  std::shared_ptr<const std::vector<std::string>> base_headers;  // credentials
  std::shared_ptr<const std::vector<std::string>> json_headers;  // credentials + Content-Type
  std::vector<std::pair<std::string_view, std::string_view>> header_views;  // of the response at hand
  std::string run_nonce;
  std::size_t lookahead = 0;
  bool in_memory_journal = false;  // EngineOptions::kJournalInMemory

  RunSummary summary;
  TimePoint start{};

  Impl(EngineOptions o, Clock& c) : opt(std::move(o)), clock(c) {}

  // ---- start-up -----------------------------------------------------------------------------

  void prepare() {
    resolve_options(opt);
    lookahead = opt.lookahead != 0 ? opt.lookahead : std::max<std::size_t>(1024, 8 * opt.max_in_flight);
    in_memory_journal = journal_in_memory(opt);
    // Before anything is touched (--overwrite included): one process at a time per journal.
    if (!journal_in_memory(opt)) {
      run_lock = store::lock_run(store::lock_path_for_journal(opt.journal_path),
                          output_is_file(opt) ? "the output " + opt.output_path : "the journal " + opt.journal_path);
    }

    opt.transport.wake_fd = wakeups.fd();
    if (opt.transport.clock == nullptr) opt.transport.clock = &clock;

    // The input is judged before --overwrite deletes anything.
    source = opt.source ? std::move(opt.source) : open_jsonl_source(opt.input_path, opt.input);
    opt.transport.ready_fd = source->ready_fd();
    transport = opt.make_transport ? opt.make_transport(opt.transport) : std::make_unique<http::CurlTransport>(opt.transport);

    start = clock.now();
    progress = std::make_unique<Progress>(opt.progress, start);
    sched = std::make_unique<Scheduler>(opt, clock, *progress, *this);
    verdicts = std::make_unique<Verdicts>(opt, *progress, sched->breaker(), *this);
    recorder = std::make_unique<Recorder>(opt, clock, *progress, summary, start);

    recorder->open(*source);  // --overwrite, the journal, reconciliation, --retry-failed
    sched->load_recorded_pauses(recorder->journal(), start);
    sched->seed_limiters(recorder->journal(), start);
    recorder->open_output();

    // Headers shared by every request. The key is only ever placed here.
    std::vector<std::string> shared;
    if (!opt.credentials.api_key.empty()) shared.push_back(http::auth_header(opt.limits.provider.value_or(Provider::openai), opt.credentials.api_key));
    if (!opt.credentials.organization.empty()) shared.push_back("OpenAI-Organization: " + opt.credentials.organization);
    if (!opt.credentials.project.empty()) shared.push_back("OpenAI-Project: " + opt.credentials.project);
    base_headers = std::make_shared<const std::vector<std::string>>(shared);
    shared.emplace_back("Content-Type: application/json");
    json_headers = std::make_shared<const std::vector<std::string>>(std::move(shared));
    std::random_device rd;
    run_nonce = hex64((static_cast<std::uint64_t>(rd()) << 32) ^ rd()).substr(0, 12);
    std::map<Endpoint, std::string> urls;
    for (Endpoint e : {Endpoint::chat_completions, Endpoint::embeddings, Endpoint::audio_transcriptions, Endpoint::completions,
                       Endpoint::responses, Endpoint::moderations}) {
      urls[e] = http::endpoint_url(opt.limits.provider.value_or(Provider::openai), opt.base_url, e, "", opt.api_version);
    }
    sched->set_urls(std::move(urls));
  }

  // ---- reading ------------------------------------------------------------------------------

  [[nodiscard]] bool already_done(const std::string& key) const { return recorder->already_done(key); }

  // A line that never becomes a request is written as its error, unless an earlier run did.
  void finish_bad_line(Outcome o, std::shared_ptr<const void> payload, TimePoint now) {
    if (already_done(store::Journal::key_of(o))) {
      ++summary.skipped_done;
      return;
    }
    finish_without_item(std::move(o), std::move(payload), now);
  }

  void read_input(TimePoint now) {
    SourceItem in;
    while (!input_done && !verdicts->stopping() && items.size() + recorder->held() < lookahead) {
      const SourceStatus status = source->next(in);
      input_waiting = status == SourceStatus::none_yet;
      if (status != SourceStatus::item) {
        input_done = status == SourceStatus::end;
        break;
      }
      const std::uint64_t line_no = in.line_no;
      if (in.skipped_bytes > 0) {
        // Too long to be a request the API accepts: skipped while reading, never held.
        ++summary.total_lines;
        Outcome o;
        o.line_no = line_no;
        o.error = ErrorKind::too_large;
        o.error_message = "line " + std::to_string(line_no) + ": " + too_large_reason("the line", in.skipped_bytes);
        finish_bad_line(std::move(o), std::move(in.payload), now);
        continue;
      }
      ParsedLine& p = in.parsed;
      ++summary.total_lines;

      if (!p.request) {
        Outcome o;
        o.line_no = line_no;
        o.error = p.error;
        o.error_message = p.error_message;
        if (!p.custom_id.empty() && seen_ids.insert(p.custom_id)) o.custom_id = p.custom_id;
        finish_bad_line(std::move(o), std::move(in.payload), now);
        continue;
      }
      Request& req = *p.request;
      if (opt.record_outcomes && !seen_ids.insert(req.custom_id)) {
        Outcome o;
        o.line_no = line_no;
        o.error = ErrorKind::invalid_input;
        o.error_message = "line " + std::to_string(line_no) + ": duplicate custom_id \"" + req.custom_id + "\" (an earlier line has it)";
        finish_bad_line(std::move(o), std::move(in.payload), now);
        continue;
      }
      if (already_done(req.custom_id)) {
        ++summary.skipped_done;
        continue;
      }
      auto item = std::make_unique<Item>();
      item->seq = next_seq++;
      item->read_at = now;
      item->payload = std::move(in.payload);
      item->priority = in.priority;
      item->deadline = in.deadline;
      item->context = std::move(in.context);
      item->max_attempts = in.max_attempts;
      // With a context the transport holds the request (the gateway's upload, still in its
      // client's socket): the body only names the model.
      if (req.endpoint == Endpoint::audio_transcriptions && !item->context) {
        std::string why;
        auto spec = http::multipart_spec_from_json(req.body, why);
        std::error_code size_ec;
        const std::uint64_t file_bytes = spec ? std::filesystem::file_size(spec->file_path, size_ec) : 0;
        ErrorKind kind = ErrorKind::invalid_input;
        if (spec && !size_ec && file_bytes > kMaxRequestBytes) {
          kind = ErrorKind::too_large;
          why = too_large_reason("the audio file \"" + spec->file_path + "\"", file_bytes);
          spec.reset();
        }
        if (!spec) {
          Outcome o;
          o.custom_id = req.custom_id;
          o.line_no = line_no;
          o.error = kind;
          o.error_message = "line " + std::to_string(line_no) + ": " + why;
          PendingWrite w;
          w.outcome = std::move(o);
          w.read_at = now;
          w.payload = std::move(item->payload);
          recorder->deliver(item->seq, std::move(w), now);  // the seq is taken: fill it
          continue;
        }
        item->multipart = std::make_shared<const http::MultipartSpec>(std::move(*spec));
      }
      Lane& lane = sched->lane_for(req.model);
      const limit::ChargeInputs charge_inputs = opt.estimator(req);
      item->pace_tokens = lane.charge.charge(charge_inputs);
      item->est_tokens = limit::worst_case_tokens(charge_inputs, opt.worst_case_completion_tokens);
      req.estimated_tokens = item->est_tokens;
      item->client_request_id = "fg-" + run_nonce + "-" + std::to_string(line_no);
      item->req = std::move(req);
      Item* raw = item.get();
      items.emplace(raw->seq, std::move(item));
      if (!opt.record_outcomes) by_id.emplace(raw->req.custom_id, raw);
      sched->enqueue(lane, raw);
    }
  }

  // ---- recording ----------------------------------------------------------------------------

  void finish_without_item(Outcome o, std::shared_ptr<const void> payload, TimePoint now) {
    const std::uint64_t seq = next_seq++;
    PendingWrite w;
    w.outcome = std::move(o);
    w.read_at = now;
    w.payload = std::move(payload);
    recorder->deliver(seq, std::move(w), now);
  }

  // A terminal outcome for an item: write it (now or in order), forget the item.
  void finish(Item* item, Outcome o, TimePoint now) override {
    PendingWrite w;
    w.outcome = std::move(o);
    w.model = item->req.model;
    w.url = item->req.url;
    w.endpoint = item->req.endpoint;
    if (!opt.extra_sinks.empty()) w.body = item->req.body;
    w.est_tokens = item->est_tokens;
    w.read_at = item->read_at;
    w.first_sent_at = item->first_sent_at;
    w.payload = std::move(item->payload);
    const std::uint64_t seq = item->seq;
    forget(item);
    recorder->deliver(seq, std::move(w), now);
  }

  void forget(Item* item) {
    if (const auto it = by_id.find(item->req.custom_id); it != by_id.end() && it->second == item) by_id.erase(it);
    items.erase(item->seq);
  }

  // The item is left for a resume (stopped before it finished). Without recorded outcomes
  // there is no resume: it finishes as cancelled.
  void abandon(Item* item, TimePoint now) override {
    if (!opt.record_outcomes) {
      finish(item, failure(*item, ErrorKind::cancelled, "not finished: the engine stopped"), now);
      return;
    }
    const std::uint64_t seq = item->seq;
    ++summary.not_done;
    forget(item);
    recorder->deliver(seq, std::nullopt, now);
  }

  // An answered item the stopping job does not retry: left for a resume, or, without one
  // (outcomes not recorded), finished with what it met.
  void leave(Item* item, Outcome o, TimePoint now) {
    if (opt.record_outcomes) return abandon(item, now);
    finish(item, std::move(o), now);
  }

  // Writes whose failure for want of room stops the job (exit 74) rather than ending it.
  template <class Fn>
  void guard_writes(Fn&& fn) {
    recorder->guard(std::forward<Fn>(fn), sched->in_flight());
    if (recorder->disk_full()) verdicts->stop_admitting();
  }

  // ---- admission ----------------------------------------------------------------------------

  void send(Item* item, Lane& lane, const limit::Grant& grant, TimePoint now) override {
    ++item->attempts;
    if (item->attempts == 1) {
      item->first_sent_at = now;
    } else {
      ++summary.retries;
    }
    ++summary.attempts;
    // Persisted before the loop lets the request out (seed_limiters() reads it back at the
    // next start). A journal in memory has no next start: nothing reads it back, and its
    // transaction per turn cost an embedder that turns once per request (the gateway) ~7%
    // of its CPU per call.
    if (!in_memory_journal) recorder->journal().record_admission(lane.model, clock.wall_now(), grant.cost.requests, grant.cost.tokens);
    http::HttpRequest hr;
    hr.tag = item->seq;
    hr.url = sched->url(lane, item->req.endpoint);
    hr.headers.push_back("x-client-request-id: " + item->client_request_id);
    hr.max_response_bytes = opt.max_response_bytes.value_or(default_response_cap(item->req.endpoint));
    hr.context = item->context;
    if (item->multipart) {
      hr.common_headers = base_headers;
      hr.mime = http::make_mime_builder(item->multipart);  // curl sets the multipart Content-Type
    } else {
      hr.common_headers = json_headers;
      // A non-owning view: the item outlives its transfer (cancel_all() runs before any
      // in-flight item is dropped).
      hr.body = std::shared_ptr<const std::string>(std::shared_ptr<const std::string>{}, &item->req.body);
    }
    transport->submit(std::move(hr));
    sched->track(item, lane, grant);
  }

  // ---- responses ----------------------------------------------------------------------------

  // The option whose limit a timeout after the request went out met: the attempt's total
  // when it ran that long, else the wait for the next byte (the CLI's --timeout and
  // --idle-timeout).
  [[nodiscard]] std::string timeout_limit(const http::HttpResponse& r) const {
    const Duration total = opt.transport.total_timeout;
    if (r.elapsed + std::chrono::milliseconds(100) >= total) return option_name(opt, "transport.total_timeout") + " " + format_duration(total);
    return option_name(opt, "transport.idle_timeout") + " " + format_duration(Duration(opt.transport.idle_timeout));
  }

  void on_response(http::HttpResponse& r, TimePoint now) {
    const std::optional<InFlight> taken = sched->take(r.tag);
    if (!taken) return;
    InFlight f = *taken;
    Item* item = f.item;
    Lane& lane = *f.lane;
    limit::CircuitBreaker& breaker = sched->breaker();

    header_views.clear();  // reused: no allocation per response
    for (std::size_t i = 0; i < r.header_count(); ++i) header_views.emplace_back(r.header_name(i), r.header_value(i));
    const auto rl = limit::for_provider(limit::parse_rate_limit_headers(header_views, clock.wall_now()), lane.provider);

    Exchange x = classify_exchange(r);
    Outcome o = std::move(x.outcome);
    o.custom_id = item->req.custom_id;
    o.line_no = item->req.line_no;
    o.attempts = item->attempts;
    o.latency_seconds = std::chrono::duration<double>(r.elapsed).count();
    const std::string& answer_refusal = x.refusal;
    const std::string& quota_code = x.quota_code;
    // A timeout after the request went out while the server answered other requests: this
    // one was slow (--timeout too short for it), the server is up.
    const bool others_answered = verdicts->others_answered(now, r.elapsed);
    if (x.timed_out_sent) {
      o.error_message = "timeout: no answer within " + timeout_limit(r) + " although the server took the request" +
                        (others_answered ? " and answered others meanwhile" : "") + " (raise it if answers take longer): " + r.error_message;
    }
    // Lines held for a verdict (their last attempt found no server) were bad lines after all.
    if (x.reached) verdicts->on_reached(now);
    if (r.status == 429) ++summary.http_429;

    sched->settle(f, rl, o, now);
    if (opt.settle) opt.settle(item->req, o.usage);
    // Every answered attempt is billed, also one re-asked below (--retry-invalid): count it
    // here, not from the final outcome.
    summary.tokens_prompt += o.usage.prompt_tokens;
    summary.tokens_completion += o.usage.completion_tokens;
    summary.tokens_total += o.usage.total_tokens;
    if (r.error == http::TransportError::none && verdicts->hold_refusal(item, o, answer_refusal, sched->url(item->req.endpoint), now)) return;

    const bool has_answer = item->req.endpoint == Endpoint::chat_completions || item->req.endpoint == Endpoint::responses;
    if (o.ok() && opt.check_answer && has_answer) {
      const EngineOptions::AnswerVerdict v = opt.check_answer(item->req, o.body);
      if (v.kind != ErrorKind::none) {
        o.error = v.kind;
        o.error_message = v.message;
        if (v.kind == ErrorKind::schema_violation && item->invalid_retries < opt.retry_invalid && !verdicts->stopping()) {
          ++item->invalid_retries;
          item->last = std::move(o);
          breaker.on_success(now);
          sched->retry(item, now);  // re-ask at once (it still goes through the limiter)
          return;
        }
        breaker.on_success(now);
        finish(item, std::move(o), now);
        return;
      }
    }
    sched->wake_lanes(lane, now);

    if (o.ok()) {
      breaker.on_success(now);
      finish(item, std::move(o), now);
      return;
    }
    // No answer at all (classifier.hpp): before the first answer it is evidence that the API
    // cannot be reached; after it, of an outage. Not a timeout of a request the server took
    // while it answered others meanwhile: that is this request's timeout, retried like any
    // other error.
    const bool no_contact = x.no_contact && !(x.timed_out_sent && others_answered);
    if (o.error == ErrorKind::rate_limited) {
      sched->on_rate_limited(lane, rl, f.grant.cost, now);
    } else if (no_contact && verdicts->answered_once()) {
      verdicts->on_no_contact(now, o.error_message);
    } else {
      breaker.on_other_failure(now);
    }

    // The same test parks a line below, so a parked line always has a verdict.
    if (!verdicts->answered_once() && no_contact && !verdicts->unreachable() && opt.unreachable_after > Duration{0}) {
      verdicts->on_connect_failure(now, o.error_message, x.timed_out_sent);
    }
    if ((verdicts->unreachable() || verdicts->outage()) && no_contact) {
      abandon(item, now);
      return;
    }
    // A request that may go only so many times (Submission::max_attempts: a body that cannot
    // be sent twice) ends with what its last attempt met; a quota still stops the engine.
    if (item->max_attempts != 0 && item->attempts >= item->max_attempts && o.error != ErrorKind::insufficient_quota) {
      finish(item, std::move(o), now);
      return;
    }
    if (no_contact && breaker.in_outage() && !verdicts->stopping()) {
      // Met the outage: not this line's fault. It waits for the server like every other.
      ++item->spared;
      item->last = std::move(o);
      sched->retry(item, now);
      return;
    }

    if (o.error == ErrorKind::insufficient_quota) {
      verdicts->on_quota(quota_code);
      leave(item, std::move(o), now);
      return;
    }
    if (is_retryable(o.error)) {
      if (verdicts->stopping()) {
        leave(item, std::move(o), now);
        return;
      }
      if (static_cast<int>(item->attempts - item->spared) >= opt.retry.max_attempts) {
        o.error_message = o.error_message + " (after " + std::to_string(item->attempts) + " attempts)";
        const bool unreachable_verdict = !verdicts->answered_once() && opt.unreachable_after > Duration{0};
        const bool outage_verdict = verdicts->answered_once() && breaker.consecutive_no_contact() > 0;
        if (no_contact && (unreachable_verdict || outage_verdict)) {
          // Finished as failed by the next answer, or left unsent by the verdict (the API is
          // unreachable, or the run of failures becomes an outage).
          verdicts->park(item, std::move(o));
          return;
        }
        finish(item, std::move(o), now);
        return;
      }
      const std::optional<Duration> hint = o.error == ErrorKind::rate_limited ? rl.wait_hint() : rl.retry_after;
      if (sched->retry_or_pause(item, lane, o, hint, recorder->journal(), now)) return;
      finish(item, std::move(o), now);
      return;
    }
    finish(item, std::move(o), now);
  }

  // ---- stopping -----------------------------------------------------------------------------

  void retry(Item* item, TimePoint at) override { sched->retry(item, at); }

  // Nothing else can add evidence for a verdict: nothing in flight, waiting or queued, and no
  // more input (read to the end, or blocked by the look-ahead, which held lines and --ordered
  // holes can fill).
  [[nodiscard]] bool nothing_else_to_try() const override {
    const bool reading_blocked = input_done || input_waiting || items.size() + recorder->held() >= lookahead;
    return reading_blocked && sched->idle();
  }

  // Stop requests and cancels from other threads (wakeups.hpp).
  void check_wakeups(TimePoint now) {
    int stops = 0;
    std::vector<std::string> cancels;
    if (!wakeups.take(stops, cancels)) return;
    for (const std::string& id : cancels) cancel_item(id, now);
    if (stops > 0 && verdicts->on_stop_request(stops, sched->in_flight())) {
      transport->cancel_all();
      for (Item* item : sched->drop_in_flight(now)) abandon(item, now);
    }
  }

  // Engine::cancel(): the request is given up where it is (see engine.hpp).
  void cancel_item(const std::string& id, TimePoint now) {
    Item* item = nullptr;
    if (!opt.record_outcomes) {
      const auto it = by_id.find(id);
      if (it != by_id.end()) item = it->second;
    } else {
      const auto it = std::find_if(items.begin(), items.end(), [&](const auto& i) { return i.second->req.custom_id == id; });
      if (it != items.end()) item = it->second.get();
    }
    if (item == nullptr) return;  // finished, or not read yet
    if (sched->give_up(item, *transport, now) || verdicts->unhold(item)) {
      finish(item, failure(*item, ErrorKind::cancelled, "cancelled by the caller"), now);
    }
  }

  // When admitting stops, everything queued is left for a resume.
  void abandon_queued(TimePoint now) {
    std::vector<Item*> left;
    sched->take_queued(left);
    verdicts->release_held(left);
    std::sort(left.begin(), left.end(), [](const Item* a, const Item* b) { return a->seq < b->seq; });
    for (Item* item : left) abandon(item, now);
  }

  [[nodiscard]] bool stuck_on_suspended() const {
    if (verdicts->holding()) return false;  // parked: the unreachable verdict decides
    if (!input_done && items.size() + recorder->held() < lookahead) return false;
    return sched->stuck_on_suspended();
  }

  // ---- progress -----------------------------------------------------------------------------

  ProgressState progress_state(TimePoint now) {
    ProgressState s;
    s.done = summary.succeeded + summary.failed + summary.skipped_done;
    s.skipped = summary.skipped_done;
    s.total = summary.total_lines;
    s.total_final = input_done;
    if (const auto read = source->fraction_read()) s.input_fraction = *read;
    s.queued = items.size() - sched->in_flight();
    s.failed = summary.failed;
    s.http_429 = summary.http_429;
    s.retries = summary.retries;
    s.usage_tokens = summary.tokens_total;
    sched->fill_progress(s, now);
    if (verdicts->stopping()) s.note = verdicts->draining_note();
    sched->pause_note(s, now);
    const limit::CircuitBreaker& breaker = sched->breaker();
    if (breaker.in_outage() && !verdicts->stopping()) {
      s.note = "outage: no answer for " + format_duration(duration_cast<std::chrono::seconds>(now - breaker.outage_since())) + ", probing";
    }
    return s;
  }

  // ---- the loop -----------------------------------------------------------------------------

  // The loop, a turn at a time: run() turns until the job is over, waiting in the transport
  // as long as nothing is due; an embedder's own event loop (engine::Client, driven) turns
  // it without waiting and comes back at Turn::next.
  bool queued_abandoned = false;
  std::vector<http::HttpResponse> finished;

  void begin() {
    prepare();
    finished.reserve(256);
  }

  Engine::Turn turn(Duration max_wait) {
    Engine::Turn t;
    TimePoint now = clock.now();
    check_wakeups(now);
    verdicts->check_unreachable(now);
    verdicts->check_outage(now);
    verdicts->check_parked(now);
    verdicts->check_rejected(now);
    if (verdicts->stopping() && !queued_abandoned) {
      source->stop_reading();
      abandon_queued(now);
      queued_abandoned = true;
    }
    if (!verdicts->stopping()) {
      read_input(now);
      sched->release_due_retries(now);
    }
    sched->expire_deadlines(now);
    bool budget_stop = false;
    TimePoint wake = sched->admit(now, verdicts->stopping(), budget_stop);
    if (budget_stop) verdicts->on_budget();
    guard_writes([&] { recorder->journal().commit_admissions(); });
    if (const auto next = sched->next_timer()) wake = std::min(wake, *next);

    const bool idle = sched->in_flight() == 0 && items.empty();
    if (idle && (input_done || verdicts->stopping())) {
      t.over = true;
      return t;
    }
    if (stuck_on_suspended()) {
      source->stop_reading();
      verdicts->stop_admitting();
      abandon_queued(now);
      queued_abandoned = true;
      t.over = true;
      return t;
    }

    if (progress->due(now)) progress->update(progress_state(now), now);
    Duration timeout = std::chrono::milliseconds(250);
    if (wake != TimePoint::max()) timeout = std::min(timeout, std::max(Duration{0}, wake - now));
    if (!input_done && !input_waiting && !verdicts->stopping() && items.size() + recorder->held() < lookahead) timeout = Duration{0};
    t.next = now + timeout;
    // Round up to whole milliseconds so we don't spin just before a not_before.
    const auto timeout_ms = std::chrono::ceil<milliseconds>(std::min(timeout, max_wait));
    finished.clear();
    // With nothing in flight the wait still goes through the transport, so a signal wakes us.
    transport->poll(timeout_ms, finished);
    now = clock.now();
    t.answers = finished.size();
    for (auto& r : finished) on_response(r, now);
    // Rows reach the OS as soon as they exist (a kill -9 loses none of them: resume adopts
    // them from the output); the journal commits them in batches at checkpoints.
    guard_writes([&] { recorder->after_turn(now); });
    return t;
  }

  RunSummary run() {
    begin();
    while (!turn(Duration::max()).over) {
    }
    return end();
  }

  RunSummary end() {
    const TimePoint end = clock.now();
    // Everything written in order so far; with --ordered, rows still waiting behind a hole
    // are written now (their order cannot be kept across a resume anyway).
    recorder->write_held(end);
    guard_writes([&] { recorder->checkpoint(end, true); });
    progress->update(progress_state(end), end, true);
    progress->finish();  // before the sinks close: some print a closing line
    if (!recorder->disk_full()) guard_writes([&] { recorder->close(*source, !verdicts->stopped_at_once()); });
    recorder->remove_reserve();

    summary.wall_seconds = std::chrono::duration<double>(end - start).count();
    if (summary.wall_seconds > 0) {
      summary.achieved_rpm = static_cast<double>(summary.attempts) * 60.0 / summary.wall_seconds;
      summary.achieved_tpm = static_cast<double>(summary.tokens_total) * 60.0 / summary.wall_seconds;
    }
    summary.limits = sched->limits();
    summary.breaker_opened = sched->breaker().times_opened();
    verdicts->conclude(summary, recorder->disk_full() ? &recorder->disk_full_message() : nullptr,
                       sched->paused() ? std::optional<std::string>(sched->pause_reason()) : std::nullopt);
    return summary;
  }
};

Engine::Engine(EngineOptions options, Clock& clock) : impl_(std::make_unique<Impl>(std::move(options), clock)) {}
Engine::~Engine() = default;

RunSummary Engine::run() { return impl_->run(); }

void Engine::begin() { impl_->begin(); }

Engine::Turn Engine::turn(Duration max_wait) { return impl_->turn(max_wait); }

RunSummary Engine::end() { return impl_->end(); }

void Engine::request_stop() noexcept { impl_->wakeups.request_stop(); }

void Engine::cancel(std::string custom_id) { impl_->wakeups.cancel(std::move(custom_id)); }

}  // namespace floodgate::engine
