#include "floodgate/gateway/routing.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "floodgate/gateway/keys.hpp"
#include "floodgate/gateway/lanes.hpp"

using namespace std::chrono_literals;
using namespace floodgate::gateway;

TEST(Routing, KnowsTheOpenAIPathsAndItsOwn) {
  EXPECT_EQ(route_of("POST", "/v1/chat/completions"), Route::chat_completions);
  EXPECT_EQ(route_of("POST", "/v1/embeddings"), Route::embeddings);
  EXPECT_EQ(route_of("POST", "/v1/responses"), Route::responses);
  EXPECT_EQ(route_of("POST", "/v1/audio/transcriptions"), Route::audio_transcriptions);
  EXPECT_EQ(route_of("POST", "/v1/audio/translations"), Route::audio_translations);
  EXPECT_EQ(route_of("GET", "/v1/models"), Route::models);
  EXPECT_EQ(route_of("GET", "/v1/models/gpt-4o-mini"), Route::models);
  EXPECT_EQ(route_of("GET", "/v1/models?limit=3"), Route::models);
  EXPECT_EQ(route_of("GET", "/healthz"), Route::healthz);
  EXPECT_EQ(route_of("GET", "/metrics"), Route::metrics);
  EXPECT_EQ(route_of("GET", "/v1/floodgate/usage"), Route::usage);
  EXPECT_EQ(route_of("GET", "/v1/floodgate/usage?x=1"), Route::usage);
  EXPECT_EQ(route_of("POST", "/v1/floodgate/usage"), Route::proxied);
  // The rest of /v1/ is passed on as is (the upstream answers what it does not know).
  EXPECT_EQ(route_of("GET", "/v1/chat/completions"), Route::proxied);
  EXPECT_EQ(route_of("POST", "/v1/chat/completion"), Route::proxied);
  EXPECT_EQ(route_of("GET", "/v1/models/"), Route::proxied);
  EXPECT_EQ(route_of("POST", "/v1/files"), Route::proxied);
  EXPECT_EQ(route_of("GET", "/v1/models/a/b"), Route::proxied);
  EXPECT_EQ(route_of("GET", "/v2/models"), Route::unknown);
  EXPECT_EQ(route_of("GET", "/"), Route::unknown);
  EXPECT_EQ(route_of("POST", "/v1"), Route::unknown);
  EXPECT_TRUE(streams_body(Route::audio_transcriptions));
  EXPECT_TRUE(streams_body(Route::proxied));
  EXPECT_FALSE(streams_body(Route::chat_completions));
  EXPECT_TRUE(is_paced(Route::chat_completions));
  EXPECT_TRUE(is_paced(Route::audio_translations));
  EXPECT_FALSE(is_paced(Route::models));
  EXPECT_FALSE(is_paced(Route::healthz));
}

TEST(Routing, TheLaneComesFromHeaderThenServiceTierThenKeyThenDefault) {
  const Lanes lanes(default_lanes());
  ClientKey batch_key;
  batch_key.lane = 1;
  const auto lane = [&](std::string_view header, const ClientKey* key, std::string_view tier) {
    const auto choice = choose_lane(lanes, header, key, tier);
    return std::get<LaneChoice>(choice);
  };
  EXPECT_EQ(lane("", nullptr, "").lane, 0u);
  EXPECT_EQ(lane("", nullptr, "").why, "default");
  EXPECT_EQ(lane("", &batch_key, "").lane, 1u);
  EXPECT_EQ(lane("", &batch_key, "").why, "key");
  EXPECT_EQ(lane("", &batch_key, "priority").lane, 0u);
  EXPECT_EQ(lane("", nullptr, "flex").lane, 1u);
  EXPECT_EQ(lane("", nullptr, "flex").why, "service_tier");
  EXPECT_EQ(lane("", &batch_key, "default").lane, 1u) << "'default' and 'auto' tiers name no lane";
  EXPECT_EQ(lane("interactive", &batch_key, "flex").lane, 0u);
  EXPECT_EQ(lane("interactive", &batch_key, "flex").why, "header");
  EXPECT_EQ(lane("batch", nullptr, "priority").lane, 1u);
}

TEST(Routing, AKeyThatMayNotChooseKeepsItsLane) {
  const Lanes lanes(default_lanes());
  ClientKey fixed;
  fixed.lane = 1;
  fixed.may_choose_lane = false;
  EXPECT_EQ(std::get<LaneChoice>(choose_lane(lanes, "interactive", &fixed, "priority")).lane, 1u);
}

TEST(Routing, AnUnknownLaneHeaderIsTheClientsError) {
  const Lanes lanes(default_lanes());
  const auto choice = choose_lane(lanes, "urgent", nullptr, "");
  ASSERT_TRUE(std::holds_alternative<std::string>(choice));
  EXPECT_EQ(std::get<std::string>(choice),
            "unknown lane 'urgent' in the x-floodgate-lane header (lanes: interactive, batch)");
}

TEST(Routing, ServiceTierIsReadFromTheBodyOnlyWhenThere) {
  EXPECT_EQ(service_tier_of(R"({"model":"m","service_tier":"flex"})"), "flex");
  EXPECT_EQ(service_tier_of(R"({"model":"m"})"), "");
  EXPECT_EQ(service_tier_of(R"({"model":"m","service_tier":3})"), "");
  EXPECT_EQ(service_tier_of(R"(not json "service_tier")"), "");
  EXPECT_EQ(service_tier_of(R"({"messages":[{"content":"\"service_tier\""}]})"), "");
}

TEST(Routing, ErrorsHaveOpenAIsShape) {
  // Byte for byte, in OpenAI's order of fields.
  EXPECT_EQ(openai_error_body("Lane full", "requests", "rate_limit_exceeded"),
            R"({"error":{"message":"Lane full","type":"requests","param":null,"code":"rate_limit_exceeded"}})");
  EXPECT_TRUE(nlohmann::json::parse(openai_error_body("x", "invalid_request_error", ""))["error"]["code"].is_null());
}

TEST(Routing, RetryAfterRoundsUpToWholeSecondsAndMilliseconds) {
  EXPECT_EQ(retry_after_values(15s).seconds, "15");
  EXPECT_EQ(retry_after_values(15s).milliseconds, "15000");
  EXPECT_EQ(retry_after_values(15s + 1ns).seconds, "16");
  EXPECT_EQ(retry_after_values(15s + 1ns).milliseconds, "15001");
  EXPECT_EQ(retry_after_values(200ms).seconds, "1");
  EXPECT_EQ(retry_after_values(0s).seconds, "1");
  EXPECT_EQ(retry_after_values(0s).milliseconds, "1");
}
