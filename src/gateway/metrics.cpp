#include "floodgate/gateway/metrics.hpp"

#include <iterator>
#include <sstream>

namespace floodgate::gateway {
namespace {

void family(std::ostringstream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

}  // namespace

std::string render_metrics(const std::vector<LaneStats>& lanes, const HttpCounts& counts) {
  std::ostringstream out;
  out.precision(9);
  family(out, "floodgate_gateway_lane_depth", "gauge", "Requests waiting in the lane now.");
  for (const auto& l : lanes) out << "floodgate_gateway_lane_depth{lane=\"" << l.name << "\"} " << l.depth << '\n';
  family(out, "floodgate_gateway_lane_queued_total", "counter", "Requests taken into the lane's queue.");
  for (const auto& l : lanes) out << "floodgate_gateway_lane_queued_total{lane=\"" << l.name << "\"} " << l.queued_total << '\n';
  family(out, "floodgate_gateway_lane_admitted_total", "counter", "Requests the lane handed upstream.");
  for (const auto& l : lanes) out << "floodgate_gateway_lane_admitted_total{lane=\"" << l.name << "\"} " << l.admitted_total << '\n';
  family(out, "floodgate_gateway_lane_rejected_total", "counter",
         "Requests answered 429 by the lane: its queue was full or their wait reached its deadline.");
  for (const auto& l : lanes) {
    out << "floodgate_gateway_lane_rejected_total{lane=\"" << l.name << "\",reason=\"queue_full\"} " << l.rejected_queue_full << '\n';
    out << "floodgate_gateway_lane_rejected_total{lane=\"" << l.name << "\",reason=\"deadline\"} " << l.rejected_deadline << '\n';
  }
  family(out, "floodgate_gateway_lane_cancelled_total", "counter", "Requests that left the queue unanswered (client gone).");
  for (const auto& l : lanes) out << "floodgate_gateway_lane_cancelled_total{lane=\"" << l.name << "\"} " << l.cancelled_total << '\n';
  family(out, "floodgate_gateway_lane_wait_seconds", "histogram", "Wait from arrival to admission upstream.");
  for (const auto& l : lanes) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < l.wait_bucket_counts.size(); ++i) {
      cumulative += l.wait_bucket_counts[i];
      out << "floodgate_gateway_lane_wait_seconds_bucket{lane=\"" << l.name << "\",le=\"";
      if (i < std::size(kWaitBucketsSeconds)) {
        out << kWaitBucketsSeconds[i];
      } else {
        out << "+Inf";
      }
      out << "\"} " << cumulative << '\n';
    }
    out << "floodgate_gateway_lane_wait_seconds_sum{lane=\"" << l.name << "\"} " << l.wait_seconds_sum << '\n';
    out << "floodgate_gateway_lane_wait_seconds_count{lane=\"" << l.name << "\"} " << cumulative << '\n';
  }
  family(out, "floodgate_gateway_responses_total", "counter", "Answers to clients by route and status code.");
  for (const auto& [key, n] : counts.responses) {
    out << "floodgate_gateway_responses_total{route=\"" << key.first << "\",code=\"" << key.second << "\"} " << n << '\n';
  }
  family(out, "floodgate_gateway_upstream_responses_total", "counter", "Upstream answers by status code (0: no answer).");
  for (const auto& [code, n] : counts.upstream_responses) {
    out << "floodgate_gateway_upstream_responses_total{code=\"" << code << "\"} " << n << '\n';
  }
  family(out, "floodgate_gateway_upstream_cancelled_total", "counter",
         "Upstream calls cut off because their client hung up (the upstream connection was closed).");
  out << "floodgate_gateway_upstream_cancelled_total " << counts.upstream_cancelled << '\n';
  family(out, "floodgate_gateway_usage_tokens_total", "counter", "Tokens in the usage of the answers relayed.");
  out << "floodgate_gateway_usage_tokens_total{kind=\"input\"} " << counts.usage_input_tokens << '\n';
  out << "floodgate_gateway_usage_tokens_total{kind=\"output\"} " << counts.usage_output_tokens << '\n';
  family(out, "floodgate_gateway_upstream_in_flight", "gauge", "Requests sent upstream and not answered yet.");
  out << "floodgate_gateway_upstream_in_flight " << counts.upstream_in_flight << '\n';
  family(out, "floodgate_gateway_connections", "gauge", "Client connections open.");
  out << "floodgate_gateway_connections " << counts.connections << '\n';
  return out.str();
}

}  // namespace floodgate::gateway
