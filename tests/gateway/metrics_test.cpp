#include "floodgate/gateway/metrics.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using floodgate::ManualClock;
using namespace floodgate::gateway;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

}  // namespace

TEST(Metrics, LaneCountersDepthAndCumulativeWaitHistogram) {
  ManualClock clock;
  Lanes lanes({LaneConfig{"interactive", 2, 1s, 0}, LaneConfig{"batch", 5, 60s, 100}});
  const auto t0 = clock.now();
  ASSERT_FALSE(lanes.enqueue(1, 0, t0));
  ASSERT_FALSE(lanes.enqueue(2, 0, t0));
  ASSERT_TRUE(lanes.enqueue(3, 0, t0));  // full
  ASSERT_FALSE(lanes.enqueue(4, 1, t0));
  ASSERT_FALSE(lanes.enqueue(5, 1, t0));
  ASSERT_EQ(lanes.pull(t0 + 20ms)->id, 1u);  // waited 20 ms: bucket le=0.025
  ASSERT_EQ(lanes.expire(t0 + 1s).size(), 1u);  // id 2 expires
  HttpCounts counts;
  counts.responses[{"chat_completions", 200}] = 7;
  counts.responses[{"chat_completions", 429}] = 2;
  counts.upstream_responses[200] = 7;
  counts.upstream_in_flight = 1;
  counts.connections = 3;
  const std::string text = render_metrics(lanes.stats(), counts);
  EXPECT_TRUE(has_line(text, "# TYPE floodgate_gateway_lane_depth gauge")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_lane_depth{lane=\"interactive\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_lane_depth{lane=\"batch\"} 2")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_lane_queued_total{lane=\"interactive\"} 2")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_lane_admitted_total{lane=\"interactive\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_lane_rejected_total{lane=\"interactive\",reason=\"queue_full\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_lane_rejected_total{lane=\"interactive\",reason=\"deadline\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "# TYPE floodgate_gateway_lane_wait_seconds histogram")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_lane_wait_seconds_bucket{lane=\"interactive\",le=\"0.01\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_lane_wait_seconds_bucket{lane=\"interactive\",le=\"0.025\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_lane_wait_seconds_bucket{lane=\"interactive\",le=\"300\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_lane_wait_seconds_bucket{lane=\"interactive\",le=\"+Inf\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_lane_wait_seconds_sum{lane=\"interactive\"} 0.02")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_lane_wait_seconds_count{lane=\"interactive\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_lane_wait_seconds_count{lane=\"batch\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_responses_total{route=\"chat_completions\",code=\"429\"} 2")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_upstream_responses_total{code=\"200\"} 7")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_upstream_in_flight 1")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_connections 3")) << text;
  EXPECT_EQ(text.back(), '\n');
}

TEST(Metrics, EveryFamilyHasHelpAndTypeBeforeItsSamples) {
  Lanes lanes(default_lanes());
  const std::string text = render_metrics(lanes.stats(), HttpCounts{});
  std::size_t samples = 0;
  std::string declared;
  for (std::size_t at = 0; at < text.size();) {
    const auto end = text.find('\n', at);
    const std::string line = text.substr(at, end - at);
    at = end + 1;
    if (line.rfind("# TYPE ", 0) == 0) {
      declared = line.substr(7, line.find(' ', 7) - 7);
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) continue;
    ++samples;
    EXPECT_EQ(line.rfind(declared, 0), 0u) << line << " is not of the family declared before it, " << declared;
  }
  EXPECT_GT(samples, 10u);
}
