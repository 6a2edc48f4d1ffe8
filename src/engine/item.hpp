#pragma once
// What the engine's stages share: a request being worked on (Item), a model's queue (Lane),
// an attempt in flight, and the Host the stages act through. Internal to src/engine.
//
//   engine.cpp    the loop: reads the input, sends, hands each answer to the stages below
//   scheduler     lanes, admission, the in-flight cap, the breaker, retry timers, pauses
//   classifier    what one HTTP exchange says (a pure function)
//   verdicts      the job-level stops: refusal (9), unreachable (7), outage (8), quota (3),
//                 budget (4), Ctrl-C (5)
//   recorder      sinks, journal, the --ordered reorder buffer, checkpoints, resume
//   options       the checks before anything is sent; signals: SignalGuard

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "floodgate/core/clock.hpp"
#include "floodgate/core/outcome.hpp"
#include "floodgate/core/request.hpp"
#include "floodgate/http/multipart_body.hpp"
#include "floodgate/limit/admission.hpp"
#include "floodgate/limit/charge_model.hpp"

namespace floodgate::engine {

struct Item {
  Request req;                                            // body kept here (hooks see it)
  std::shared_ptr<const http::MultipartSpec> multipart;  // audio: a file streamed per attempt
  std::uint64_t seq = 0;
  std::uint32_t attempts = 0;
  std::uint32_t spared = 0;  // attempts that met an outage: not counted toward --max-attempts
  std::uint32_t invalid_retries = 0;  // re-asks after a schema_violation
  std::string client_request_id;
  TimePoint read_at{};
  TimePoint first_sent_at{};
  std::uint64_t est_tokens = 0;   // the worst case (budgets, the row's estimate)
  std::uint64_t pace_tokens = 0;  // the pacing charge the limiter reserves
  Outcome last;  // the last failed attempt, for the final error line
  std::shared_ptr<const void> payload;  // the source's, for the sinks
  int priority = 0;                     // the source's (SourceItem): the order in the lane
  std::optional<TimePoint> deadline;    // the source's: not sent by then, it fails unsent
  std::shared_ptr<void> context;        // the source's: handed to the transport (HttpRequest::context)
  std::uint32_t max_attempts = 0;       // the source's: at most this many sends (0: the policy's)
};

struct Lane {
  std::string model;
  std::deque<Item*> queue;
  limit::Admission* limiter = nullptr;  // the model's admission (the local limiter unless injected)
  limit::ChargeModel charge;            // what the provider counts at admission for this model
  Provider provider = Provider::openai;
  std::map<Endpoint, std::string> urls;  // when the URL names the model (Azure deployments)
  TimePoint next_try{};       // don't ask the limiter before this
  Item* head_seen = nullptr;  // for --max-wait: when did the current head become head
  TimePoint head_since{};
  bool suspended = false;
  TimePoint suspended_until{};
  limit::Dimension waiting_for = limit::Dimension::none;  // the limit the head last waited for, and until when
  TimePoint waiting_until{};
};

struct InFlight {
  Item* item = nullptr;
  Lane* lane = nullptr;
  limit::Grant grant;
};

// A failed outcome for the item (its id, line and attempts so far).
[[nodiscard]] inline Outcome failure(const Item& item, ErrorKind kind, std::string message) {
  Outcome o;
  o.custom_id = item.req.custom_id;
  o.line_no = item.req.line_no;
  o.error = kind;
  o.error_message = std::move(message);
  o.attempts = item.attempts;
  return o;
}

// What the scheduler and the verdicts act through; the engine implements it. An item ends
// in exactly one of finish() (a row is written) and abandon() (left for a resume).
class Host {
 public:
  virtual void send(Item* item, Lane& lane, const limit::Grant& grant, TimePoint now) = 0;
  virtual void finish(Item* item, Outcome outcome, TimePoint now) = 0;
  virtual void abandon(Item* item, TimePoint now) = 0;
  // Sends the item again once `at` has come (through admission, like any request).
  virtual void retry(Item* item, TimePoint at) = 0;
  // Nothing in flight, waiting or queued, and no more input that could come.
  [[nodiscard]] virtual bool nothing_else_to_try() const = 0;
  virtual ~Host() = default;
};

}  // namespace floodgate::engine
