#pragma once
// /metrics: the gateway's state in Prometheus' text format (version 0.0.4), rendered from
// plain snapshots so that the text is a pure function, tested as such:
//   floodgate_gateway_lane_depth{lane}                       gauge: waiting now
//   floodgate_gateway_lane_queued_total{lane}                counter: taken into the queue
//   floodgate_gateway_lane_admitted_total{lane}              counter: handed upstream
//   floodgate_gateway_lane_rejected_total{lane,reason}       counter: 429s (queue_full, deadline)
//   floodgate_gateway_lane_cancelled_total{lane}             counter: left the queue unanswered
//   floodgate_gateway_lane_wait_seconds{lane}                histogram: enqueue to admission
//   floodgate_gateway_responses_total{route,code}            counter: answers to clients
//   floodgate_gateway_upstream_responses_total{code}         counter: upstream answers (0: none)
//   floodgate_gateway_upstream_cancelled_total               counter: calls cut because the client left
//   floodgate_gateway_usage_tokens_total{kind}               counter: tokens of the answers' usage (input, output)
//   floodgate_gateway_upstream_in_flight                     gauge
//   floodgate_gateway_connections                            gauge: client connections open
// No label ever holds a key; client keys appear (later) only by their log id.

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "floodgate/gateway/lanes.hpp"

namespace floodgate::gateway {

struct HttpCounts {
  std::map<std::pair<std::string, int>, std::uint64_t> responses;  // (route, status) -> answers
  std::map<int, std::uint64_t> upstream_responses;                 // upstream status -> answers
  std::uint64_t upstream_cancelled = 0;
  std::uint64_t usage_input_tokens = 0;
  std::uint64_t usage_output_tokens = 0;
  std::int64_t upstream_in_flight = 0;
  std::int64_t connections = 0;
};

[[nodiscard]] std::string render_metrics(const std::vector<LaneStats>& lanes, const HttpCounts& counts);

}  // namespace floodgate::gateway
