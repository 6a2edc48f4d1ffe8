#pragma once
// What the engine reports about the job as a whole, typed: the events on the way
// (EngineOptions::on_event) and why a run stopped (RunSummary::stop, and a last event of
// kind `stopped`). The engine words none of them for people: EngineOptions::describe does,
// for the messages it prints and for RunSummary::stop_reason (the CLI's words, naming its
// flags, are in apps/floodgate/engine_words.cpp); without it, an event's words are its
// name (name() below).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "floodgate/core/clock.hpp"

namespace floodgate::engine {

// Why a run ended before every line was finished (none: it was not stopped). The exit code
// follows from it (exit_code_for, core/exit_codes.hpp).
enum class StopCause : std::uint8_t {
  none,
  interrupted,         // request_stop() (Ctrl-C): drained, resumable (5)
  insufficient_quota,  // a 429 insufficient_quota (3)
  budget,              // the budget hook said stop (4)
  paused,              // a model paused beyond the retry horizon (6)
  unreachable,         // no answer before the unreachable verdict (7)
  outage,              // no answer for EngineOptions::outage_limit after the first (8)
  rejected,            // the first answers all the same refusal (9)
  disk_full,           // a write failed for want of room (74)
};
[[nodiscard]] std::string_view to_string(StopCause cause) noexcept;
// The run's exit code for a stop (none: 0; whether the output holds error lines is the
// caller's to add).
[[nodiscard]] int exit_code_for(StopCause cause) noexcept;

struct JobEvent {
  enum class Kind : std::uint8_t {
    interrupted,         // no new requests; `in_flight` drain (a second request stops at once)
    insufficient_quota,  // `detail`: the code that said so; stopped admitting, draining
    budget,              // `detail`: the budget's reason; stopped admitting, draining
    unreachable,         // no answer yet: `count` attempts over `span` to `base_url`, the last
                         // failure `detail`; `slow`: the server took the requests (timeouts)
    outage_began,        // after answers, `count` attempts in a row got none (`detail`: the
                         // last); probing one at a time; `limit`: the outage limit (0: none)
    outage_stopped,      // no answer for `span` >= `limit`; `detail`: the last failure
    rejected,            // `count` answers all the refusal `refusal` ("401 invalid_api_key"),
                         // `detail` its message, to `url` for `model`
    stopped,             // the run ended early for `cause`, reported once, last; its words are
                         // RunSummary::stop_reason. Facts by cause: unreachable `slow`;
                         // outage `limit`; rejected `refusal`, `url`, `model`; budget, paused
                         // and disk_full `detail` (the reason, the pauses, the write error)
  };
  Kind kind = Kind::interrupted;
  bool error = false;  // the job stops on it (else a warning)
  StopCause cause = StopCause::none;  // `stopped` only
  std::size_t in_flight = 0;
  std::uint64_t count = 0;
  Duration span{0};
  Duration limit{0};
  bool slow = false;
  std::string base_url;
  std::string detail;
  std::string refusal;
  std::string url;
  std::string model;
};
[[nodiscard]] std::string_view to_string(JobEvent::Kind kind) noexcept;
// An event's words without a describe hook: its kind's name, a stop's cause's.
[[nodiscard]] std::string_view name(const JobEvent& event) noexcept;

}  // namespace floodgate::engine
