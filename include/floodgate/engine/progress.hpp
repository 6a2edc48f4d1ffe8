#pragma once
// Progress: what a running job shows. On a terminal, one live line rewritten in place
//   [ 4,210/10,000  42%] 98.1 req/s  ETA 59s | rpm 5,890/6,000 tpm 1.2M/2M charged (input+16) used 0.9M | 429s 0 retries 3 | breaker closed
// "tpm" is the server-side charge of the last 60 s (what the provider counts against the
// limit, by the model's charge rule), "used" the usage the answers reported so far.
// Not on a terminal, the same facts as a log line every `log_interval` (plain text or one
// JSON object per line with --log-format json). --quiet shows nothing but errors.
// The engine calls update() on every loop turn; Progress decides when to draw.
//
// "rpm" and "tpm" are counts of the last 60 s (what the limiter's window holds), never a
// rate extrapolated to a minute. The req/s rate (and the ETA built on it) counts only this
// run's finished lines and is shown once it is measured over kMinRateSpan (5 s): before
// that, a rate from the first one to three answers is noise ("- req/s ETA ?"; null in JSON).

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <initializer_list>
#include <utility>
#include <optional>
#include <string>
#include <string_view>

#include "floodgate/core/clock.hpp"

namespace floodgate::engine {

enum class LogFormat { text, json };

// The shortest span a req/s rate is measured over before it is shown.
inline constexpr Duration kMinRateSpan = std::chrono::seconds(5);

// A limit as a server states it: 1e9 and more is "no limit" (OpenAI-compatible servers and
// `floodgate sim` send 1000000000 for a dimension they do not limit).
[[nodiscard]] constexpr bool is_unlimited(double limit) noexcept { return limit >= 1e9; }

struct ProgressOptions {
  bool quiet = false;
  LogFormat format = LogFormat::text;
  std::optional<bool> tty;  // nullopt: isatty(stderr)
  Duration tty_interval = std::chrono::milliseconds(250);
  Duration log_interval = std::chrono::seconds(5);
  std::FILE* stream = stderr;
};

struct ProgressState {
  std::uint64_t done = 0;        // terminal outcomes this run (+ skipped)
  std::uint64_t skipped = 0;     // of `done`: finished before this run (not in the rate)
  std::uint64_t total = 0;       // lines known so far
  bool total_final = false;      // input fully read
  double input_fraction = 0;     // bytes read / file size, for an ETA before the end is known
  std::uint64_t in_flight = 0;
  std::uint64_t queued = 0;
  std::uint64_t failed = 0;
  std::uint64_t http_429 = 0;
  std::uint64_t retries = 0;
  double requests_last_minute = 0;
  double tokens_last_minute = 0;
  double rpm_limit = 0;
  double tpm_limit = 0;
  std::uint64_t usage_tokens = 0;  // what the answers say was used so far (not the charge)
  std::string charge;              // the first model's charge rule ("input+16"), "" when unknown
  std::string breaker = "closed";
  std::string note;              // "draining", "paused until ...", "learning limits"
};

class Progress {
 public:
  explicit Progress(ProgressOptions options, TimePoint start);
  // True when update() would draw now (so the caller can skip building the state).
  [[nodiscard]] bool due(TimePoint now) const noexcept;
  // Draws if it is time to (or `force`).
  void update(const ProgressState& state, TimePoint now, bool force = false);
  // Clears the live line (before the summary is printed).
  void finish();
  // A warning or notice, printed on its own line (and in JSON with --log-format json).
  // `numbers` become fields of the JSON object ({"wait_s": 31.5}); plain text shows `text` only.
  void message(std::string_view level, std::string_view text,
               std::initializer_list<std::pair<std::string_view, double>> numbers = {});

 private:
  [[nodiscard]] std::string render(const ProgressState& s, TimePoint now) const;
  ProgressOptions options_;
  bool tty_ = false;
  TimePoint start_;
  TimePoint last_draw_{};
  bool drawn_ = false;
  bool live_line_ = false;
  // (time, lines finished this run) at recent draws: the rate and ETA use the last ~10 s,
  // not the whole run.
  mutable std::deque<std::pair<TimePoint, std::uint64_t>> samples_;
};

}  // namespace floodgate::engine
