#include "floodgate/gateway/keys.hpp"

#include <gtest/gtest.h>

#include <string>

#include "floodgate/core/error.hpp"

using floodgate::gateway::ClientKey;
using floodgate::gateway::ClientKeys;

namespace {

const std::vector<std::string> kLanes = {"interactive", "batch"};

// The message of the floodgate::Error that parsing `text` throws ("" when it parses).
std::string error_of(const std::string& text) {
  try {
    (void)ClientKeys::parse(text, "keys.json", kLanes);
  } catch (const floodgate::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ClientKeys, MapsEachKeyToItsLaneLimitsAndBudget) {
  const auto keys = ClientKeys::parse(R"({"keys": [
    {"key": "fg-web-secret-1", "name": "web", "lane": "interactive"},
    {"key": "fg-nightly-secret-2", "name": "nightly", "lane": "batch", "may_choose_lane": false,
     "share_of_tokens_per_minute": 0.2, "requests_per_minute": 600, "budget_usd": 50}
  ]})", "keys.json", kLanes);
  EXPECT_EQ(keys.size(), 2u);
  const ClientKey* web = keys.find("fg-web-secret-1");
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->name, "web");
  EXPECT_EQ(web->lane, 0u);
  EXPECT_TRUE(web->may_choose_lane);
  EXPECT_FALSE(web->budget_usd);
  EXPECT_FALSE(web->sees_all_usage) << "a key sees its own usage only, unless the file says";
  const ClientKey* nightly = keys.find("fg-nightly-secret-2");
  ASSERT_NE(nightly, nullptr);
  EXPECT_EQ(nightly->lane, 1u);
  EXPECT_FALSE(nightly->may_choose_lane);
  EXPECT_EQ(nightly->share_of_tokens_per_minute, 0.2);
  EXPECT_EQ(nightly->requests_per_minute, 600);
  EXPECT_EQ(nightly->budget_usd, 50.0);
  EXPECT_EQ(keys.find("fg-web-secret-"), nullptr);
  EXPECT_EQ(keys.find(""), nullptr);
}

TEST(ClientKeys, AKeyMaySeeEveryKeysUsageAndEntriesListsThemAll) {
  const auto keys = ClientKeys::parse(R"({"keys": [{"key": "k1", "name": "ops", "sees_all_usage": true}, {"key": "k2", "name": "b"}]})",
                                      "keys.json", kLanes);
  EXPECT_TRUE(keys.find("k1")->sees_all_usage);
  EXPECT_FALSE(keys.find("k2")->sees_all_usage);
  EXPECT_EQ(keys.entries().size(), 2u);
}

TEST(ClientKeys, ALaneIsTheFirstLaneUnlessNamed) {
  const auto keys = ClientKeys::parse(R"({"keys": [{"key": "k1", "name": "a"}]})", "keys.json", kLanes);
  EXPECT_EQ(keys.find("k1")->lane, 0u);
}

TEST(ClientKeys, LogIdsShowTheNameAndAHashNeverTheKey) {
  const auto keys = ClientKeys::parse(R"({"keys": [{"key": "fg-web-secret-1", "name": "web"}]})", "keys.json", kLanes);
  const std::string id = keys.find("fg-web-secret-1")->log_id;
  EXPECT_EQ(id, "web#" + floodgate::gateway::key_sha256_hex("fg-web-secret-1").substr(0, 8));
  EXPECT_EQ(id.find("secret"), std::string::npos);
  EXPECT_EQ(floodgate::gateway::anonymous_key_id(""), "-");
  EXPECT_EQ(floodgate::gateway::anonymous_key_id("sk-abc").find("abc"), std::string::npos);
  // The SHA-256 of "abc" (FIPS 180-2's example).
  EXPECT_EQ(floodgate::gateway::key_sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ClientKeys, ASyntaxErrorNamesTheFileLineAndColumn) {
  const std::string message = error_of("{\"keys\": [\n  {\"key\": \"k1\",, \"name\": \"a\"}\n]}");
  EXPECT_NE(message.find("keys.json: not valid JSON: "), std::string::npos) << message;
  EXPECT_NE(message.find("line 2, column 16"), std::string::npos) << message;
  EXPECT_EQ(message.find("[json.exception"), std::string::npos) << message;
}

TEST(ClientKeys, EntryErrorsNameTheEntryAndFieldNeverTheKey) {
  EXPECT_EQ(error_of(R"({"keys": [{"key": "sekrit-1", "name": "a", "lane": "fast"}]})"),
            "keys.json: keys[0].lane: unknown lane 'fast' (lanes: interactive, batch)");
  EXPECT_EQ(error_of(R"({"keys": [{"key": "sekrit-1", "name": "a"}, {"key": "sekrit-1", "name": "b"}]})"),
            "keys.json: keys[1].key: the same key as the entry named 'a'");
  EXPECT_EQ(error_of(R"({"keys": [{"key": "sekrit-1", "name": "a"}, {"key": "sekrit-2", "name": "a"}]})"),
            "keys.json: keys[1].name: 'a' is used by an earlier entry");
  EXPECT_EQ(error_of(R"({"keys": [{"name": "a"}]})"),
            "keys.json: keys[0].key: missing (the key clients send as 'Authorization: Bearer KEY')");
  EXPECT_EQ(error_of(R"({"keys": [{"key": "sekrit-1"}]})"),
            "keys.json: keys[0].name: missing (a name for logs and metrics, e.g. \"web\")");
  EXPECT_EQ(error_of(R"({"keys": [{"key": "sekrit-1", "name": "a", "lanes": "batch"}]})"),
            "keys.json: keys[0]: unknown field \"lanes\"");
  EXPECT_EQ(error_of(R"({"keys": [{"key": "sekrit-1", "name": "a", "share_of_tokens_per_minute": 20}]})"),
            "keys.json: keys[0].share_of_tokens_per_minute: must be above 0 and at most 1 (0.2 is 20%), not 20");
  EXPECT_EQ(error_of(R"({"keys": [{"key": "sekrit-1", "name": "a", "requests_per_minute": 1.5}]})"),
            "keys.json: keys[0].requests_per_minute: must be a whole number above 0, not 1.5");
  EXPECT_EQ(error_of(R"({"keys": [{"key": "sekrit-1", "name": "a", "budget_usd": -1}]})"),
            "keys.json: keys[0].budget_usd: must be a number of dollars above 0, not -1");
  EXPECT_EQ(error_of(R"({"keys": [{"key": 12, "name": "a"}]})"), "keys.json: keys[0].key: must be a string (it is number)");
  EXPECT_EQ(error_of(R"({"keys": [{"key": "sekrit-1", "name": "a", "sees_all_usage": "yes"}]})"),
            "keys.json: keys[0].sees_all_usage: must be true or false, not \"yes\"");
  EXPECT_EQ(error_of(R"({"keys": {}})"),
            "keys.json: needs {\"keys\": [{\"key\": ..., \"name\": ..., \"lane\": ...}, ...]}");
  EXPECT_EQ(error_of(R"({"keys": []})"), "");
}

TEST(ClientKeys, AMissingFileIsNamed) {
  try {
    (void)ClientKeys::load("/nonexistent/keys.json", kLanes);
    FAIL() << "no error";
  } catch (const floodgate::Error& e) {
    EXPECT_STREQ(e.what(), "cannot read the keys file /nonexistent/keys.json");
  }
}
