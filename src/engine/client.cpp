#include "floodgate/engine/client.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "client_queues.hpp"
#include "floodgate/core/batch_io.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/core/exit_codes.hpp"
#include "floodgate/engine/source.hpp"

namespace floodgate::engine {
namespace {

// The parser's words without its "line N: " (a submission is no line).
std::string without_line_prefix(std::string_view why) {
  if (why.starts_with("line ")) {
    if (const auto colon = why.find(": "); colon != std::string_view::npos) why.remove_prefix(colon + 2);
  }
  return std::string(why);
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

Submitted refused(Refusal why, std::string reason) { return Submitted{why, std::move(reason)}; }

}  // namespace

std::string_view to_string(Refusal refusal) noexcept {
  switch (refusal) {
    case Refusal::none: return "none";
    case Refusal::closed: return "closed";
    case Refusal::invalid: return "invalid";
    case Refusal::duplicate_id: return "duplicate_id";
    case Refusal::full: return "full";
  }
  return "unknown";
}

// The engine sees each request under a key of the Client's own (its sequence number, as
// custom_id and line_no), never the caller's id: an id comes free when its request
// completes, and a cancel() meant for the request that had it must never reach the next one.
struct Client::Impl {
  struct Pending {
    std::string id;  // the caller's
    TimePoint submitted_at{};
    bool in_engine = false;    // the engine took it (else it still waits in `handoff`)
    bool cancel_sent = false;  // Engine::cancel() was asked
    bool sent = false;         // its first attempt went out (ClientOptions::on_sent)
  };
  struct Queued {
    std::uint64_t seq = 0;
    Request request;
    int priority = 0;
    std::optional<TimePoint> deadline;
    std::shared_ptr<void> context;
    std::uint32_t max_attempts = 0;
  };

  // The engine's source: what submit() queued, in submission order (the lanes order by
  // priority). It never ends before close().
  class QueueSource final : public RequestSource {
   public:
    explicit QueueSource(Impl& client) : client_(client) {}
    SourceIdentity identity() override {
      SourceIdentity id;
      id.name = "the requests submitted to the client";
      id.tag = "client:v1";
      return id;
    }
    SourceStatus next(SourceItem& item) override { return client_.next_for_engine(item); }
    [[nodiscard]] int ready_fd() const noexcept override { return client_.submitted.fd(); }
    void stop_reading() noexcept override { client_.engine_stopping(); }

   private:
    Impl& client_;
  };

  // The engine's only sink: each outcome becomes its request's Completion.
  class CompletionSink final : public store::Sink {
   public:
    explicit CompletionSink(Impl& client) : client_(client) {}
    void write(const Outcome& outcome, const store::RowContext& context) override { client_.on_outcome(outcome, context); }
    void flush() override {}
    void close() override {}

   private:
    Impl& client_;
  };

  Clock& clock;
  std::size_t max_outstanding;
  std::function<void(Completion&&)> on_complete;
  struct FileCloser {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, FileCloser> null_stream;  // the engine's messages when nobody reads them
  ReadyFlag submitted;  // set while `handoff` holds something
  CompletionQueue done;
  std::unique_ptr<Engine> engine;
  std::thread thread;  // the engine's, unless driven
  // Driven: the caller's threads turn the engine, one at a time (drive()).
  bool driven = false;
  std::function<void(TimePoint)> on_next_turn;
  std::atomic<bool> turning{false};  // a thread is turning the engine
  std::atomic<bool> turn_wanted{false};  // something changed since that turn began
  bool over = false;  // driven: the engine's loop ended (under `turning`)

  mutable std::mutex mu;  // guards what follows
  std::deque<Queued> handoff;
  std::unordered_map<std::uint64_t, Pending> pending;  // by seq: taken, not completed
  std::unordered_map<std::string, std::uint64_t> seq_of;  // the caller's id -> seq, for the same
  std::uint64_t next_seq = 1;
  bool input_closed = false;  // close(): the source ends once `handoff` is empty
  bool closed = false;        // submit() refuses
  bool closing = false;       // close() was called (the engine stops because of it)
  std::string closed_reason = "the client is closed";
  bool started = false;       // the engine asked for its first request: start-up went well
  bool finished = false;      // the engine's thread is done (summary set)
  std::exception_ptr start_error;
  std::condition_variable cv;
  RunSummary summary;
  JobEvent stopped;  // the engine's last event when it stopped early: the facts for closed_reason

  std::mutex close_mu;  // one close() at a time
  bool joined = false;

  explicit Impl(ClientOptions options)
      : clock(options.clock != nullptr ? *options.clock : SteadyClock::instance()), max_outstanding(options.max_outstanding) {
    on_complete = std::move(options.on_complete);
    EngineOptions eo = std::move(options.engine);
    eo.input_path.clear();
    eo.output_path.clear();
    eo.journal_path = options.journal_path.empty() ? EngineOptions::kJournalInMemory : options.journal_path;
    eo.record_outcomes = false;
    eo.ordered = false;
    eo.retry_failed = false;
    eo.overwrite = false;
    // Every request taken is read at once: the lanes are where priority and deadlines act,
    // and max_outstanding is the bound.
    eo.lookahead = static_cast<std::size_t>(-1);
    eo.progress.quiet = true;
    if (options.messages == nullptr) {
      null_stream.reset(std::fopen("/dev/null", "we"));
      if (!null_stream) throw Error("cannot open /dev/null", exit_code::internal);
      eo.progress.stream = null_stream.get();
    } else {
      eo.progress.stream = options.messages;
    }
    // The stop's facts (the refusal ...) for the words of later refusals; the caller's hook too.
    eo.on_event = [this, theirs = std::move(eo.on_event)](const JobEvent& ev) {
      if (ev.kind == JobEvent::Kind::stopped) {
        const std::lock_guard lock(mu);
        stopped = ev;
      }
      if (theirs) theirs(ev);
    };
    if (options.on_sent) {  // after the caller's own admit hook, when it lets the request go
      eo.admit = [this, theirs = std::move(eo.admit), on_sent = std::move(options.on_sent)](const Request& r) {
        const EngineOptions::Admit verdict = theirs ? theirs(r) : EngineOptions::Admit::yes;
        if (verdict != EngineOptions::Admit::yes) return verdict;
        std::string id;
        {
          const std::lock_guard lock(mu);
          const auto it = pending.find(r.line_no);
          if (it != pending.end() && !it->second.sent) {
            it->second.sent = true;
            id = it->second.id;
          }
        }
        if (!id.empty()) on_sent(id);
        return verdict;
      };
    }
    eo.extra_sinks.clear();
    eo.extra_sinks.push_back(std::make_unique<CompletionSink>(*this));
    eo.source = std::make_unique<QueueSource>(*this);
    engine = std::make_unique<Engine>(std::move(eo), clock);
    if (options.driven) {
      driven = true;
      on_next_turn = std::move(options.on_next_turn);
      engine->begin();  // throws what run() would at start
      const std::lock_guard lock(mu);
      started = true;
      return;
    }
    thread = std::thread([this] { run_engine(); });
    std::unique_lock lock(mu);
    cv.wait(lock, [this] { return started || finished; });
    if (start_error) {
      lock.unlock();
      thread.join();
      joined = true;
      std::rethrow_exception(start_error);
    }
  }

  void deliver(Completion&& c) {
    if (on_complete) {
      on_complete(std::move(c));
    } else {
      done.push(std::move(c));
    }
  }

  [[nodiscard]] Completion cancelled(Pending& p, std::string message) const {
    Completion c;
    c.outcome.custom_id = std::move(p.id);
    c.outcome.error = ErrorKind::cancelled;
    c.outcome.error_message = std::move(message);
    c.total = clock.now() - p.submitted_at;
    return c;
  }

  // mu held. The request is no longer outstanding.
  Pending forget(std::unordered_map<std::uint64_t, Pending>::iterator it) {
    Pending p = std::move(it->second);
    pending.erase(it);
    seq_of.erase(p.id);
    return p;
  }

  // ---- callers' side -------------------------------------------------------------------------

  Submitted submit(Submission s) {
    if (s.id.empty()) return refused(Refusal::invalid, "no id: every submission needs one (cancel() names it)");
    InputOptions input;
    input.default_endpoint = s.endpoint;
    ParsedLine parsed = parse_input_line(s.body, 1, input);
    if (!parsed.request) return refused(Refusal::invalid, without_line_prefix(parsed.error_message));
    Request& req = *parsed.request;
    if (req.body.size() != trimmed(s.body).size()) {
      return refused(Refusal::invalid, "the body has custom_id, url or body fields: a Batch API line, not a request body");
    }
    if (!s.model.empty()) req.model = std::move(s.model);
    if (req.model.empty()) return refused(Refusal::invalid, "no model: the body has no \"model\" and Submission::model is empty");
    const TimePoint now = clock.now();

    const std::lock_guard lock(mu);
    if (closed) return refused(Refusal::closed, closed_reason);
    if (pending.size() >= max_outstanding) {
      return refused(Refusal::full, std::to_string(pending.size()) + " requests are outstanding, the most ClientOptions::max_outstanding allows");
    }
    if (seq_of.contains(s.id)) return refused(Refusal::duplicate_id, "a request with the id \"" + s.id + "\" is not completed yet");
    const std::uint64_t seq = next_seq++;
    req.custom_id = std::to_string(seq);
    req.line_no = seq;
    seq_of.emplace(s.id, seq);
    pending.emplace(seq, Pending{std::move(s.id), now, false, false, false});
    if (handoff.empty()) submitted.set();
    handoff.push_back(Queued{seq, std::move(req), s.priority, s.deadline, std::move(s.context), s.max_attempts});
    return {};
  }

  Submitted submit_and_turn(Submission s) {
    Submitted taken = submit(std::move(s));
    if (taken && driven) drive();
    return taken;
  }

  bool cancel(std::string_view id) {
    std::unique_lock lock(mu);
    const auto s = seq_of.find(std::string(id));
    if (s == seq_of.end()) return false;
    const std::uint64_t seq = s->second;
    const auto it = pending.find(seq);
    if (!it->second.in_engine) {
      // Still on its way: the engine skips it (it is no longer pending), never sends it.
      Pending p = forget(it);
      lock.unlock();
      deliver(cancelled(p, "cancelled by the caller"));
      return true;
    }
    if (!it->second.cancel_sent) {
      it->second.cancel_sent = true;
      lock.unlock();
      engine->cancel(std::to_string(seq));  // its Completion comes from the engine
      if (driven) drive();
    }
    return true;
  }

  // ---- driven: the caller's threads turn the engine -------------------------------------------

  // Turns until nothing is left to do now: a turn admits what it can before it takes the
  // transport's answers, and answers free room, so it turns again while answers came (turns()).
  // Bounded: under load other threads keep asking for turns, and the thread turning must get
  // back to its own event loop (its calls' attempts wait there); after kMaxPasses it leaves
  // what is left to the next turn, asked for at once through on_next_turn.
  static constexpr int kMaxPasses = 8;
  struct Release {
    std::atomic<bool>& flag;
    ~Release() { flag.store(false); }  // whatever happens in the turn (a callback that throws)
  };
  void drive() {
    if (!driven) return;
    turn_wanted.store(true);
    int passes = 0;
    while (turn_wanted.load()) {
      bool expected = false;
      if (!turning.compare_exchange_strong(expected, true)) return;  // the thread turning takes one more
      const Release release{turning};
      std::optional<TimePoint> next;
      bool yielded = false;
      while (turn_wanted.exchange(false)) {
        if (over) continue;
        if (passes++ == kMaxPasses) {
          turn_wanted.store(true);
          yielded = true;
          break;
        }
        next = turns();
      }
      if (yielded && !over) next = clock.now();
      if (next && !over && on_next_turn) on_next_turn(*next);
      if (yielded) return;
    }
  }

  // `turning` held. The next turn's time, or nullopt when the engine is over.
  std::optional<TimePoint> turns(Duration max_wait = Duration::zero()) {
    try {
      for (int i = 0; i < 16; ++i) {
        const Engine::Turn t = engine->turn(max_wait);
        if (t.over) break;
        if (t.answers == 0) return t.next;
        if (i == 15) return clock.now();  // its answers may have freed room: the next turn at once
      }
      over = true;
      conclude(engine->end(), "");
    } catch (const std::exception& e) {
      over = true;
      conclude(std::nullopt, e.what());
    }
    return std::nullopt;
  }

  // ---- the engine's side (its thread) ----------------------------------------------------------

  SourceStatus next_for_engine(SourceItem& item) {
    const std::lock_guard lock(mu);
    if (!started) {
      started = true;
      cv.notify_all();
    }
    while (!handoff.empty()) {
      Queued q = std::move(handoff.front());
      handoff.pop_front();
      const auto it = pending.find(q.seq);
      if (it == pending.end()) continue;  // cancelled before the engine took it
      it->second.in_engine = true;
      item = SourceItem{};
      item.line_no = q.seq;
      item.parsed.request = std::move(q.request);
      item.priority = q.priority;
      item.deadline = q.deadline;
      item.context = std::move(q.context);
      item.max_attempts = q.max_attempts;
      return SourceStatus::item;
    }
    submitted.clear();  // empty, under the lock: no push can have set it since
    return input_closed ? SourceStatus::end : SourceStatus::none_yet;
  }

  // The engine stops (close(), or a stop of its own: quota, a bad key ...) and reads no
  // more: submit() refuses from now on, and the flag goes quiet, or the engine's wait would
  // return at once until its end. What waits in `handoff` completes when run() returns.
  void engine_stopping() noexcept {
    const std::lock_guard lock(mu);
    if (!closed) {
      closed = true;
      closed_reason = "the engine is stopping";
    }
    submitted.clear();
  }

  void on_outcome(const Outcome& outcome, const store::RowContext& context) {
    Pending p;
    {
      const std::lock_guard lock(mu);
      const auto it = pending.find(outcome.line_no);
      if (it == pending.end()) return;
      p = forget(it);
    }
    Completion c;
    c.outcome = outcome;
    c.outcome.custom_id = std::move(p.id);
    c.outcome.line_no = 0;
    if (c.outcome.error_message.starts_with("line ")) c.outcome.error_message = without_line_prefix(c.outcome.error_message);
    c.total = clock.now() - p.submitted_at;
    // The engine counts from when it took the request; before that it waited in `handoff`.
    if (context.queued.count() > 0) c.queued = context.queued + (c.total - context.total);
    deliver(std::move(c));
  }

  void run_engine() {
    try {
      conclude(engine->run(), "");
    } catch (const std::exception& e) {
      {
        const std::lock_guard lock(mu);
        if (!started) start_error = std::current_exception();
      }
      conclude(std::nullopt, e.what());
    }
  }

  // The engine's loop ended, with its summary or an exception's words.
  void conclude(std::optional<RunSummary> s, const std::string& error) {
    std::string why = "the engine stopped: " + error;
    if (s) {
      const std::lock_guard lock(mu);
      // close() stops the engine as an interruption; any other stop is the engine's own.
      why = s->stop == StopCause::none || s->stop == StopCause::interrupted ? "the client is closed" : "the engine stopped: " + s->stop_reason;
      if (why != "the client is closed") {
        const std::string& fact = !stopped.refusal.empty() ? stopped.refusal : stopped.detail;
        if (!fact.empty() && s->stop_reason.find(fact) == std::string::npos) why += " (" + fact + ")";
      }
      summary = std::move(*s);
    }
    // What the engine did not finish (never taken, or it stopped) completes as cancelled,
    // in submission order; submit() refuses from now on.
    std::vector<std::pair<std::uint64_t, Pending>> left;
    std::string message;
    {
      const std::lock_guard lock(mu);
      closed = true;
      closed_reason = why;
      message = closing ? "cancelled by close()" : "not finished: " + why;
      handoff.clear();
      for (auto& [seq, p] : pending) left.emplace_back(seq, std::move(p));
      pending.clear();
      seq_of.clear();
      finished = true;
      cv.notify_all();
    }
    std::sort(left.begin(), left.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [seq, p] : left) deliver(cancelled(p, message));
  }

  // Driven, in close(): takes the turns from whoever has them, and turns (waiting for the
  // transport's answers up to 10 ms a turn) until the engine is over.
  void turn_to_the_end() {
    for (;;) {
      bool expected = false;
      if (turning.compare_exchange_strong(expected, true)) break;
      std::this_thread::yield();
    }
    while (!over) turns(std::chrono::milliseconds(10));
    turning.store(false);
  }

  RunSummary close(CloseMode mode) {
    const std::lock_guard once(close_mu);
    if (!joined) {
      std::vector<std::pair<std::uint64_t, Pending>> dropped;
      {
        const std::lock_guard lock(mu);
        closed = true;
        closing = true;
        input_closed = true;
        submitted.set();  // the source answers `end` once `handoff` is empty
        if (mode != CloseMode::drain) {
          for (Queued& q : handoff) {
            const auto it = pending.find(q.seq);
            if (it != pending.end()) dropped.emplace_back(q.seq, forget(it));
          }
          handoff.clear();
        }
      }
      for (auto& [seq, p] : dropped) deliver(cancelled(p, "cancelled by close()"));
      if (mode != CloseMode::drain) engine->request_stop();  // the engine's queued ones are cancelled
      if (mode == CloseMode::abort) engine->request_stop();  // and those in flight aborted
      if (driven) {
        turn_to_the_end();
      } else {
        thread.join();
      }
      joined = true;
    }
    const std::lock_guard lock(mu);
    return summary;
  }
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Client::~Client() {
  if (impl_) impl_->close(CloseMode::abort);
}

Submitted Client::submit(Submission submission) { return impl_->submit_and_turn(std::move(submission)); }

bool Client::cancel(std::string_view id) { return impl_->cancel(id); }

std::size_t Client::poll(std::vector<Completion>& out, std::size_t max) { return impl_->done.pop(out, max); }

int Client::completion_fd() const noexcept { return impl_->done.ready_fd(); }

bool Client::wait(std::chrono::milliseconds timeout) { return wait_readable(impl_->done.ready_fd(), timeout); }

void Client::drive() { impl_->drive(); }

std::size_t Client::outstanding() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->pending.size();
}

RunSummary Client::close(CloseMode mode) { return impl_->close(mode); }

}  // namespace floodgate::engine
