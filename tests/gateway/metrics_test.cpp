#include "floodgate/gateway/metrics.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

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

TEST(Metrics, TheOwnTimeHistogramBucketsEachCallOnceAndCumulates) {
  HttpCounts counts;
  counts.add_own_time(120us);   // le=0.00015
  counts.add_own_time(150us);   // on a bound: that bucket (le is inclusive)
  counts.add_own_time(-5us);    // a clock step: counted as 0, never a negative sum
  counts.add_own_time(2s);      // over every bound: +Inf only
  Lanes lanes({LaneConfig{"interactive", 2, 1s, 0}});
  const std::string text = render_metrics(lanes.stats(), counts);
  EXPECT_TRUE(has_line(text, "# TYPE floodgate_gateway_own_seconds histogram")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_own_seconds_bucket{le=\"2.5e-05\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_own_seconds_bucket{le=\"0.0001\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_own_seconds_bucket{le=\"0.00015\"} 3")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_own_seconds_bucket{le=\"0.1\"} 3")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_own_seconds_bucket{le=\"+Inf\"} 4")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_own_seconds_count 4")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_own_seconds_sum 2.00027")) << text;
  // Broken by: a bucket that is not cumulative, a bound taken as exclusive, a negative time summed.
}

TEST(Metrics, EveryFamilyHasHelpAndTypeBeforeItsSamples) {
  Lanes lanes(default_lanes());
  ModelHeadroom model;
  model.model = "gpt-4o-mini";
  model.snapshot.limits.requests_per_minute = 500;
  const std::string text = render_metrics(lanes.stats(), HttpCounts{}, {model});
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

TEST(Metrics, TheBoardKeepsEachModelsLimiterAsOfItsLastAdmissionOrAnswer) {
  ManualClock clock;
  floodgate::limit::Limits given;
  given.requests_per_minute = 600;
  given.tokens_per_minute = 10'000;
  floodgate::limit::RateLimiter limiter(given, /*learn_from_headers=*/false);
  LimiterBoard board;
  auto watched = board.watch("gpt-4o-mini", std::make_unique<floodgate::limit::LocalAdmission>(limiter));
  const auto configured = [&](const std::string&) { return given; };
  EXPECT_TRUE(board.headroom(clock.now(), configured).empty()) << "nothing to show before its first admission";

  const auto t0 = clock.now();
  ASSERT_TRUE(watched->try_acquire(floodgate::limit::Cost{1, 100}, t0).admitted());
  ASSERT_TRUE(watched->try_acquire(floodgate::limit::Cost{1, 250}, t0).admitted());
  watched->pause_until(t0 + 30s);
  clock.advance(1s);
  const auto models = board.headroom(clock.now(), configured);
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].model, "gpt-4o-mini");
  EXPECT_EQ(models[0].snapshot.limits.requests_per_minute, 600);
  EXPECT_EQ(models[0].snapshot.requests_last_minute, 2);
  EXPECT_EQ(models[0].snapshot.tokens_last_minute, 350);
  EXPECT_FALSE(models[0].learned);
  EXPECT_EQ(models[0].age, floodgate::Duration(1s));
  EXPECT_EQ(models[0].paused_for, floodgate::Duration(29s));
  // Limits other than the configured ones were learned.
  floodgate::limit::Limits other = given;
  other.requests_per_minute = 500;
  EXPECT_TRUE(board.headroom(clock.now(), [&](const std::string&) { return other; })[0].learned);
  EXPECT_FALSE(board.snapshot("gpt-4o").has_value());
  EXPECT_EQ(board.snapshot("gpt-4o-mini")->requests_last_minute, 2);
}

TEST(Metrics, HeadroomPerModelIsRenderedWithItsNameEscaped) {
  Lanes lanes(default_lanes());
  ModelHeadroom m;
  m.model = "odd\"model\\\nname";
  m.snapshot.limits.requests_per_minute = 600;
  m.snapshot.limits.tokens_per_minute = 0;  // not known
  m.snapshot.requests_last_minute = 42;
  m.snapshot.tokens_last_minute = 1234;
  m.learned = true;
  m.paused_for = 2500ms;
  m.age = 250ms;
  const std::string text = render_metrics(lanes.stats(), HttpCounts{}, {m});
  const std::string name = R"(model="odd\"model\\\nname")";
  EXPECT_TRUE(has_line(text, "# TYPE floodgate_gateway_limit gauge")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_limit{" + name + ",dimension=\"requests_per_minute\"} 600")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_limit{" + name + ",dimension=\"tokens_per_minute\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_limit_used{" + name + ",dimension=\"requests_per_minute\"} 42")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_limit_used{" + name + ",dimension=\"tokens_per_minute\"} 1234")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_limit_headroom{" + name + ",dimension=\"requests_per_minute\"} 558")) << text;
  EXPECT_EQ(text.find("floodgate_gateway_limit_headroom{" + name + ",dimension=\"tokens_per_minute\"}"), std::string::npos)
      << "no headroom where no limit is known";
  EXPECT_TRUE(has_line(text, "floodgate_gateway_limit_learned{" + name + "} 1")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_limit_learning{" + name + "} 0")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_limit_paused_seconds{" + name + "} 2.5")) << text;
  EXPECT_TRUE(has_line(text, "floodgate_gateway_limit_snapshot_age_seconds{" + name + "} 0.25")) << text;
  EXPECT_EQ(text.find("\nname"), std::string::npos) << "no raw newline from a label";
  EXPECT_EQ(render_metrics(lanes.stats(), HttpCounts{}).find("floodgate_gateway_limit"), std::string::npos)
      << "no families without a model";
}
