#pragma once
// What GET /_sim/stats reports: totals, responses by status, 429s by type, quota refusals,
// faults by kind, peak concurrency and, overall and per model, the largest number of
// admitted requests and tokens in any 60-second window. Tests use it to prove a client
// never exceeded a limit.
//
// The window maxima are exact at millisecond resolution: admissions are kept for 60 s in
// per-millisecond buckets (count, tokens), and the maximum over all windows is reached by
// a window ending at an admission, so checking the window (t - 60 s, t] at each admission
// finds it. Memory stays bounded (at most 60,000 buckets) at any request rate.

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "floodgate/core/clock.hpp"
#include "floodgate/sim/options.hpp"

namespace floodgate::sim {

struct Outcome {
  int status = 0;
  std::string_view model;
  bool admitted = false;               // charged against the limits
  std::int64_t tokens_charged = 0;
  std::string_view rate_limit_type;    // "requests" / "tokens" for a 429 rate_limit_exceeded
  bool insufficient_quota = false;
  FaultKind fault = FaultKind::none;
  std::uint64_t upload_bytes = 0;
};

class Stats {
 public:
  void connection_opened() noexcept;
  void request_started() noexcept;
  void request_finished() noexcept;
  void record(const Outcome& outcome, TimePoint now);
  [[nodiscard]] nlohmann::json to_json();

 private:
  struct Window {
    struct Bucket {
      std::int64_t ms;
      std::int64_t requests;
      std::int64_t tokens;
    };
    std::deque<Bucket> buckets;
    std::int64_t requests = 0;
    std::int64_t tokens = 0;
    std::int64_t max_requests = 0;
    std::int64_t max_tokens = 0;
    void add(TimePoint now, std::int64_t tokens_charged);
  };
  struct PerModel {
    std::int64_t requests = 0;
    std::int64_t admitted = 0;
    std::int64_t tokens_charged = 0;
    std::int64_t rate_limited = 0;
    Window window;
  };

  std::mutex mutex_;
  std::int64_t requests_ = 0;
  std::int64_t admitted_ = 0;
  std::int64_t tokens_charged_ = 0;
  std::int64_t upload_bytes_ = 0;
  std::int64_t insufficient_quota_ = 0;
  std::int64_t connections_ = 0;
  std::int64_t in_flight_ = 0;
  std::int64_t peak_in_flight_ = 0;
  std::map<int, std::int64_t> by_status_;
  std::map<std::string, std::int64_t, std::less<>> rate_limited_by_type_;
  std::map<std::string, std::int64_t, std::less<>> faults_;
  std::map<std::string, PerModel, std::less<>> models_;
  Window window_;
};

}  // namespace floodgate::sim
