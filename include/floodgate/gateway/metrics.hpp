#pragma once
// /metrics: the gateway's state in Prometheus' text format (version 0.0.4), rendered from
// plain snapshots so that the text is a pure function, tested as such:
//   floodgate_gateway_lane_depth{lane}                       gauge: waiting now
//   floodgate_gateway_lane_queued_total{lane}                counter: taken into the queue
//   floodgate_gateway_lane_admitted_total{lane}              counter: handed upstream
//   floodgate_gateway_lane_rejected_total{lane,reason}       counter: 429s (queue_full, deadline)
//   floodgate_gateway_lane_cancelled_total{lane}             counter: left the queue unanswered
//   floodgate_gateway_lane_wait_seconds{lane}                histogram: enqueue to admission
//   floodgate_gateway_own_seconds                            histogram: the gateway's own time per relayed call
//   floodgate_gateway_responses_total{route,code}            counter: answers to clients
//   floodgate_gateway_upstream_responses_total{code}         counter: upstream answers (0: none)
//   floodgate_gateway_upstream_cancelled_total               counter: calls cut because the client left
//   floodgate_gateway_usage_tokens_total{kind}               counter: tokens of the answers' usage (input, output)
//   floodgate_gateway_upstream_in_flight                     gauge
//   floodgate_gateway_connections                            gauge: client connections open
// and per model the engine has paced (LimiterBoard below: the limiter as of its last
// admission or answer of that model, never older than that):
//   floodgate_gateway_limit{model,dimension}                 gauge: in force (0: none known)
//   floodgate_gateway_limit_used{model,dimension}            gauge: what the window holds
//   floodgate_gateway_limit_headroom{model,dimension}        gauge: limit - used (only where a limit is known)
//   floodgate_gateway_limit_learned{model}                   gauge: 1 when the limits in force are not the ones configured (learned from x-ratelimit-* headers)
//   floodgate_gateway_limit_learning{model}                  gauge: 1 while the first answer's headers are awaited (one probe at a time)
//   floodgate_gateway_limit_paused_seconds{model}            gauge: what is left of a pause the upstream asked for (0: none)
//   floodgate_gateway_limit_snapshot_age_seconds{model}      gauge: since that admission or answer
// dimension: requests_per_minute, tokens_per_minute, requests_per_day, tokens_per_day.
// No label ever holds a key; client keys appear (later) only by their log id. A model name
// is the client's text: label values are escaped (backslash, quote, newline).

#include <chrono>
#include <cstdint>
#include <iterator>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "floodgate/gateway/lanes.hpp"
#include "floodgate/limit/admission.hpp"

namespace floodgate::gateway {

// Upper bounds (seconds) of the own-time histogram's buckets, +Inf after the last: fine
// around the 0.1-2 ms a call costs the gateway, so that a p99 can be read from them.
inline constexpr double kOwnBucketsSeconds[] = {0.000025, 0.00005, 0.000075, 0.0001, 0.00015, 0.0002, 0.0003, 0.0005, 0.00075,
                                                0.001,    0.0015,  0.002,    0.003,  0.005,   0.01,   0.025,  0.1};

struct HttpCounts {
  std::map<std::pair<std::string, int>, std::uint64_t> responses;  // (route, status) -> answers
  std::map<int, std::uint64_t> upstream_responses;                 // upstream status -> answers
  std::uint64_t upstream_cancelled = 0;
  std::uint64_t usage_input_tokens = 0;
  std::uint64_t usage_output_tokens = 0;
  std::int64_t upstream_in_flight = 0;
  std::int64_t connections = 0;
  // The gateway's own time per call whose answer it relayed (at its first attempt, its body
  // read whole): from its request read to the last byte of its answer written, less its
  // waits (its key's sub-limit, its lane, the limiter until it admitted the call) and less
  // the time spent waiting for the upstream's bytes (docs/gateway.md, "Metrics").
  // Counts per bucket of kOwnBucketsSeconds (not cumulative; the last is +Inf), and the sum.
  std::vector<std::uint64_t> own_bucket_counts = std::vector<std::uint64_t>(std::size(kOwnBucketsSeconds) + 1, 0);
  double own_seconds_sum = 0;
  void add_own_time(std::chrono::nanoseconds own);
};

// One model's limiter, as /metrics shows it.
struct ModelHeadroom {
  std::string model;
  limit::LimiterSnapshot snapshot;
  bool learned = false;    // the limits in force differ from the configured ones
  Duration age{0};         // since the snapshot
  Duration paused_for{0};  // left of a pause in force
};

[[nodiscard]] std::string render_metrics(const std::vector<LaneStats>& lanes, const HttpCounts& counts,
                                         const std::vector<ModelHeadroom>& models = {});

// The engine's limiters seen from other threads. The engine asks its admissions only in its
// turns (one thread at a time) and a RateLimiter is not thread-safe, so watch() wraps a model's Admission
// (EngineOptions::make_admission): after each call that changes it (an admission, a
// settlement, a 429, a pause) the wrapper keeps the limiter's snapshot under a small lock of
// that model's. Cost: one snapshot (four window sums) and an uncontended lock per admission
// and per answer; nothing per byte. headroom() copies them for /metrics.
class LimiterBoard {
 public:
  // `owner`: what `inner` needs alive (the limiter set it points into), kept by the wrapper.
  [[nodiscard]] std::unique_ptr<limit::Admission> watch(const std::string& model, std::unique_ptr<limit::Admission> inner,
                                                        std::shared_ptr<const void> owner = {});
  // Every model watched, by name; `configured` gives a model's configured limits (to tell
  // learned ones), `now` the age and a pause's rest.
  [[nodiscard]] std::vector<ModelHeadroom> headroom(TimePoint now,
                                                    const std::function<limit::Limits(const std::string&)>& configured) const;
  // A model's snapshot, if it has one.
  [[nodiscard]] std::optional<limit::LimiterSnapshot> snapshot(const std::string& model) const;

  struct Slot {
    mutable std::mutex mu;
    limit::LimiterSnapshot snapshot;  // under mu
    TimePoint at{};                   // under mu
    bool taken = false;               // under mu: a snapshot was taken
  };

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Slot>, std::less<>> slots_;  // under mu_
};

}  // namespace floodgate::gateway
