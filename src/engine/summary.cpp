#include <cstdio>
#include <string>

#include "floodgate/core/batch_io.hpp"
#include "floodgate/engine/engine.hpp"
#include "words.hpp"

namespace floodgate::engine {

// The end-of-job summary: what the CLI prints (text) or logs (one JSON object).
std::string format_summary(const RunSummary& s, bool json) {
  auto limit_or_dash = [](double v) {
    if (is_unlimited(v)) return std::string("unlimited");  // a server's "no limit" (1e9), not a number to compare with
    return v > 0 ? thousands(static_cast<std::uint64_t>(v)) + "/min" : std::string("-");
  };
  if (json) {
    std::string out = "{\"event\":\"summary\",\"exit_code\":" + std::to_string(s.exit_code) + ",\"stop_reason\":";
    append_json_string(out, s.stop_reason);
    out += ",\"lines\":" + std::to_string(s.total_lines) + ",\"skipped_done\":" + std::to_string(s.skipped_done) +
           ",\"earlier_succeeded\":" + std::to_string(s.earlier_succeeded) + ",\"earlier_failed\":" + std::to_string(s.earlier_failed) +
           ",\"error_lines_in_output\":" + std::to_string(s.failed + s.earlier_failed) +
           ",\"succeeded\":" + std::to_string(s.succeeded) + ",\"failed\":" + std::to_string(s.failed) +
           ",\"not_done\":" + std::to_string(s.not_done) + ",\"outcomes\":{";
    bool first = true;
    for (const auto& [k, v] : s.outcomes) {
      if (k == "none") continue;  // successes are "succeeded": outcomes are the failures by kind
      if (!first) out += ",";
      first = false;
      append_json_string(out, k);
      out += ":" + std::to_string(v);
    }
    out += "},\"attempts\":" + std::to_string(s.attempts) + ",\"retries\":" + std::to_string(s.retries) +
           ",\"http_429\":" + std::to_string(s.http_429) + ",\"tokens\":{\"prompt\":" + std::to_string(s.tokens_prompt) +
           ",\"completion\":" + std::to_string(s.tokens_completion) + ",\"total\":" + std::to_string(s.tokens_total) +
           "},\"wall_seconds\":" + std::to_string(s.wall_seconds) + ",\"achieved_rpm\":" + std::to_string(s.achieved_rpm) +
           ",\"achieved_tpm\":" + std::to_string(s.achieved_tpm) + ",\"limits\":{\"rpm\":" + std::to_string(s.limits.requests_per_minute) +
           ",\"tpm\":" + std::to_string(s.limits.tokens_per_minute) + ",\"rpd\":" + std::to_string(s.limits.requests_per_day) +
           ",\"tpd\":" + std::to_string(s.limits.tokens_per_day) + "},\"breaker_opened\":" + std::to_string(s.breaker_opened) +
           ",\"reconciled_output_lines\":" + std::to_string(s.reconciled_output_lines) +
           ",\"retried_failed_lines\":" + std::to_string(s.retried_failed_lines) + "}\n";
    return out;
  }
  std::string out = "floodgate run summary\n";
  char buf[256];
  if (s.earlier_succeeded + s.earlier_failed > 0) {
    std::snprintf(buf, sizeof buf, "  lines         %s (%s already done before this run: %s succeeded, %s failed)\n", thousands(s.total_lines).c_str(),
                  thousands(s.skipped_done).c_str(), thousands(s.earlier_succeeded).c_str(), thousands(s.earlier_failed).c_str());
  } else {
    std::snprintf(buf, sizeof buf, "  lines         %s (%s already done before this run)\n", thousands(s.total_lines).c_str(),
                  thousands(s.skipped_done).c_str());
  }
  out += buf;
  std::snprintf(buf, sizeof buf, "  succeeded     %s\n  failed        %s\n", thousands(s.succeeded).c_str(), thousands(s.failed).c_str());
  out += buf;
  if (s.not_done > 0 || !s.stop_reason.empty()) {
    std::snprintf(buf, sizeof buf, "  not done      %s (resumable: re-run the same command)\n", thousands(s.not_done).c_str());
    out += buf;
  }
  for (const auto& [k, v] : s.outcomes) {
    if (k == "none") continue;
    std::snprintf(buf, sizeof buf, "    %-20s %s\n", k.c_str(), thousands(v).c_str());
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "  wall time     %.2f s\n", s.wall_seconds);
  out += buf;
  if (s.attempts == 0) {
    // Nothing sent (every line done before, or a stop before the first request): no rate to
    // show, only the limits the run had.
    std::snprintf(buf, sizeof buf, "  requests      none sent in this run (limit %s)\n  tokens/min    none used in this run (limit %s)\n",
                  limit_or_dash(s.limits.requests_per_minute).c_str(), limit_or_dash(s.limits.tokens_per_minute).c_str());
    out += buf;
  } else if (s.wall_seconds >= 60.0) {
    std::snprintf(buf, sizeof buf, "  requests/min  %s average over the run (limit %s in any 60 s); %s attempts, %s retries, %s answered 429\n",
                  thousands(static_cast<std::uint64_t>(s.achieved_rpm)).c_str(), limit_or_dash(s.limits.requests_per_minute).c_str(),
                  thousands(s.attempts).c_str(), thousands(s.retries).c_str(), thousands(s.http_429).c_str());
    out += buf;
    std::snprintf(buf, sizeof buf, "  tokens/min    %s average over the run (limit %s)\n", thousands(static_cast<std::uint64_t>(s.achieved_tpm)).c_str(),
                  limit_or_dash(s.limits.tokens_per_minute).c_str());
    out += buf;
  } else {
    // A run shorter than a minute: one 60 s window holds all it sent, and the limits count
    // per 60 s. A per-minute figure extrapolated from its seconds read like a breach of the
    // limit after a burst the window allowed ("687/min if sustained (limit 600/min)"): say
    // what was sent, against the limit.
    std::snprintf(buf, sizeof buf, "  requests      %s attempts in %.1f s, all within one 60 s window (limit %s); %s retries, %s answered 429\n",
                  thousands(s.attempts).c_str(), s.wall_seconds, limit_or_dash(s.limits.requests_per_minute).c_str(), thousands(s.retries).c_str(),
                  thousands(s.http_429).c_str());
    out += buf;
    std::snprintf(buf, sizeof buf, "  tokens/min    %s used in %.1f s, all within one 60 s window (limit %s)\n", thousands(s.tokens_total).c_str(),
                  s.wall_seconds, limit_or_dash(s.limits.tokens_per_minute).c_str());
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "  tokens        %s (prompt %s, completion %s)\n", thousands(s.tokens_total).c_str(),
                thousands(s.tokens_prompt).c_str(), thousands(s.tokens_completion).c_str());
  out += buf;
  if (s.breaker_opened > 0) {
    std::snprintf(buf, sizeof buf, "  breaker       opened %s times\n", thousands(s.breaker_opened).c_str());
    out += buf;
  }
  if (s.retried_failed_lines > 0) {
    std::snprintf(buf, sizeof buf, "  retried       %s lines that failed in an earlier run (--retry-failed)\n", thousands(s.retried_failed_lines).c_str());
    out += buf;
  }
  if (s.reconciled_output_lines > 0) {
    std::snprintf(buf, sizeof buf, "  recovered     %s output lines written before a crash were adopted into the journal\n",
                  thousands(s.reconciled_output_lines).c_str());
    out += buf;
  }
  if (!s.stop_reason.empty()) out += "  stopped       " + s.stop_reason + "\n";
  if (s.failed + s.earlier_failed > 0) {
    // The exit code describes the output as it stands: say how to clear its error lines.
    std::snprintf(buf, sizeof buf, "  error lines   %s in the output (%s from earlier runs): send them again with --retry-failed\n",
                  thousands(s.failed + s.earlier_failed).c_str(), thousands(s.earlier_failed).c_str());
    out += buf;
  }
  return out;
}

}  // namespace floodgate::engine
