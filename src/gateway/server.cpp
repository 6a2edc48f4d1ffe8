// <utility> first: Boost 1.74's asio/awaitable.hpp uses std::exchange without including it.
#include <utility>

// GCC 12 takes the sized operator delete of Asio's coroutine frames for a mismatch with their
// operator new once Gateway::handle's frame grew (a false positive: both are the frame's own).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include "floodgate/gateway/server.hpp"

#include <sys/socket.h>

#include <atomic>
#include <limits>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <map>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "floodgate/core/batch_io.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/core/request.hpp"
#include "floodgate/core/text.hpp"
#include "floodgate/engine/client.hpp"
#include "floodgate/engine/estimator.hpp"
#include "floodgate/gateway/key_limits.hpp"
#include "floodgate/engine/response.hpp"
#include "floodgate/gateway/metrics.hpp"
#include "floodgate/limit/limiter_set.hpp"
#include "floodgate/gateway/relay.hpp"
#include "floodgate/gateway/routing.hpp"
#include "engine_transport.hpp"
#include "net/listeners.hpp"
#include "proxy.hpp"

namespace floodgate::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using Head = bhttp::request_header<>;
using proxy::StreamedBody;

constexpr std::string_view kLaneHeader = "x-floodgate-lane";
// The model an upload is paced as when its form has no `model` field in its first 64 KiB.
constexpr std::string_view kDefaultUploadModel = "whisper-1";

// What the gateway answers a client.
struct Answer {
  Answer() = default;
  Answer(int s, std::string type, std::string text, std::vector<std::pair<std::string, std::string>> extra)
      : status(s), content_type(std::move(type)), body(std::move(text)), headers(std::move(extra)) {}
  int status = 200;  // 499 (as nginx logs it): the client hung up, nothing is written
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool written = false;         // the relay wrote it to the client already
  bool keep_alive = true;       // false: the connection ends after it
  std::uint64_t bytes_out = 0;  // body bytes written by the relay
  std::optional<Usage> usage;
};

Answer error_answer(int status, std::string_view message, std::string_view type, std::string_view code) {
  return Answer{status, "application/json", openai_error_body(message, type, code), {}};
}

std::string_view field(const Head& req, std::string_view name) {
  const auto it = req.find(beast::string_view(name.data(), name.size()));
  return it == req.end() ? std::string_view{} : std::string_view(it->value().data(), it->value().size());
}

// The Bearer token of an Authorization header ("" when there is none).
std::string_view bearer_of(std::string_view authorization) {
  authorization = trim(authorization);
  if (authorization.size() < 7 || !iequals(authorization.substr(0, 7), "bearer ")) return {};
  return trim(authorization.substr(7));
}

// A request waiting for its lane, then for its upstream answer. Touched only on its
// connection's executor: what is decided under Gateway::mu_ reaches it through asio::post,
// which runs after the connection's coroutine has suspended on `timer` (same thread), so no
// wake-up is lost.
struct Waiter {
  explicit Waiter(const asio::any_io_executor& ex) : executor(ex), timer(ex) {}
  enum class State { waiting, admitted, refused, cancelled, answered };
  asio::any_io_executor executor;
  asio::steady_timer timer;
  State state = State::waiting;
  Refusal refusal;
  Duration waited{0};
  std::size_t lane = 0;
  RoomId room = Room::kRelay;  // where the lanes hand it: its model's engine queue, or the relay
  bool owed = false;           // handed over for its lane's minimum share
  std::optional<std::chrono::nanoseconds> upstream_elapsed;  // it went upstream
  std::chrono::steady_clock::time_point arrived{};           // its request was read (handle())
  // Waits that are not the gateway's own time: its key's sub-limit, its lane, the engine's
  // limiter until it admitted the call (not the turn and the hop after that).
  std::chrono::nanoseconds not_own{0};
  std::optional<std::chrono::nanoseconds> own;               // the gateway's own time, when it relayed the answer
  // Its answer was relayed (its last byte written at `relayed_at`), after `upstream_wait`
  // waiting for the upstream's bytes: its own time is what is left of arrived..relayed_at
  // after that and its waits (metrics.hpp, floodgate_gateway_own_seconds).
  void relayed(std::chrono::steady_clock::time_point relayed_at, std::chrono::nanoseconds upstream_wait) {
    own = (relayed_at - arrived) - not_own - upstream_wait;
  }
  std::optional<engine::Completion> completion;              // its outcome from the engine

  static void wake(const std::shared_ptr<Waiter>& w) { w->timer.cancel(); }
};

// One request as the session read it: its head, and its body either read whole or still in
// the client's socket (the streamed routes: audio uploads and everything proxied as is).
struct Incoming {
  const Head& head;
  bool keep_alive = true;  // the client's request allows a next one
  const std::string* body = nullptr;
  StreamedBody* streamed = nullptr;
  tcp::socket& socket;
  beast::flat_buffer& buffer;
  proxy::Pool& pool;
};

void prepare_call(const Incoming& in, proxy::Call& call);

// A paced call as the engine's transport sees it (engine_transport.hpp): the engine's
// "attempt N may go" and "give attempt N up" are posted to the connection's executor, where
// the call's coroutine (Gateway::through_engine) runs each attempt through the relay.
struct PacedCall final : EngineCall, std::enable_shared_from_this<PacedCall> {
  explicit PacedCall(std::shared_ptr<Waiter> waiter) : w(std::move(waiter)) {}
  std::shared_ptr<Waiter> w;
  // Touched on the connection's executor only.
  std::deque<std::pair<std::shared_ptr<EngineBox>, std::uint64_t>> go;  // attempts the engine let go
  std::uint64_t current = 0;                                          // the attempt being sent (0: none)
  std::shared_ptr<proxy::Abort> abort_current = std::make_shared<proxy::Abort>();
  bool gone = false;  // the client hung up
  std::chrono::steady_clock::time_point submitted_at{};
  bool sent = false;  // an attempt went
  // The last attempt: relayed (the client has its answer), or held (its answer, for the
  // client when the engine gives up).
  std::optional<proxy::Call> last;
  std::vector<std::pair<std::string, std::string>> own;  // the gateway's headers on the answer
  std::chrono::nanoseconds upstream_wait{0};             // of every attempt (proxy::Call::upstream_wait)
  std::uint32_t attempts = 0;                            // sent so far
  // When the engine's limiter let its first attempt go (ClientOptions::on_sent, in a turn on
  // any thread; read on the call's own after the "go" posted from that turn): 0 until then.
  std::atomic<std::int64_t> admitted_at{0};

  void start(const std::shared_ptr<EngineBox>& box, std::uint64_t tag) override {
    asio::post(w->executor, [self = shared_from_this(), box, tag] {
      self->go.emplace_back(box, tag);
      Waiter::wake(self->w);
    });
  }
  void abort(std::uint64_t tag) override {
    asio::post(w->executor, [self = shared_from_this(), tag] {
      if (self->current != tag) return;
      self->abort_current->requested = true;
      if (self->abort_current->upstream != nullptr) self->abort_current->upstream->close();
    });
  }
};

// A job-level stop of the engine: what paced calls are answered until `until`.
struct EngineStop {
  engine::StopCause cause = engine::StopCause::none;
  std::string detail;  // the quota code, or the refusal ("401 invalid_api_key"): never a key
  TimePoint until{};
};

class Gateway {
 public:
  // `turns`: the executor of the timer that turns the engines when nothing else does.
  Gateway(ServeOptions options, std::size_t threads, const asio::any_io_executor& turns)
      : options_(std::move(options)),
        clock_(options_.clock != nullptr ? *options_.clock : SteadyClock::instance()),
        lanes_(options_.lanes),
        room_(options_.max_in_flight, kUnsentPerLane),
        upstream_(options_.upstream),
        prices_(options_.prices != nullptr ? *options_.prices : cost::PriceTable::builtin()),
        turns_(turns),
        turn_timer_(std::in_place, turns) {
    for (std::size_t i = 0; i < threads; ++i) pools_.push_back(std::make_unique<proxy::Pool>());
    if (options_.engine) {
      // The keys' sub-limits count tokens as the engine does, and take shares of its limits.
      engine::EngineOptions configured;
      configured.base_url = options_.upstream.base_url;
      if (options_.configure_engine) options_.configure_engine(configured);
      limits_config_ = configured.limits;
      if (configured.estimator) estimator_ = configured.estimator;
      worst_case_completion_tokens_ = configured.worst_case_completion_tokens;
      engine_ = start_engine();
    }
  }

  [[nodiscard]] const ServeOptions& options() const noexcept { return options_; }
  [[nodiscard]] bool stopping() const noexcept { return stopping_; }
  void begin_stop() noexcept { stopping_ = true; }
  [[nodiscard]] std::int64_t active() const noexcept { return active_; }
  [[nodiscard]] proxy::Pool& pool(std::size_t thread) noexcept { return *pools_[thread]; }

  // Before the io_contexts go: every pooled upstream connection and every waiter (their
  // sockets and timers belong to the contexts).
  void release() {
    std::vector<std::shared_ptr<engine::Client>> engines;
    {
      const std::lock_guard lock(engine_mu_);
      engines = std::move(retired_);
      if (engine_) engines.push_back(std::move(engine_));
    }
    for (const auto& e : engines) e->close(engine::CloseMode::abort);
    // The timer goes with what belongs to the contexts: the gateway outlives them (a timer
    // destroyed after its io_context is a use after free).
    turn_timer_.reset();
    pools_.clear();
    const std::lock_guard lock(mu_);
    waiters_.clear();
  }

  asio::awaitable<Answer> handle(Incoming in);

  std::atomic<std::int64_t> active_{0};
  std::atomic<std::int64_t> connections_{0};

 private:
  // Waits for the lane: nullopt when admitted, the refusal when refused; the Waiter's state
  // says cancelled when the client hung up meanwhile.
  asio::awaitable<std::optional<Refusal>> wait_for_lane(const std::shared_ptr<Waiter>& w, std::size_t lane, RoomId room,
                                                        tcp::socket& socket);
  void watch_hang_up(const std::shared_ptr<Waiter>& w, TicketId id, tcp::socket& socket);
  // Sends the request upstream and relays the answer (proxy.hpp); what is left to write
  // comes back as an Answer (written = false: a 502 or 413 of the gateway's own).
  asio::awaitable<Answer> forward(const Incoming& in, Route route, const std::shared_ptr<Waiter>& w,
                                  std::vector<std::pair<std::string, std::string>> own_headers);
  // A paced call through the engine (its limiter, retries and breaker): each attempt the
  // engine lets go runs here, through the relay (engine_transport.hpp).
  // `model`: an upload's (the form's first 64 KiB, or the default).
  asio::awaitable<Answer> through_engine(const Incoming& in, Route route, const std::string& model, std::size_t lane,
                                         const std::shared_ptr<Waiter>& w, std::vector<std::pair<std::string, std::string>> own);
  // One attempt of `call`: sent and relayed (or held), its answer handed to the engine.
  asio::awaitable<void> attempt(const Incoming& in, PacedCall& call, const std::shared_ptr<EngineBox>& box, std::uint64_t tag);
  // What the relay left to write for a call (nothing when it wrote the answer).
  Answer answer_of(const Incoming& in, const proxy::Call& call);
  void completed(engine::Completion&& c);
  // The client key's side of a paced call before its lane (usage.hpp, key_limits.hpp): its
  // budget (refused at once) and its sub-limits (waits for them up to the lane's max_wait).
  // An answer when refused; else what it holds is in `held`, for account().
  struct Held {
    double reserved_usd = 0;
    std::optional<KeyLimiter::Ticket> ticket;
  };
  asio::awaitable<std::optional<Answer>> key_limits(const ClientKey& key, Route route, const std::string& model,
                                                    const std::string* body, std::size_t lane, tcp::socket& socket, Held& held);
  // After the answer: the call's row in the usage store, what `held` held given back.
  void account(const Answer& answer, const ClientKey* key, const std::string& key_id, Route route, std::string_view lane,
               std::string model, const std::shared_ptr<Waiter>& w, const Held& held);
  [[nodiscard]] Answer usage_answer(const ClientKey* key) const;
  // The upstream's limits of `model` (0: not known), of which a key's shares are taken.
  [[nodiscard]] limit::Limits upstream_limits_of(std::string_view model) const;
  // The engine sends (or has finished unsent) the request with this id: the room it held in
  // its lane's engine queue is given back, and the lanes pull again. Any thread; no lock held.
  void left_engine_queue(const std::string& id);
  void give_back(std::size_t lane, RoomId room);
  // Requests the engine has sent and not answered yet (outstanding less unsent).
  [[nodiscard]] std::size_t engine_sent();
  // The engine: a new Client (its own EngineTransport), wired to this gateway.
  std::shared_ptr<engine::Client> start_engine();
  // The engines are driven (engine::ClientOptions::driven): a call turns its engine on its
  // own connection's thread when it submits, when an attempt's answer is in and when it
  // cancels, so a call the limiter admits at once never leaves its thread. What no call
  // brings (a pace slot, a retry's delay, a deadline, the 250 ms checks) comes by this timer:
  // next_turn() (any thread) arms it for the earliest time an engine asked for.
  void next_turn(TimePoint at);
  void arm_turn_timer();
  void turn_engines();
  // The Client to submit to; null while a job-level stop holds (stop_ says which). After
  // the stop's --stop-recheck a fresh Client is started: the next call is its probe.
  std::shared_ptr<engine::Client> current_engine(std::optional<EngineStop>& stop);
  void on_engine_event(std::uint64_t generation, const engine::JobEvent& ev);
  Answer stop_answer(const EngineStop& stop, const std::vector<std::pair<std::string, std::string>>& own) const;
  // An upstream 401, on any route (never relayed: OpenAI's words for it name part of the
  // gateway's key): stop_answer's 502 upstream_key_refused, with the upstream's error code
  // only, read from `held`'s held body (null, or nothing held: no code).
  Answer key_refused(const proxy::Call* held, const std::vector<std::pair<std::string, std::string>>& own) const;
  // Hands upstream what the room allows and tells the expired; under mu_. `self`: the waiter
  // of the calling coroutine, on its own executor: admitted in place rather than by a post.
  void pump_locked(TimePoint now, Waiter* self = nullptr);
  void refuse_locked(const Expired& expired);
  void log(const Head& req, std::uint64_t bytes_in, const Answer& answer, std::string_view lane,
           const std::string& key_id, const std::shared_ptr<Waiter>& w);

  ServeOptions options_;
  const Clock& clock_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  Lanes lanes_;                                                     // under mu_
  std::unordered_map<TicketId, std::shared_ptr<Waiter>> waiters_;  // under mu_: waiting in a lane
  Room room_;                                                       // under mu_: what the lanes may hand over
  TicketId next_id_ = 0;                                            // under mu_
  HttpCounts counts_;                                               // under mu_
  std::mutex log_mu_;
  proxy::Upstream upstream_;
  std::vector<std::unique_ptr<proxy::Pool>> pools_;  // pools_[i]: the connections of context i
  // The engine's limiters as /metrics shows them (metrics.hpp); each engine has its own.
  LimiterBoard board_;
  std::mutex engine_mu_;
  std::shared_ptr<engine::Client> engine_;                   // under engine_mu_; null while stopped
  std::uint64_t engine_generation_ = 0;                      // under engine_mu_: engine_'s
  std::optional<EngineStop> stop_;                           // under engine_mu_: the last job-level stop
  std::vector<std::shared_ptr<engine::Client>> retired_;     // under engine_mu_: stopped ones, closed at release()
  std::unordered_map<std::string, std::shared_ptr<PacedCall>> engine_waiting_;  // under engine_mu_
  // Submitted and not sent yet: the lane and room each holds (under engine_mu_).
  std::unordered_map<std::string, std::pair<std::size_t, RoomId>> engine_unsent_;
  static constexpr std::size_t kUnsentPerLane = 2;
  std::atomic<std::uint64_t> engine_ids_{0};
  const cost::PriceTable& prices_;
  KeyLimiter key_limiter_;
  engine::Estimator estimator_ = engine::conservative_estimator();
  limit::LimitsConfig limits_config_;  // the engine's: --rpm, --tpm, --limits FILE ...
  std::uint64_t worst_case_completion_tokens_ = 4096;  // a budget's worst case without max_tokens
  asio::any_io_executor turns_;                    // turn_timer_'s
  std::optional<asio::steady_timer> turn_timer_;  // on turns_ only; gone at release()
  static constexpr TimePoint::rep kNoTurn = std::numeric_limits<TimePoint::rep>::max();
  std::atomic<TimePoint::rep> turn_at_{kNoTurn};  // when turn_timer_ is (to be) armed for
};

void Gateway::next_turn(TimePoint at) {
  TimePoint::rep armed = turn_at_.load();
  while (at.time_since_epoch().count() < armed) {
    if (turn_at_.compare_exchange_weak(armed, at.time_since_epoch().count())) {
      asio::post(turns_, [this] { arm_turn_timer(); });
      return;
    }
  }
}

void Gateway::arm_turn_timer() {
  const TimePoint::rep at = turn_at_.load();
  if (at == kNoTurn) return;  // it fired meanwhile and turned the engines, which asked again
  if (!turn_timer_) return;  // released
  turn_timer_->expires_at(TimePoint(TimePoint::duration(at)));
  turn_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;  // re-armed for an earlier time, or the gateway is going
    turn_at_.store(kNoTurn);  // before the turns: they ask for the next one
    turn_engines();
  });
}

void Gateway::turn_engines() {
  std::vector<std::shared_ptr<engine::Client>> engines;
  {
    const std::lock_guard lock(engine_mu_);
    engines = retired_;
    if (engine_) engines.push_back(engine_);
  }
  for (const auto& e : engines) e->drive();
}

void Gateway::left_engine_queue(const std::string& id) {
  std::pair<std::size_t, RoomId> held;
  {
    const std::lock_guard lock(engine_mu_);
    const auto it = engine_unsent_.find(id);
    if (it == engine_unsent_.end()) return;  // sent already: its room was given back then
    held = it->second;
    engine_unsent_.erase(it);
  }
  give_back(held.first, held.second);
}

void Gateway::give_back(std::size_t lane, RoomId room) {
  const std::lock_guard lock(mu_);
  room_.give_back(lane, room);
  pump_locked(clock_.now());
}

std::size_t Gateway::engine_sent() {
  std::vector<std::shared_ptr<engine::Client>> engines;
  std::size_t unsent = 0;
  {
    const std::lock_guard lock(engine_mu_);
    unsent = engine_unsent_.size();
    engines = retired_;
    if (engine_) engines.push_back(engine_);
  }
  std::size_t outstanding = 0;
  for (const auto& e : engines) outstanding += e->outstanding();
  return outstanding > unsent ? outstanding - unsent : 0;
}

std::string gateway_option_words(std::string_view option) {
  if (option == "transport.total_timeout") return "--upstream-timeout";
  if (option == "transport.idle_timeout") return "--upstream-timeout";
  if (option == "max_in_flight") return "--max-in-flight";
  return "the gateway's engine option " + std::string(option);
}

std::shared_ptr<engine::Client> Gateway::start_engine() {
  const std::uint64_t generation = ++engine_generation_;
  engine::ClientOptions co;
  co.engine.base_url = options_.upstream.base_url;
  co.engine.credentials = {options_.upstream.api_key, options_.upstream.organization, options_.upstream.project};
  if (options_.configure_engine) options_.configure_engine(co.engine);
  co.engine.max_in_flight = options_.max_in_flight;
  // A gateway outlives an upstream that is down for a while: no job-level stop for it.
  co.engine.unreachable_after = Duration::zero();
  co.engine.outage_limit = Duration::zero();
  // An even pace that never meets the window rule: at the limit's own pace a batch flood
  // fills the window once a minute and everything, interactive calls too, waits 1.6 s
  // (at 600/min; limit/rate_limiter.hpp, pace_within_window).
  co.engine.limiter.pace_within_window = true;
  co.engine.transport.total_timeout = options_.upstream.timeout;
  co.engine.option_words = gateway_option_words;
  // Every attempt goes through the gateway's own relay (engine_transport.hpp).
  co.engine.make_transport = [](const http::TransportOptions& t) { return std::make_unique<EngineTransport>(t); };
  co.driven = true;
  co.on_next_turn = [this](TimePoint at) { next_turn(at); };
  co.engine.on_event = [this, generation](const engine::JobEvent& ev) { on_engine_event(generation, ev); };
  co.on_complete = [this](engine::Completion&& c) { completed(std::move(c)); };
  // The room signal (lanes.hpp): a request the engine is about to send leaves its queue,
  // and the lanes may hand it the next one.
  co.on_sent = [this](const std::string& id) {
    {
      const std::lock_guard lock(engine_mu_);
      if (const auto it = engine_waiting_.find(id); it != engine_waiting_.end()) {
        it->second->admitted_at = std::chrono::steady_clock::now().time_since_epoch().count();
      }
    }
    left_engine_queue(id);
  };
  // Each model's admission, watched: /metrics shows its headroom (metrics.hpp). The limiters
  // the engine would build itself, from the same options, one set per engine (a retired
  // engine may still settle its calls); its admissions keep it alive.
  auto limiters = std::make_shared<limit::LimiterSet>(co.engine.limits, co.engine.limiter);
  co.engine.make_admission = [this, limiters, inner = std::move(co.engine.make_admission)](const std::string& model) {
    return board_.watch(model, inner ? inner(model) : std::make_unique<limit::LocalAdmission>(limiters->for_model(model)), limiters);
  };
  return std::make_shared<engine::Client>(std::move(co));
}

// In a turn of the engine. A quota or a refused key stops the Client for good: the calls it
// had are cancelled (answered with the stop's error), and so is every paced call until
// --stop-recheck has passed; then a fresh Client takes the next one (current_engine()).
void Gateway::on_engine_event(std::uint64_t generation, const engine::JobEvent& ev) {
  using Kind = engine::JobEvent::Kind;
  if (ev.kind != Kind::insufficient_quota && ev.kind != Kind::rejected && ev.kind != Kind::stopped) return;
  const std::lock_guard lock(engine_mu_);
  if (generation != engine_generation_ || stopping_) return;
  if (ev.kind == Kind::stopped && ev.cause != engine::StopCause::insufficient_quota && ev.cause != engine::StopCause::rejected &&
      ev.cause != engine::StopCause::budget) {
    return;
  }
  if (ev.kind == Kind::stopped && stop_ && stop_->until > clock_.now()) return;  // already noted by its event
  EngineStop stop;
  stop.cause = ev.kind == Kind::insufficient_quota ? engine::StopCause::insufficient_quota
               : ev.kind == Kind::rejected          ? engine::StopCause::rejected
                                                    : ev.cause;
  stop.detail = ev.kind == Kind::rejected || (ev.kind == Kind::stopped && !ev.refusal.empty()) ? ev.refusal : ev.detail;
  stop.until = clock_.now() + options_.stop_recheck;
  stop_ = std::move(stop);
  if (engine_) retired_.push_back(std::move(engine_));
}

std::shared_ptr<engine::Client> Gateway::current_engine(std::optional<EngineStop>& stop) {
  const std::lock_guard lock(engine_mu_);
  if (engine_) return engine_;
  if (stop_ && clock_.now() < stop_->until) {
    stop = stop_;
    return nullptr;
  }
  if (stopping_) return nullptr;
  engine_ = start_engine();  // its first request is the probe
  return engine_;
}

Answer Gateway::stop_answer(const EngineStop& stop, const std::vector<std::pair<std::string, std::string>>& own) const {
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(stop.until - clock_.now()).count() + 1;
  const std::string when = stop.until <= clock_.now() ? std::string()
                           : " The gateway sends the next call upstream in " + std::to_string(std::max<std::int64_t>(left, 1)) +
                                 " s (--stop-recheck) to check again.";
  Answer answer;
  if (stop.cause == engine::StopCause::insufficient_quota) {
    answer = error_answer(429,
                          "You exceeded your current quota, please check your plan and billing details. (floodgate gateway: "
                          "the upstream answered " + (stop.detail.empty() ? std::string("insufficient_quota") : stop.detail) + ".)" + when,
                          "insufficient_quota", "insufficient_quota");
  } else if (stop.cause == engine::StopCause::rejected) {
    answer = error_answer(502,
                          "The upstream API refuses this gateway's own key (" + stop.detail +
                              "): check $OPENAI_API_KEY or --upstream-key-file of floodgate serve." + when,
                          "server_error", "upstream_key_refused");
  } else {
    answer = error_answer(503, "The gateway's engine stopped (" + std::string(engine::to_string(stop.cause)) + ")." + when,
                          "server_error", "engine_stopped");
  }
  answer.headers = own;
  return answer;
}

Answer Gateway::key_refused(const proxy::Call* held, const std::vector<std::pair<std::string, std::string>>& own) const {
  const std::string code = held != nullptr && held->held ? engine::inspect_response_body(held->held_body).error_code : "";
  return stop_answer(EngineStop{engine::StopCause::rejected, "401" + (code.empty() ? "" : " " + code), clock_.now()}, own);
}

void Gateway::completed(engine::Completion&& c) {
  left_engine_queue(c.outcome.custom_id);  // finished unsent (cancelled, max_wait, a stop)
  std::shared_ptr<PacedCall> call;
  {
    const std::lock_guard lock(engine_mu_);
    const auto it = engine_waiting_.find(c.outcome.custom_id);
    if (it == engine_waiting_.end()) return;
    call = std::move(it->second);
    engine_waiting_.erase(it);
  }
  const std::shared_ptr<Waiter>& w = call->w;
  asio::post(w->executor, [w, c = std::move(c)]() mutable {
    w->completion = std::move(c);
    w->state = Waiter::State::answered;
    Waiter::wake(w);
  });
}

// The form field `model` of a multipart upload, from what the client sent so far: read into
// the connection's buffer (up to 64 KiB, or the whole body when shorter) without consuming
// it, so the body parser still reads every byte. Empty when not found there.
asio::awaitable<std::string> sniff_upload_model(const Incoming& in) {
  constexpr std::size_t kSniff = 64 * 1024;
  const auto declared = in.streamed->content_length();
  const std::size_t want = std::min<std::size_t>(kSniff, declared ? static_cast<std::size_t>(*declared) : kSniff);
  const auto find = [&]() -> std::optional<std::string> {
    const std::string_view bytes(static_cast<const char*>(in.buffer.data().data()), in.buffer.size());
    const std::size_t name = bytes.find("name=\"model\"");
    if (name == std::string_view::npos) return std::nullopt;
    const std::size_t start = bytes.find("\r\n\r\n", name);
    if (start == std::string_view::npos) return std::nullopt;
    const std::size_t end = bytes.find("\r\n", start + 4);
    if (end == std::string_view::npos) return std::nullopt;
    return std::string(trim(bytes.substr(start + 4, end - start - 4)));
  };
  while (!in.streamed->is_done()) {
    if (auto model = find()) co_return *model;
    if (in.buffer.size() >= want) break;
    boost::system::error_code ec;
    const std::size_t n = co_await in.socket.async_read_some(in.buffer.prepare(std::max<std::size_t>(want - in.buffer.size(), 4096)),
                                                             asio::redirect_error(asio::use_awaitable, ec));
    in.buffer.commit(n);
    if (ec) break;
  }
  co_return find().value_or("");
}

asio::awaitable<Answer> Gateway::through_engine(const Incoming& in, Route route, const std::string& model, std::size_t lane,
                                                const std::shared_ptr<Waiter>& w, std::vector<std::pair<std::string, std::string>> own) {
  const bool upload = route == Route::audio_transcriptions || route == Route::audio_translations;
  engine::Submission s;
  s.id = "gw-" + std::to_string(++engine_ids_);
  s.priority = w->owed ? 1 : -static_cast<int>(lane);  // Room::priority: a share's request goes first
  const Duration left = lanes_.config(lane).max_wait - w->waited;
  s.deadline = clock_.now() + std::max(left, Duration(std::chrono::milliseconds(1)));
  if (upload) {
    // The engine paces by model; the body stays in the socket, sent once (no retry).
    s.endpoint = Endpoint::audio_transcriptions;
    s.body = R"({"model":")" + model + "\"}";
    s.max_attempts = 1;
  } else {
    s.endpoint = route == Route::chat_completions ? Endpoint::chat_completions
                 : route == Route::embeddings     ? Endpoint::embeddings
                                                  : Endpoint::responses;
    s.body = *in.body;
  }
  auto call = std::make_shared<PacedCall>(w);
  call->own = own;
  s.context = call;
  const std::string id = s.id;
  std::optional<EngineStop> stop;
  const std::shared_ptr<engine::Client> engine = current_engine(stop);
  if (!engine) {
    give_back(lane, w->room);
    co_return stop ? stop_answer(*stop, own) : error_answer(503, "The gateway is shutting down.", "server_error", "");
  }
  {
    const std::lock_guard lock(engine_mu_);
    engine_waiting_.emplace(id, call);
    engine_unsent_.emplace(id, std::make_pair(lane, w->room));
  }
  call->submitted_at = std::chrono::steady_clock::now();
  w->state = Waiter::State::waiting;
  const auto started = std::chrono::steady_clock::now();
  if (const engine::Submitted taken = engine->submit(std::move(s)); !taken) {
    {
      const std::lock_guard lock(engine_mu_);
      engine_waiting_.erase(id);
    }
    left_engine_queue(id);
    if (taken.refusal == engine::Refusal::closed) {
      std::optional<EngineStop> now_stopped;
      if (!current_engine(now_stopped) && now_stopped) co_return stop_answer(*now_stopped, own);
    }
    const bool bad = taken.refusal == engine::Refusal::invalid;
    Answer refused = error_answer(bad ? 400 : 503, (bad ? "The gateway cannot pace this request: " : "The gateway's engine cannot take the request: ") + taken.reason,
                                  bad ? "invalid_request_error" : "server_error", "");
    refused.headers = own;
    co_return refused;
  }
  // A client that hangs up while the engine holds its call (queued, or between attempts)
  // cancels it there; during an attempt the relay's own watch ends the upstream call.
  // (The flag is shared: a handler already queued when the watch is cancelled still runs.)
  auto watching = std::make_shared<bool>(false);
  const auto watch = [&] {
    if (*watching) return;
    *watching = true;
    in.socket.async_wait(tcp::socket::wait_read, [w, call, id, watching, engine, &socket = in.socket](boost::system::error_code ec) {
      if (ec == asio::error::operation_aborted) return;
      *watching = false;
      if (ec || w->state == Waiter::State::answered) return;
      char byte = 0;
      const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))) return;
      call->gone = true;
      engine->cancel(id);
    });
  };
  const auto unwatch = [&] {
    boost::system::error_code ignored;
    in.socket.cancel(ignored);
    *watching = false;
  };
  if (!upload) watch();  // an upload's unread body keeps the socket readable
  w->timer.expires_at(asio::steady_timer::time_point::max());
  while (w->state != Waiter::State::answered) {
    if (!call->go.empty()) {
      auto [box, tag] = std::move(call->go.front());
      call->go.pop_front();
      if (!box->live(tag)) continue;  // given up meanwhile
      unwatch();
      co_await attempt(in, *call, box, tag);
      // Its own time, for a call answered at its first attempt (a retry's wait is the
      // engine's backoff) whose body the gateway had whole (an upload's is the client's pace).
      if (call->attempts == 1 && call->last && call->last->answer_started && !call->last->client_gone && in.body != nullptr) {
        w->relayed(std::chrono::steady_clock::now(), call->upstream_wait);
      }
      engine->drive();  // its answer is in the transport
      if (!upload && !call->gone && !(call->last && (call->last->answer_started || call->last->client_gone))) watch();
      continue;
    }
    boost::system::error_code ec;
    co_await w->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  unwatch();
  w->upstream_elapsed = std::chrono::steady_clock::now() - started;
  const Outcome& o = w->completion->outcome;
  const proxy::Call* last = call->last ? &*call->last : nullptr;
  Answer answer;
  if (last != nullptr && (last->answer_started || last->client_gone || last->body_too_large)) {
    answer = answer_of(in, *last);  // the client has its answer (or hung up)
  } else if (call->gone) {
    answer = Answer(499, "", "", {});
    answer.written = true;
    answer.keep_alive = false;
    const std::lock_guard lock(mu_);
    ++counts_.upstream_cancelled;
  } else if (last != nullptr && last->held && o.status_code == last->status && last->status != 401) {
    // The engine gave up retrying: the client gets the upstream's last answer as it was.
    answer = Answer(last->status, "", last->held_body, call->own);
    for (const auto& [name, value] : last->upstream_headers) {
      if (name == "content-type") {
        answer.content_type = value;
      } else if (proxy::kept_for_client(name)) {
        answer.headers.emplace_back(name, value);
      }
    }
    const std::lock_guard lock(mu_);
    ++counts_.upstream_responses[last->status];
  } else if (o.status_code == 401) {
    answer = key_refused(last, call->own);  // its code only: OpenAI's message for a wrong key names part of it
    const std::lock_guard lock(mu_);
    ++counts_.upstream_responses[401];
  } else if (o.error == ErrorKind::max_wait) {
    const RetryAfter retry = retry_after_values(lanes_.config(lane).max_wait);
    answer = error_answer(429,
                          "This floodgate gateway's " + lanes_.config(lane).name +
                              " lane cannot take the request: it could not be sent upstream within the lane's wait. "
                              "Please retry after " + retry.seconds + " s.",
                          "requests", "rate_limit_exceeded");
    answer.headers = call->own;
    answer.headers.emplace_back("retry-after", retry.seconds);
    answer.headers.emplace_back("retry-after-ms", retry.milliseconds);
  } else if (o.error == ErrorKind::cancelled) {
    std::optional<EngineStop> now_stopped;
    {
      const std::lock_guard lock(engine_mu_);
      if (stop_ && clock_.now() < stop_->until) now_stopped = stop_;
    }
    answer = now_stopped ? stop_answer(*now_stopped, call->own) : error_answer(503, "The gateway is shutting down: the call was not sent upstream.", "server_error", "");
    if (!now_stopped) answer.headers = call->own;
  } else {
    answer = error_answer(502, "The gateway could not get an answer from the upstream API: " + o.error_message, "server_error",
                          "upstream_error");
    answer.headers = call->own;
    const std::lock_guard lock(mu_);
    ++counts_.upstream_responses[0];
  }
  if (upload && !answer.written && in.streamed != nullptr && !in.streamed->is_done()) answer.keep_alive = false;
  co_return answer;
}

asio::awaitable<void> Gateway::attempt(const Incoming& in, PacedCall& call, const std::shared_ptr<EngineBox>& box, std::uint64_t tag) {
  http::HttpResponse r;
  r.tag = tag;
  r.http_version = "1.1";
  if (call.gone) {
    // The client hung up: an answer the engine does not retry (nothing was sent).
    r.status = 499;
    r.body = R"({"error":{"message":"the client closed the request","type":"invalid_request_error","code":"client_closed_request"}})";
    box->finish(std::move(r));
    co_return;
  }
  if (!call.sent) {
    // Its wait in the engine's queue (the limiter's) is part of its wait too.
    call.sent = true;
    const auto now = std::chrono::steady_clock::now();
    call.w->waited += now - call.submitted_at;
    const std::int64_t admitted = call.admitted_at.load();
    call.w->not_own += admitted != 0 ? std::chrono::steady_clock::time_point(std::chrono::nanoseconds(admitted)) - call.submitted_at
                                     : now - call.submitted_at;
    for (auto& [name, value] : call.own) {
      if (name == "x-floodgate-queue-ms") value = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(call.w->waited).count());
    }
  }
  call.current = tag;
  ++call.attempts;
  call.abort_current->requested = false;
  call.last.emplace();
  proxy::Call& pc = *call.last;
  prepare_call(in, pc);
  pc.own_headers = call.own;
  pc.engine_attempt = true;
  pc.abort = call.abort_current;
  co_await upstream_.call(in.pool, in.socket, in.buffer, pc);
  call.current = 0;
  call.upstream_wait += pc.upstream_wait;
  r.elapsed = pc.elapsed;
  r.request_sent = pc.request_sent;
  for (const auto& [name, value] : pc.upstream_headers) r.add_header(name, value);
  if (pc.client_gone) {
    call.gone = true;
    r.status = 499;
    r.body = R"({"error":{"message":"the client closed the request","type":"invalid_request_error","code":"client_closed_request"}})";
  } else if (pc.body_too_large) {
    r.status = 413;
    r.body = R"({"error":{"message":"the request body is larger than --max-body-bytes","type":"invalid_request_error","code":null}})";
  } else if (pc.held && pc.error.empty()) {
    r.status = pc.status;
    r.body = std::move(pc.held_body);
    pc.held_body = r.body;  // kept for the client, should the engine give up
  } else if (pc.answer_started) {
    r.status = pc.status;
    if (pc.status >= 200 && pc.status < 300) {
      // What the relay settled, as the engine reads usage (the bytes went to the client).
      r.body = "{}";
      if (pc.usage) {
        r.body = R"({"usage":{"prompt_tokens":)" + std::to_string(std::max<std::int64_t>(0, pc.usage->input_tokens)) +
                 R"(,"completion_tokens":)" + std::to_string(std::max<std::int64_t>(0, pc.usage->output_tokens)) + "}}";
      }
    } else {
      r.body = pc.error_body.empty() ? std::string("{}") : pc.error_body;
    }
  } else {
    r.status = 0;
    r.error = pc.timed_out ? http::TransportError::timeout : http::TransportError::connection;
    r.error_message = pc.error;
    if (pc.status != 0) {
      r.answer_started = true;
      r.partial_status = pc.status;
    }
  }
  box->finish(std::move(r));
}

void Gateway::pump_locked(TimePoint now, Waiter* self) {
  while (const auto next = room_.pull(lanes_, now)) {
    const auto it = waiters_.find(next->id);
    if (it == waiters_.end()) {
      room_.give_back(next->lane, next->room);
      continue;
    }
    std::shared_ptr<Waiter> w = std::move(it->second);
    waiters_.erase(it);
    w->lane = next->lane;
    w->room = next->room;
    w->owed = next->owed;
    if (w.get() == self) {
      w->state = Waiter::State::admitted;
      w->waited = next->waited;
      continue;
    }
    asio::post(w->executor, [w, waited = next->waited] {
      w->state = Waiter::State::admitted;
      w->waited = waited;
      Waiter::wake(w);
    });
  }
  for (const auto& expired : lanes_.expire(now)) refuse_locked(expired);
}

void Gateway::refuse_locked(const Expired& expired) {
  const auto it = waiters_.find(expired.id);
  if (it == waiters_.end()) return;
  std::shared_ptr<Waiter> w = std::move(it->second);
  waiters_.erase(it);
  asio::post(w->executor, [w, refusal = expired.refusal] {
    w->state = Waiter::State::refused;
    w->refusal = refusal;
    Waiter::wake(w);
  });
}

// A client that hangs up while its request waits in a lane gives its place back: the socket
// turns readable, and a peek finds the end of the stream (or a reset) rather than a next
// request. Runs on the connection's executor, as the Waiter's state wants.
void Gateway::watch_hang_up(const std::shared_ptr<Waiter>& w, TicketId id, tcp::socket& socket) {
  socket.async_wait(tcp::socket::wait_read, [this, w, id, &socket](boost::system::error_code ec) {
    if (ec || w->state != Waiter::State::waiting) return;
    char byte = 0;
    const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))) return;  // a pipelined request
    const std::lock_guard lock(mu_);
    if (!lanes_.cancel(id)) return;  // admitted or refused meanwhile: that verdict is on its way
    waiters_.erase(id);
    w->state = Waiter::State::cancelled;
    Waiter::wake(w);
  });
}

asio::awaitable<std::optional<Refusal>> Gateway::wait_for_lane(const std::shared_ptr<Waiter>& w, std::size_t lane, RoomId room,
                                                               tcp::socket& socket) {
  TicketId id = 0;
  {
    const std::lock_guard lock(mu_);
    id = ++next_id_;
    if (auto refused = lanes_.enqueue(id, lane, clock_.now(), room)) co_return refused;
    waiters_.emplace(id, w);
    pump_locked(clock_.now(), w.get());
  }
  if (w->state == Waiter::State::admitted) co_return std::nullopt;  // at once: nothing to wait for
  watch_hang_up(w, id, socket);
  // The lane's deadline (and a little): then expire() refuses it, if nothing else did.
  w->timer.expires_after(lanes_.config(lane).max_wait + std::chrono::milliseconds(1));
  while (w->state == Waiter::State::waiting) {
    boost::system::error_code ec;
    co_await w->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (w->state != Waiter::State::waiting || ec) continue;
    const std::lock_guard lock(mu_);
    for (const auto& expired : lanes_.expire(clock_.now())) refuse_locked(expired);
    w->timer.expires_after(std::chrono::milliseconds(10));  // its refusal is posted: it cancels this wait
  }
  boost::system::error_code ignored;
  socket.cancel(ignored);  // the hang-up watch
  if (w->state == Waiter::State::refused) co_return w->refusal;
  co_return std::nullopt;
}

// The upstream request of a call: the client's head, and its body (a streamed chat asks for
// usage when the client did not: usage is settled from the last chunk).
void prepare_call(const Incoming& in, proxy::Call& call) {
  const std::string_view target(in.head.target().data(), in.head.target().size());
  call.head = &in.head;
  call.client_keep_alive = in.keep_alive;
  call.target = std::string(target.substr(3));  // without "/v1": the base URL has it
  call.streamed = in.streamed;
  if (in.body == nullptr) return;
  call.body = *in.body;
  if (target.substr(0, target.find('?')) != "/v1/chat/completions") return;
  const StreamAsk ask = stream_ask_of(*in.body);
  if (ask.stream && !ask.include_usage) {
    if (auto rewritten = with_include_usage(*in.body)) {
      call.body_storage = std::move(*rewritten);
      call.body = call.body_storage;
      call.strip_usage = true;
    }
  }
}

asio::awaitable<Answer> Gateway::forward(const Incoming& in, Route /*route*/, const std::shared_ptr<Waiter>& w,
                                         std::vector<std::pair<std::string, std::string>> own_headers) {
  proxy::Call call;
  prepare_call(in, call);
  call.own_headers = std::move(own_headers);
  co_await upstream_.call(in.pool, in.socket, in.buffer, call);
  w->upstream_elapsed = call.elapsed;
  // Its own time, when the gateway had its body whole or there was none (a streamed body's
  // reading is the client's pace).
  const bool client_paced = in.streamed != nullptr && in.streamed->content_length().value_or(1) > 0;
  if (call.answer_started && !call.client_gone && !client_paced) w->relayed(std::chrono::steady_clock::now(), call.upstream_wait);
  co_return answer_of(in, call);
}

Answer Gateway::answer_of(const Incoming& in, const proxy::Call& call) {
  Answer answer;
  answer.usage = call.usage;
  {
    const std::lock_guard lock(mu_);
    if (call.client_gone) {
      ++counts_.upstream_cancelled;
    } else {
      ++counts_.upstream_responses[call.answer_started || call.held ? call.status : 0];
    }
    if (call.usage) {
      counts_.usage_input_tokens += static_cast<std::uint64_t>(std::max<std::int64_t>(0, call.usage->input_tokens));
      counts_.usage_output_tokens += static_cast<std::uint64_t>(std::max<std::int64_t>(0, call.usage->output_tokens));
    }
  }
  if (call.client_gone) {
    answer.status = 499;
    answer.written = true;
    answer.keep_alive = false;
  } else if (call.answer_started) {
    answer.status = call.status;
    answer.written = true;
    answer.keep_alive = call.keep_alive;
    answer.bytes_out = call.bytes_out;
  } else if (call.held && call.status == 401) {
    answer = key_refused(&call, call.own_headers);  // never relayed (proxy.hpp)
    answer.keep_alive = in.streamed == nullptr || in.streamed->is_done();
  } else if (call.body_too_large) {
    answer = error_answer(413, "The request body is larger than this gateway takes (--max-body-bytes " +
                                   std::to_string(options_.max_body_bytes) + ").",
                          "invalid_request_error", "");
    answer.keep_alive = false;
  } else {
    answer = error_answer(502, "The gateway could not get an answer from the upstream API: " + call.error, "server_error",
                          "upstream_error");
    answer.headers = call.own_headers;
    answer.keep_alive = in.streamed == nullptr || in.streamed->is_done();
  }
  return answer;
}

// "$0.0012": dollars with 4 decimals (a call costs fractions of a cent).
std::string dollars(double usd) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "$%.4f", usd);
  return buf;
}

Endpoint endpoint_of(Route route) noexcept {
  switch (route) {
    case Route::embeddings: return Endpoint::embeddings;
    case Route::responses: return Endpoint::responses;
    case Route::audio_transcriptions:
    case Route::audio_translations: return Endpoint::audio_transcriptions;
    default: return Endpoint::chat_completions;
  }
}

limit::Limits Gateway::upstream_limits_of(std::string_view model) const {
  // The limits the engine's limiter of the model has in force (configured, or learned from
  // the upstream's x-ratelimit-* headers once it has answered), else the configured ones.
  const std::string name(model);
  const limit::Limits configured = limits_config_.for_model(name);
  if (const auto snapshot = board_.snapshot(name)) return snapshot->limits.or_else(configured);
  return configured;
}

asio::awaitable<std::optional<Answer>> Gateway::key_limits(const ClientKey& key, Route route, const std::string& model,
                                                          const std::string* body, std::size_t lane, tcp::socket& socket,
                                                          Held& held) {
  const bool budget = key.budget_usd && options_.usage;
  if (!budget && !has_sub_limits(key)) co_return std::nullopt;
  // The request's tokens as the engine estimates them (an upload's are not known: 0).
  limit::ChargeInputs inputs;
  if (body != nullptr) {
    Request r;
    r.endpoint = endpoint_of(route);
    r.body = *body;
    r.model = model;
    inputs = estimator_(r);
  }
  if (budget) {
    const cost::ModelPrice* price = model.empty() ? nullptr : prices_.find(model);
    const std::uint64_t worst = limit::worst_case_tokens(inputs, worst_case_completion_tokens_);
    const double worst_usd =
        price != nullptr ? cost::worst_case_cost_usd(*price, inputs.input_tokens, worst - std::min(worst, inputs.input_tokens)) : 0.0;
    if (!options_.usage->reserve(key.log_id, key.name, *key.budget_usd, worst_usd)) {
      const KeyTotals t = options_.usage->totals_of(key.log_id).value_or(KeyTotals{});
      std::string message = "You exceeded your current quota: this floodgate gateway's key '" + key.name + "' has spent " +
                            dollars(t.cost_usd) + " of its " + dollars(*key.budget_usd) + " budget (budget_usd in its keys file)";
      if (t.reserved_usd > 0) message += ", with up to " + dollars(t.reserved_usd) + " more in calls in flight";
      co_return error_answer(429, message + ".", "insufficient_quota", "insufficient_quota");
    }
    held.reserved_usd = worst_usd;
  }
  if (!has_sub_limits(key)) co_return std::nullopt;
  const limit::Cost cost{1, limits_config_.charge_for(model).charge(inputs)};
  const Duration max_wait = lanes_.config(lane).max_wait;
  const TimePoint started = clock_.now();
  // Shared with the hang-up watch, whose handler may run after this coroutine is gone.
  const auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor);
  const auto gone = std::make_shared<bool>(false);
  for (;;) {
    const TimePoint now = clock_.now();
    KeyLimiter::Verdict v = key_limiter_.acquire(key, model, cost, upstream_limits_of(model), now);
    if (v.share_unknown && options_.notice) {
      options_.notice("key " + key.log_id + ": its share of the upstream's limits of " + (model.empty() ? "this model" : model) +
                      " does not apply (the upstream's limit is not known: give --rpm / --tpm or --limits FILE); its "
                      "requests_per_minute / tokens_per_minute do");
    }
    if (v.kind == KeyLimiter::Verdict::Kind::admitted) {
      held.ticket = std::move(v.ticket);
      co_return std::nullopt;
    }
    const Duration wait = v.not_before - now;
    const bool tokens = v.limit.find("tokens") != std::string::npos;
    if (v.kind == KeyLimiter::Verdict::Kind::cannot_fit) {
      co_return error_answer(429,
                             "Request too large for this floodgate gateway's key '" + key.name + "': its " + v.limit +
                                 " (keys file) is less than this request's " + std::to_string(cost.tokens) + " tokens.",
                             "tokens", "rate_limit_exceeded");
    }
    if ((now - started) + wait > max_wait) {
      const RetryAfter retry = retry_after_values(wait);
      Answer refused = error_answer(429,
                                    "This floodgate gateway's key '" + key.name + "' is over its " + v.limit +
                                        " (keys file). Please retry after " + retry.seconds + " s.",
                                    tokens ? "tokens" : "requests", "rate_limit_exceeded");
      refused.headers = {{"retry-after", retry.seconds}, {"retry-after-ms", retry.milliseconds}};
      co_return refused;
    }
    // A client that hangs up meanwhile stops waiting (as in its lane: the socket turns
    // readable and a peek finds the end of the stream, not a pipelined request).
    socket.async_wait(tcp::socket::wait_read, [timer, gone, &socket](boost::system::error_code ec) {
      if (ec) return;
      char byte = 0;
      const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))) return;
      *gone = true;
      timer->cancel();
    });
    timer->expires_after(std::max(wait, Duration(std::chrono::milliseconds(1))));
    boost::system::error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    boost::system::error_code ignored;
    socket.cancel(ignored);
    if (*gone) {
      Answer left(499, "", "", {});
      left.written = true;
      left.keep_alive = false;
      co_return left;
    }
  }
}

void Gateway::account(const Answer& a, const ClientKey* key, const std::string& key_id, Route route, std::string_view lane,
                      std::string model, const std::shared_ptr<Waiter>& w, const Held& held) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  const Usage usage = a.usage.value_or(Usage{});
  const bool went_upstream = w && w->upstream_elapsed;
  if (held.ticket) {
    // What the key used counts against its sub-limits; a call that never went upstream, nothing.
    const limit::Cost used = !went_upstream ? limit::Cost{0, 0}
                                            : limit::Cost{1, static_cast<std::uint64_t>(std::max<std::int64_t>(
                                                                 0, usage.input_tokens + usage.output_tokens))};
    key_limiter_.settle(*held.ticket, used, clock_.now());
  }
  if (!options_.usage) return;
  CallRecord call;
  call.unix_ms = duration_cast<milliseconds>(clock_.wall_now().time_since_epoch()).count();
  call.key_id = key_id;
  call.key_name = key != nullptr ? key->name : "";
  call.lane = std::string(lane);
  call.route = std::string(to_string(route));
  call.cost_usd = call_cost_usd(prices_, model, usage);
  call.model = std::move(model);
  call.status = a.status;
  call.input_tokens = usage.input_tokens;
  call.output_tokens = usage.output_tokens;
  call.cached_tokens = usage.cached_tokens;
  if (went_upstream) {
    call.queued_ms = duration_cast<milliseconds>(w->waited).count();
    call.upstream_ms = duration_cast<milliseconds>(*w->upstream_elapsed).count();
  }
  // Recorded before the reservation goes: spent + reserved never dips below the truth.
  options_.usage->record(std::move(call));
  if (held.reserved_usd > 0) options_.usage->release(key_id, held.reserved_usd);
}

Answer Gateway::usage_answer(const ClientKey* key) const {
  if (!options_.usage) return error_answer(404, "This gateway records no usage.", "invalid_request_error", "");
  std::map<std::string, KeyTotals> totals = options_.usage->totals();
  std::map<std::string, const ClientKey*> entries;
  if (options_.keys) {
    for (const ClientKey* entry : options_.keys->entries()) entries[entry->log_id] = entry;
  }
  std::vector<UsageRow> rows;
  const auto row = [&](const std::string& id, const std::string& name) {
    const auto it = totals.find(id);
    KeyTotals t = it != totals.end() ? it->second : KeyTotals{};
    const auto entry = entries.find(id);
    if (entry != entries.end()) t.key_name = entry->second->name;  // the file's name now
    if (t.key_name.empty()) t.key_name = name;
    rows.push_back(UsageRow{id, std::move(t), entry != entries.end() ? entry->second->budget_usd : std::nullopt});
  };
  if (options_.keys && (key == nullptr || !key->sees_all_usage)) {
    if (key != nullptr) row(key->log_id, key->name);  // a key sees its own row
  } else {
    for (const auto& [id, entry] : entries) totals.try_emplace(id);  // the file's keys, used or not
    for (const auto& [id, t] : totals) row(id, t.key_name);
  }
  return Answer{200, "application/json", render_usage(rows), {}};
}

asio::awaitable<Answer> Gateway::handle(Incoming in) {
  const Head& req = in.head;
  const std::string_view method(req.method_string().data(), req.method_string().size());
  const std::string_view target(req.target().data(), req.target().size());
  const Route route = route_of(method, target);
  const auto arrived = std::chrono::steady_clock::now();
  std::string key_id = "-";
  std::string_view lane_name = "-";
  std::shared_ptr<Waiter> w;
  Answer answer;
  const ClientKey* key = nullptr;
  bool accounted = false;  // after the key check: the call gets its row in the usage store
  std::string model;
  Held held;

  const auto finish = [&](Answer a) {
    {
      const std::lock_guard lock(mu_);
      ++counts_.responses[{std::string(to_string(route)), a.status}];
      if (w && w->own) counts_.add_own_time(*w->own);
    }
    // A body left unread in the socket (a streamed route answered by the gateway itself)
    // leaves nothing to read the next request from.
    if (in.streamed != nullptr && !in.streamed->is_done()) a.keep_alive = false;
    log(req, in.body != nullptr ? in.body->size() : in.streamed != nullptr ? in.streamed->content_length().value_or(0) : 0, a,
        lane_name, key_id, w);
    if (accounted) account(a, key, key_id, route, lane_name, std::move(model), w, held);
    return a;
  };

  if (route == Route::healthz) {
    co_return finish(stopping_ ? Answer{503, "application/json", R"({"status":"draining"})", {}}
                               : Answer{200, "application/json", R"({"status":"ok"})", {}});
  }
  if (route == Route::metrics) {
    HttpCounts counts;
    std::vector<LaneStats> stats;
    const std::size_t sent = engine_sent();  // not under mu_: it asks the engine
    const std::vector<ModelHeadroom> models =
        board_.headroom(clock_.now(), [this](const std::string& name) { return limits_config_.for_model(name); });
    {
      const std::lock_guard lock(mu_);
      counts = counts_;
      counts.upstream_in_flight = static_cast<std::int64_t>(room_.relay_in_flight() + sent);
      stats = lanes_.stats();
    }
    counts.connections = connections_;
    co_return finish(Answer{200, "text/plain; version=0.0.4; charset=utf-8", render_metrics(stats, counts, models), {}});
  }
  if (route == Route::unknown) {
    const std::string path(target.substr(0, target.find('?')));
    co_return finish(error_answer(404, "Invalid URL (" + std::string(method) + " " + path + ")", "invalid_request_error", ""));
  }

  const std::string_view bearer = bearer_of(field(req, "authorization"));
  if (options_.keys) {
    key = options_.keys->find(bearer);
    if (key == nullptr) {
      key_id = anonymous_key_id(bearer);
      co_return finish(error_answer(401,
                                    bearer.empty() ? "You didn't provide an API key. This gateway needs one of its client keys "
                                                     "(Authorization: Bearer KEY)."
                                                   : "Incorrect API key provided: this gateway's keys file has no such key.",
                                    "invalid_request_error", bearer.empty() ? "" : "invalid_api_key"));
    }
    key_id = key->log_id;
  } else {
    key_id = anonymous_key_id(bearer);
  }
  if (route == Route::usage) co_return finish(usage_answer(key));
  accounted = true;
  if (in.body != nullptr) model = model_of(*in.body);

  w = std::make_shared<Waiter>(co_await asio::this_coro::executor);
  w->arrived = arrived;
  if (!is_paced(route)) {  // models and everything proxied as is: no limits spent, straight through
    answer = co_await forward(in, route, w, {});
    co_return finish(std::move(answer));
  }

  const auto content_type = field(req, "content-type");
  const std::string tier =
      in.body != nullptr && content_type.find("json") != std::string_view::npos ? service_tier_of(*in.body) : "";
  const auto choice = choose_lane(lanes_, field(req, kLaneHeader), key, tier);
  if (const auto* message = std::get_if<std::string>(&choice)) {
    co_return finish(error_answer(400, *message, "invalid_request_error", ""));
  }
  const std::size_t lane = std::get<LaneChoice>(choice).lane;
  lane_name = lanes_.config(lane).name;
  if (key != nullptr) {  // its budget and sub-limits, before it waits in a lane
    const auto limits_from = std::chrono::steady_clock::now();
    auto refused = co_await key_limits(*key, route, model, in.body, lane, in.socket, held);
    w->not_own += std::chrono::steady_clock::now() - limits_from;  // its key's sub-limit's wait
    if (refused) {
      refused->headers.emplace_back(kLaneHeader, lane_name);
      co_return finish(std::move(*refused));
    }
  }

  // Where the lanes will hand it: every laned call to the engine's queue of its model (pacing,
  // retries: a 429 waits here rather than reaching the client; an upload's model is read from
  // the start of its form), or with --no-engine to the relay (docs/gateway.md).
  RoomId room = Room::kRelay;
  std::string engine_model;
  if (options_.engine) {
    if (in.body != nullptr) {
      InputOptions io;
      io.default_endpoint = route == Route::chat_completions ? Endpoint::chat_completions
                            : route == Route::embeddings     ? Endpoint::embeddings
                                                             : Endpoint::responses;
      const ParsedLine parsed = parse_input_line(*in.body, 1, io);  // the engine's own reading of the model
      if (!parsed.request || parsed.request->model.empty()) {
        std::string why = parsed.request ? "the body has no \"model\"" : parsed.error_message;
        if (why.starts_with("line 1: ")) why.erase(0, 8);
        co_return finish(error_answer(400, "The gateway cannot pace this request: " + why, "invalid_request_error", ""));
      }
      engine_model = parsed.request->model;
    } else {
      engine_model = co_await sniff_upload_model(in);
      if (engine_model.find_first_of("\"\\") == std::string::npos) model = engine_model;  // the usage row's too
      if (engine_model.empty() || engine_model.find_first_of("\"\\") != std::string::npos) engine_model = std::string(kDefaultUploadModel);
    }
    const std::lock_guard lock(mu_);
    room = room_.of(engine_model);
  }
  const auto refusal = co_await wait_for_lane(w, lane, room, in.socket);
  if (w->state == Waiter::State::cancelled) {
    Answer gone(499, "", "", {});
    gone.written = true;
    gone.keep_alive = false;
    co_return finish(std::move(gone));
  }
  if (refusal) {
    const RetryAfter retry = retry_after_values(refusal->retry_after);
    const std::string why = refusal->reason == RefusalReason::queue_full
                                ? "its queue is full (" + std::to_string(refusal->depth) + " waiting)"
                                : "it could not be sent upstream within the lane's wait";
    answer = error_answer(429,
                          "This floodgate gateway's " + std::string(lane_name) + " lane cannot take the request: " + why +
                              ". Please retry after " + retry.seconds + " s.",
                          "requests", "rate_limit_exceeded");
    answer.headers = {{"retry-after", retry.seconds}, {"retry-after-ms", retry.milliseconds},
                      {std::string(kLaneHeader), std::string(lane_name)}};
    co_return finish(std::move(answer));
  }

  std::vector<std::pair<std::string, std::string>> own;
  own.emplace_back(kLaneHeader, lane_name);
  own.emplace_back("x-floodgate-queue-ms", std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(w->waited).count()));
  // Every paced call goes through the engine (pacing, retries: a 429 waits here rather than
  // reaching the client), its bytes through the relay (docs/gateway.md); --no-engine: the
  // relay alone.
  w->not_own += w->waited;  // the lane's
  if (w->room != Room::kRelay) {
    answer = co_await through_engine(in, route, engine_model, lane, w, std::move(own));  // gives its room back
  } else {
    answer = co_await forward(in, route, w, std::move(own));
    give_back(lane, Room::kRelay);
  }
  co_return finish(std::move(answer));
}

void Gateway::log(const Head& req, std::uint64_t bytes_in, const Answer& answer, std::string_view lane,
                  const std::string& key_id, const std::shared_ptr<Waiter>& w) {
  if (!options_.access_log) return;
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  const std::string_view target(req.target().data(), req.target().size());
  std::string line = iso8601_utc(clock_.wall_now());
  line += ' ';
  line += std::string_view(req.method_string().data(), req.method_string().size());
  line += ' ';
  line += target.substr(0, target.find('?'));  // a query string may carry a secret
  line += ' ';
  line += std::to_string(answer.status);
  line += " lane=";
  line += lane;
  line += " key=";
  line += key_id;
  if (w && w->upstream_elapsed) {  // it went upstream
    line += " queued_ms=" + std::to_string(duration_cast<milliseconds>(w->waited).count());
    line += " upstream_ms=" + std::to_string(duration_cast<milliseconds>(*w->upstream_elapsed).count());
    // Retried by the engine: the client saw the last attempt only.
    if (w->completion && w->completion->outcome.attempts > 1) line += " attempts=" + std::to_string(w->completion->outcome.attempts);
  }
  line += " in=" + std::to_string(bytes_in) + " out=" + std::to_string(answer.written ? answer.bytes_out : answer.body.size());
  if (answer.usage) {
    line += " tokens_in=" + std::to_string(answer.usage->input_tokens);
    line += " tokens_out=" + std::to_string(answer.usage->output_tokens);
  }
  const std::lock_guard lock(log_mu_);
  options_.access_log(line);
}

// Counts a request from its head to its answer, for the drain at shutdown.
class Active {
 public:
  explicit Active(std::atomic<std::int64_t>& n) : n_(n) { ++n_; }
  ~Active() { --n_; }
  Active(const Active&) = delete;
  Active& operator=(const Active&) = delete;

 private:
  std::atomic<std::int64_t>& n_;
};

asio::awaitable<bool> write_answer(tcp::socket& socket, Answer answer, bool keep_alive) {
  bhttp::response<bhttp::string_body> res;
  res.version(11);
  res.result(static_cast<unsigned>(answer.status));
  if (!answer.content_type.empty()) res.set(bhttp::field::content_type, answer.content_type);
  for (const auto& [name, value] : answer.headers) res.insert(name, value);
  res.keep_alive(keep_alive);
  res.body() = std::move(answer.body);
  res.prepare_payload();
  boost::system::error_code ec;
  co_await bhttp::async_write(socket, res, asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec;
}

asio::awaitable<void> session(tcp::socket socket, Gateway& gateway, proxy::Pool& pool) {
  const Active connection(gateway.connections_);
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  beast::flat_buffer buffer;
  const auto too_large = [&] {
    return error_answer(413, "The request body is larger than this gateway takes (--max-body-bytes " +
                                 std::to_string(gateway.options().max_body_bytes) + ").",
                        "invalid_request_error", "");
  };
  for (;;) {
    bhttp::request_parser<bhttp::empty_body> header;
    header.header_limit(64 * 1024);
    header.body_limit(gateway.options().max_body_bytes);
    co_await bhttp::async_read_header(socket, buffer, header, asio::redirect_error(asio::use_awaitable, ec));
    if (!ec && beast::iequals(header.get()[bhttp::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await asio::async_write(socket, asio::buffer(kContinue), asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec == bhttp::error::body_limit) {
      co_await write_answer(socket, too_large(), false);
      break;
    }
    if (ec) {
      if (ec != bhttp::error::end_of_stream && ec != asio::error::eof && ec != asio::error::connection_reset &&
          ec != asio::error::operation_aborted && ec != asio::error::bad_descriptor) {
        co_await write_answer(socket, error_answer(400, "Bad request: not HTTP/1.1 the gateway can read.", "invalid_request_error", ""),
                              false);
      }
      break;
    }
    const Active active(gateway.active_);
    const auto& h = header.get();
    const Route route = route_of(std::string_view(h.method_string().data(), h.method_string().size()),
                                 std::string_view(h.target().data(), h.target().size()));
    Answer answer;
    bool keep_alive = h.keep_alive() && !gateway.stopping();
    if (streams_body(route)) {
      StreamedBody streamed(std::move(header));
      streamed.body_limit(gateway.options().max_body_bytes);
      answer = co_await gateway.handle(Incoming{streamed.get(), keep_alive, nullptr, &streamed, socket, buffer, pool});
    } else {
      bhttp::request_parser<bhttp::string_body> whole(std::move(header));
      whole.body_limit(gateway.options().max_body_bytes);
      if (!whole.is_done()) co_await bhttp::async_read(socket, buffer, whole, asio::redirect_error(asio::use_awaitable, ec));
      if (ec == bhttp::error::body_limit) {
        co_await write_answer(socket, too_large(), false);
        break;
      }
      if (ec) break;
      answer = co_await gateway.handle(Incoming{whole.get(), keep_alive, &whole.get().body(), nullptr, socket, buffer, pool});
    }
    keep_alive = keep_alive && answer.keep_alive && !gateway.stopping();
    if (answer.written) {
      if (!keep_alive) break;
      continue;
    }
    if (!co_await write_answer(socket, std::move(answer), keep_alive) || !keep_alive) break;
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
  socket.close(ec);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, Gateway& gateway, proxy::Pool& pool) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!acceptor.is_open() || gateway.stopping()) co_return;
      if (ec == asio::error::no_descriptors) {
        asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(10));
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket), gateway, pool), asio::detached);
  }
}

// After SIGINT/SIGTERM: polls until no request is being answered or the grace is over.
asio::awaitable<void> drain(Gateway& gateway, std::vector<std::unique_ptr<asio::io_context>>& contexts) {
  const auto until = std::chrono::steady_clock::now() + gateway.options().grace;
  asio::steady_timer tick(co_await asio::this_coro::executor);
  while (gateway.active() > 0 && std::chrono::steady_clock::now() < until) {
    tick.expires_after(std::chrono::milliseconds(20));
    boost::system::error_code ec;
    co_await tick.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  for (auto& ctx : contexts) ctx->stop();
}

}  // namespace

int run_gateway(ServeOptions options, const std::function<void(const std::string&)>& on_listening) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(options.host, ec);
  if (ec) throw Error("invalid --host '" + options.host + "'");
  if (!address.is_loopback() && !options.keys) {
    throw Error("--host " + options.host + " is not a loopback address: give --keys FILE, so that only your clients "
                "can spend the upstream key");
  }
  const std::string host = address.is_v6() ? "[" + options.host + "]" : options.host;
  const std::uint16_t port = options.port;
  const unsigned threads = options.threads;
  net::Listeners listeners = net::listen_per_thread(address, host, port, threads);
  // Outlives the contexts' coroutines, which refer to it: release() drops what belongs to the
  // contexts before they go.
  Gateway gateway(std::move(options), listeners.contexts.size(), listeners.contexts.front()->get_executor());
  auto& contexts = listeners.contexts;
  auto& acceptors = listeners.acceptors;

  // Goes before the contexts do (below): its service lives in contexts[0], so destroying it
  // after them was a use after free (ASan, at every SIGTERM).
  std::optional<asio::signal_set> signals(std::in_place, *contexts[0], SIGINT, SIGTERM);
  signals->async_wait([&](boost::system::error_code e, int) {
    if (e) return;
    gateway.begin_stop();
    for (std::size_t i = 0; i < contexts.size(); ++i) {
      asio::post(*contexts[i], [acceptor = acceptors[i].get()] {
        boost::system::error_code ignored;
        acceptor->close(ignored);
      });
    }
    asio::co_spawn(*contexts[0], drain(gateway, contexts), asio::detached);
  });
  for (std::size_t i = 0; i < contexts.size(); ++i) {
    asio::co_spawn(*contexts[i], accept_loop(*acceptors[i], gateway, gateway.pool(i)), asio::detached);
  }

  on_listening("http://" + host + ":" + std::to_string(listeners.port) + "/v1");
  net::run_all(contexts);
  gateway.release();
  signals.reset();
  // Drained: a second SIGINT/SIGTERM (a supervisor's, a test's) must not kill the process
  // while its caller closes the usage file and prints the summary (the signal_set gave the
  // signals back their default action, which is to die).
  std::signal(SIGINT, SIG_IGN);
  std::signal(SIGTERM, SIG_IGN);
  acceptors.clear();
  contexts.clear();  // their coroutines go, while the gateway they refer to is still there
  return 0;
}

}  // namespace floodgate::gateway
