#include "floodgate/engine/events.hpp"

#include "floodgate/core/exit_codes.hpp"

namespace floodgate::engine {

std::string_view to_string(StopCause cause) noexcept {
  switch (cause) {
    case StopCause::none: return "none";
    case StopCause::interrupted: return "interrupted";
    case StopCause::insufficient_quota: return "insufficient_quota";
    case StopCause::budget: return "budget";
    case StopCause::paused: return "paused";
    case StopCause::unreachable: return "unreachable";
    case StopCause::outage: return "outage";
    case StopCause::rejected: return "rejected";
    case StopCause::disk_full: return "disk_full";
  }
  return "none";
}

int exit_code_for(StopCause cause) noexcept {
  switch (cause) {
    case StopCause::none: return exit_code::ok;
    case StopCause::interrupted: return exit_code::interrupted;
    case StopCause::insufficient_quota: return exit_code::insufficient_quota;
    case StopCause::budget: return exit_code::budget;
    case StopCause::paused: return exit_code::paused;
    case StopCause::unreachable: return exit_code::unreachable;
    case StopCause::outage: return exit_code::outage;
    case StopCause::rejected: return exit_code::rejected;
    case StopCause::disk_full: return exit_code::disk_full;
  }
  return exit_code::internal;
}

std::string_view to_string(JobEvent::Kind kind) noexcept {
  switch (kind) {
    case JobEvent::Kind::interrupted: return "interrupted";
    case JobEvent::Kind::insufficient_quota: return "insufficient_quota";
    case JobEvent::Kind::budget: return "budget";
    case JobEvent::Kind::unreachable: return "unreachable";
    case JobEvent::Kind::outage_began: return "outage_began";
    case JobEvent::Kind::outage_stopped: return "outage_stopped";
    case JobEvent::Kind::rejected: return "rejected";
    case JobEvent::Kind::stopped: return "stopped";
  }
  return "interrupted";
}

std::string_view name(const JobEvent& event) noexcept {
  return event.kind == JobEvent::Kind::stopped ? to_string(event.cause) : to_string(event.kind);
}

}  // namespace floodgate::engine
