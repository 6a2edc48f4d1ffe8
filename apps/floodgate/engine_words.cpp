#include "engine_words.hpp"

#include <utility>

#include "floodgate/core/duration.hpp"
#include "floodgate/core/text.hpp"

namespace floodgate::cli {

using engine::JobEvent;
using engine::StopCause;
using std::chrono::duration_cast;
using std::chrono::seconds;

namespace {

// What to fix, by the refusal ("401 invalid_api_key", "404 model_not_found", "404 " ...).
std::string refusal_advice(const JobEvent& e) {
  const std::string status = e.refusal.substr(0, 3);
  const std::string code = e.refusal.size() > 4 ? e.refusal.substr(4) : std::string();
  if (status == "401") return "the API key was refused: check OPENAI_API_KEY (or --api-key), and --organization / --project if given";
  if (code == "model_not_found") {
    return "model \"" + e.model + "\" does not exist or this key's project has no access to it: check the model name in the input, "
           "or the project's model access (--project)";
  }
  if (status == "404") return "the URL " + e.url + " does not exist: check --base-url / OPENAI_BASE_URL (the API's is https://api.openai.com/v1)";
  return "the key's organization or project may not use model \"" + e.model + "\" or this endpoint: check --organization / --project, "
         "the model, and the project's permissions";
}

// The summary's "stopped" line.
std::string stop_reason(const JobEvent& e) {
  switch (e.cause) {
    case StopCause::none: break;
    case StopCause::disk_full:
      return "cannot write: " + e.detail +
             ". Nothing is lost that was recorded; the job is resumable: make room (or move the output and its "
             "journal to a larger disk) and re-run the same command";
    case StopCause::interrupted: return "interrupted";
    case StopCause::unreachable:
      return e.slow ? "unreachable: no answer in time from " + e.base_url + " (it took the requests; raise --timeout)"
                    : "unreachable: no answer from " + e.base_url;
    case StopCause::outage:
      return "outage: " + e.base_url + " stopped answering mid-run for longer than --outage-limit (" + format_duration(e.limit) + ")";
    case StopCause::rejected: return "rejected: " + refusal_advice(e);
    case StopCause::insufficient_quota: return "insufficient_quota";
    case StopCause::budget: return "budget: " + e.detail;
    case StopCause::paused: return e.detail;
  }
  return std::string(engine::name(e));
}

}  // namespace

std::string flag_for_option(std::string_view option) {
  static constexpr std::pair<std::string_view, std::string_view> kFlags[] = {
      {"ignore_pause", "--ignore-pause"},
      {"max_wait", "--max-wait"},
      {"max_pause", "--max-pause"},
      {"max_in_flight", "--max-in-flight"},
      {"retry.max_attempts", "--max-attempts"},
      {"transport.total_timeout", "--timeout"},
      {"transport.idle_timeout", "--idle-timeout"},
      {"overwrite", "--overwrite"},
      {"retry_failed", "--retry-failed"},
      {"ordered", "--ordered"},
  };
  for (const auto& [name, flag] : kFlags) {
    if (name == option) return std::string(flag);
  }
  return std::string(option);
}

std::string describe_engine_event(const JobEvent& e) {
  switch (e.kind) {
    case JobEvent::Kind::interrupted:
      return "interrupted: no new requests; waiting for " + std::to_string(e.in_flight) +
             " in flight (Ctrl-C again to stop at once). Re-run the same command to resume.";
    case JobEvent::Kind::insufficient_quota:
      return "429 " + e.detail + ": the account is out of quota or over a spend/usage limit (check the plan, "
             "billing details and limits). Stopped admitting; draining requests in flight. Re-run the same command to resume.";
    case JobEvent::Kind::budget:
      return "budget reached: " + e.detail + "; no new requests, draining those in flight. Re-run to resume.";
    case JobEvent::Kind::unreachable: {
      const std::string over = thousands(e.count) + " attempts in a row over " + format_duration(duration_cast<seconds>(e.span));
      if (e.slow) {
        return "no answer from " + e.base_url + " in time: " + e.detail + " (" + over +
               "; the server accepted the connections and the requests). Stopped; the lines not answered were not "
               "recorded. If its answers take longer (long completions, a slow model or server), raise --timeout; "
               "then re-run the same command to resume.";
      }
      return "cannot reach " + e.base_url + ": " + e.detail + " (" + over +
             ", no answer yet). Stopped; the lines that could not be sent were not recorded. Check --base-url / "
             "OPENAI_BASE_URL and the network, then re-run the same command to resume.";
    }
    case JobEvent::Kind::outage_began: {
      const std::string bound = e.limit > Duration{0} ? "; if that takes longer than --outage-limit (" + format_duration(e.limit) +
                                                            ") the run stops, resumable (exit 8)"
                                                      : "";
      return "the server stopped answering (" + std::to_string(e.count) + " attempts in a row got no answer; last: " + e.detail +
             "): pausing all sending and probing one request at a time until it answers" + bound;
    }
    case JobEvent::Kind::outage_stopped:
      return "no answer from " + e.base_url + " for " + format_duration(duration_cast<seconds>(e.span)) + " (--outage-limit " +
             format_duration(e.limit) + "; last: " + e.detail +
             "). Stopped; the lines not finished were not recorded. Re-run the same command to resume once the server is back.";
    case JobEvent::Kind::rejected:
      return "every answer so far was the same refusal (" + thousands(e.count) + " of them, HTTP " + e.refusal.substr(0, 3) +
             (e.refusal.size() > 4 ? " " + e.refusal.substr(4) : std::string()) + ": " + e.detail + "): " + refusal_advice(e) +
             ". Stopped; nothing was recorded for the lines not sent or refused. Fix it, then re-run the same command.";
    case JobEvent::Kind::stopped: return stop_reason(e);
  }
  return std::string(engine::name(e));
}

}  // namespace floodgate::cli
