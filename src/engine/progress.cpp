#include "floodgate/engine/progress.hpp"

#include <unistd.h>

#include <cmath>

#include "floodgate/core/batch_io.hpp"

namespace floodgate::engine {
namespace {

std::string human(double v) {
  char buf[32];
  if (v >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.1fM", v / 1e6);
  } else if (v >= 1e4) {
    std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  }
  return buf;
}

// A server that states no limit for a dimension sends a huge one (OpenAI-compatible servers
// and `floodgate sim` send 1000000000): that is "unlimited", not a limit to compare with.
std::string limit_text(double v) {
  if (is_unlimited(v)) return "unlimited";
  return v > 0 ? human(v) : std::string("-");
}

std::string eta_text(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  char buf[32];
  const auto s = static_cast<long long>(seconds + 0.5);
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s / 60) % 60);
  } else if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%llds", s);
  }
  return buf;
}

}  // namespace

Progress::Progress(ProgressOptions options, TimePoint start) : options_(options), start_(start) {
  tty_ = options_.tty.value_or(::isatty(fileno(options_.stream)) != 0);
}

std::string Progress::render(const ProgressState& s, TimePoint now) const {
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  // Recent rate: over the last ~10 s of draws (the whole run before that), of the lines this
  // run finished; unknown (NaN) until measured over kMinRateSpan.
  const std::uint64_t finished = s.done - std::min(s.done, s.skipped);
  samples_.emplace_back(now, finished);
  while (samples_.size() > 2 && now - samples_[1].first >= std::chrono::seconds(10)) samples_.pop_front();
  double rate = NAN;
  if (samples_.size() >= 2 && now - samples_.front().first >= kMinRateSpan) {
    const double span = std::chrono::duration<double>(now - samples_.front().first).count();
    rate = static_cast<double>(finished - std::min(finished, samples_.front().second)) / span;
  } else if (now - start_ >= kMinRateSpan) {
    rate = static_cast<double>(finished) / elapsed;
  }
  double remaining = 0;
  if (s.total_final) {
    remaining = static_cast<double>(s.total - std::min(s.total, s.done));
  } else if (s.input_fraction > 0) {
    remaining = static_cast<double>(s.total) / s.input_fraction - static_cast<double>(s.done);
  } else {
    remaining = NAN;
  }
  const double eta = rate > 0 ? remaining / rate : NAN;
  const bool rate_known = !std::isnan(rate);
  char buf[512];
  if (options_.format == LogFormat::json) {
    std::string out = "{\"event\":\"progress\",\"elapsed_s\":" + std::to_string(elapsed) + ",\"done\":" + std::to_string(s.done) +
                      ",\"total\":" + std::to_string(s.total) + ",\"total_final\":" + (s.total_final ? "true" : "false") +
                      ",\"rate_per_s\":" + (rate_known ? std::to_string(rate) : std::string("null")) + ",\"in_flight\":" + std::to_string(s.in_flight) +
                      ",\"failed\":" + std::to_string(s.failed) + ",\"http_429\":" + std::to_string(s.http_429) +
                      ",\"retries\":" + std::to_string(s.retries) + ",\"rpm\":" + std::to_string(s.requests_last_minute) +
                      ",\"rpm_limit\":" + std::to_string(s.rpm_limit) + ",\"tpm\":" + std::to_string(s.tokens_last_minute) +
                      ",\"tpm_limit\":" + std::to_string(s.tpm_limit) + ",\"usage_tokens\":" + std::to_string(s.usage_tokens) +
                      ",\"charge\":";
    append_json_string(out, s.charge);
    out += ",\"breaker\":";
    append_json_string(out, s.breaker);
    out += ",\"note\":";
    append_json_string(out, s.note);
    out += "}";
    return out;
  }
  std::string total = s.total_final ? human(static_cast<double>(s.total)) : human(static_cast<double>(s.total)) + "+";
  const double pct = s.total_final && s.total > 0 ? 100.0 * static_cast<double>(s.done) / static_cast<double>(s.total) : NAN;
  char pct_text[16];
  if (std::isnan(pct)) {
    std::snprintf(pct_text, sizeof pct_text, "  ?%%");
  } else {
    std::snprintf(pct_text, sizeof pct_text, "%3.0f%%", pct);
  }
  const std::string charge = s.charge.empty() ? std::string() : " charged (" + s.charge + ")";
  char rate_text[32] = "-";
  if (rate_known) std::snprintf(rate_text, sizeof rate_text, "%.1f", rate);
  std::snprintf(buf, sizeof buf, "[%s/%s %s] %s req/s ETA %s | rpm %s/%s tpm %s/%s%s used %s | in flight %llu | 429s %llu retries %llu failed %llu | breaker %s%s%s",
                human(static_cast<double>(s.done)).c_str(), total.c_str(), pct_text, rate_text, eta_text(eta).c_str(),
                human(s.requests_last_minute).c_str(), limit_text(s.rpm_limit).c_str(), human(s.tokens_last_minute).c_str(),
                limit_text(s.tpm_limit).c_str(), charge.c_str(), human(static_cast<double>(s.usage_tokens)).c_str(),
                static_cast<unsigned long long>(s.in_flight),
                static_cast<unsigned long long>(s.http_429), static_cast<unsigned long long>(s.retries),
                static_cast<unsigned long long>(s.failed), s.breaker.c_str(), s.note.empty() ? "" : " | ", s.note.c_str());
  return buf;
}

bool Progress::due(TimePoint now) const noexcept {
  if (options_.quiet) return false;
  const Duration interval = tty_ ? options_.tty_interval : options_.log_interval;
  if (drawn_ && now - last_draw_ < interval) return false;
  if (!drawn_ && !tty_ && now - start_ < interval) return false;
  return true;
}

void Progress::update(const ProgressState& state, TimePoint now, bool force) {
  if (options_.quiet) return;
  if (!force && !due(now)) return;
  last_draw_ = now;
  drawn_ = true;
  const std::string line = render(state, now);
  if (tty_ && options_.format == LogFormat::text) {
    std::fprintf(options_.stream, "\r\x1b[2K%s", line.c_str());
    live_line_ = true;
  } else {
    std::fprintf(options_.stream, "%s\n", line.c_str());
  }
  std::fflush(options_.stream);
}

void Progress::finish() {
  if (live_line_) {
    std::fprintf(options_.stream, "\r\x1b[2K");
    std::fflush(options_.stream);
    live_line_ = false;
  }
}

void Progress::message(std::string_view level, std::string_view text, std::initializer_list<std::pair<std::string_view, double>> numbers) {
  if (options_.quiet && level != "error" && level != "warning") return;
  finish();
  if (options_.format == LogFormat::json) {
    std::string out = "{\"event\":\"message\",\"level\":";
    append_json_string(out, level);
    out += ",\"message\":";
    append_json_string(out, text);
    for (const auto& [name, value] : numbers) {
      out += ",";
      append_json_string(out, name);
      out += ":" + std::to_string(value);
    }
    out += "}\n";
    std::fputs(out.c_str(), options_.stream);
  } else {
    std::fprintf(options_.stream, "floodgate: %.*s: %.*s\n", static_cast<int>(level.size()), level.data(), static_cast<int>(text.size()),
                 text.data());
  }
  std::fflush(options_.stream);
}

}  // namespace floodgate::engine
