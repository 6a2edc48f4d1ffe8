#include "floodgate/schema/structured_output.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "floodgate/core/error.hpp"

namespace floodgate::schema {
namespace {

using nlohmann::json;

const char* kPerson = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string"},
    "age": {"type": "integer", "minimum": 0},
    "address": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "tags": {"type": "array", "items": {"type": "object", "properties": {"t": {"type": "string"}}}},
    "open": {"type": "object", "additionalProperties": true}
  },
  "required": ["name", "age"],
  "$defs": {"x": {"type": "object", "properties": {"y": {"anyOf": [{"type": "object"}, {"type": "null"}]}}}}
})";

std::string chat(const json& message) {
  return json{{"id", "c1"}, {"choices", json::array({{{"index", 0}, {"message", message}, {"finish_reason", "stop"}}})}}.dump();
}

TEST(MakeStrict, AddsAdditionalPropertiesFalseEverywhereItIsMissing) {
  const auto s = json::parse(make_strict(kPerson));
  EXPECT_EQ(s["additionalProperties"], false);
  EXPECT_EQ(s["properties"]["address"]["additionalProperties"], false);
  EXPECT_EQ(s["properties"]["tags"]["items"]["additionalProperties"], false);
  EXPECT_EQ(s["properties"]["open"]["additionalProperties"], true);  // stated: left alone
  EXPECT_EQ(s["$defs"]["x"]["additionalProperties"], false);
  EXPECT_EQ(s["$defs"]["x"]["properties"]["y"]["anyOf"][0]["additionalProperties"], false);
  EXPECT_FALSE(s["properties"]["name"].contains("additionalProperties"));
  EXPECT_FALSE(s["$defs"]["x"]["properties"]["y"]["anyOf"][1].contains("additionalProperties"));
}

TEST(MakeStrict, ResponseFormatShapeAndPropertyOrder) {
  const auto rf = json::parse(response_format(kPerson, "person"));
  EXPECT_EQ(rf["type"], "json_schema");
  EXPECT_EQ(rf["json_schema"]["name"], "person");
  EXPECT_EQ(rf["json_schema"]["strict"], true);
  EXPECT_EQ(rf["json_schema"]["schema"]["additionalProperties"], false);
  EXPECT_EQ(top_level_properties(kPerson), (std::vector<std::string>{"name", "age", "address", "tags", "open"}));
  EXPECT_EQ(top_level_property_types(kPerson), (std::vector<std::string>{"string", "integer", "object", "array", "object"}));
  EXPECT_EQ(top_level_property_types(R"({"properties":{"a":{"type":["string","null"]},"b":{}}})"),
            (std::vector<std::string>{"string", ""}));
  EXPECT_THROW((void)response_format(kPerson, "bad name"), Error);
  EXPECT_THROW((void)make_strict("[1,2]"), Error);
  EXPECT_THROW((void)make_strict("{nope"), Error);
}

TEST(Validator, ValidAndInvalidInstancesWithAPointer) {
  const Validator v(make_strict(kPerson));
  EXPECT_EQ(v.validate(R"({"name":"Ann","age":3})"), "");
  const auto wrong_type = v.validate(R"({"name":"Ann","age":"three"})");
  EXPECT_NE(wrong_type.find("/age"), std::string::npos) << wrong_type;
  const auto missing = v.validate(R"({"name":"Ann"})");
  EXPECT_NE(missing.find("age"), std::string::npos) << missing;
  const auto extra = v.validate(R"({"name":"Ann","age":1,"zzz":1})");
  EXPECT_FALSE(extra.empty());
  EXPECT_EQ(v.validate("not json").rfind("not JSON", 0), 0u);
  EXPECT_FALSE(v.validate(R"({"name":"Ann","age":-1})").empty());
}

TEST(CheckChatAnswer, RefusalViolationAndSuccess) {
  const Validator v(make_strict(kPerson));
  EXPECT_TRUE(check_chat_answer(chat({{"role", "assistant"}, {"content", R"({"name":"A","age":1})"}}), &v).ok());
  const auto bad = check_chat_answer(chat({{"role", "assistant"}, {"content", R"({"name":"A"})"}}), &v);
  EXPECT_EQ(bad.kind, ErrorKind::schema_violation);
  EXPECT_FALSE(bad.message.empty());
  const auto prose = check_chat_answer(chat({{"role", "assistant"}, {"content", "Sure! Here you go"}}), &v);
  EXPECT_EQ(prose.kind, ErrorKind::schema_violation);
  const auto refused =
      check_chat_answer(chat({{"role", "assistant"}, {"content", nullptr}, {"refusal", "I can't help with that."}}), &v);
  EXPECT_EQ(refused.kind, ErrorKind::refusal);
  EXPECT_EQ(refused.message, "I can't help with that.");
  // A null refusal is not a refusal.
  EXPECT_TRUE(check_chat_answer(chat({{"content", R"({"name":"A","age":1})"}, {"refusal", nullptr}}), &v).ok());
  EXPECT_EQ(check_chat_answer("{}", &v).kind, ErrorKind::schema_violation);
  EXPECT_EQ(answer_content(chat({{"content", "hi"}})), "hi");
}

TEST(AnswerChecker, PerLineResponseFormat) {
  AnswerChecker checker;  // no --schema: each line decides
  const std::string schema_line =
      json{{"model", "m"}, {"response_format", json::parse(response_format(R"({"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]})", "n"))}}.dump();
  EXPECT_TRUE(checker.check(schema_line, chat({{"content", R"({"n":1})"}})).ok());
  EXPECT_EQ(checker.check(schema_line, chat({{"content", R"({"n":"x"})"}})).kind, ErrorKind::schema_violation);
  const std::string object_line = R"({"model":"m","response_format":{"type":"json_object"}})";
  EXPECT_TRUE(checker.check(object_line, chat({{"content", R"({"any":1})"}})).ok());
  EXPECT_EQ(checker.check(object_line, chat({{"content", "[1]"}})).kind, ErrorKind::schema_violation);
  // Plain answers without a format are never violations (embeddings have no message at all).
  EXPECT_TRUE(check_chat_answer(R"({"object":"list","data":[]})", nullptr).ok());
  EXPECT_TRUE(checker.check(R"({"model":"text-embedding-3-small","input":"x"})", R"({"data":[]})").ok());
  const std::string text_line = R"({"model":"m"})";
  EXPECT_TRUE(checker.check(text_line, chat({{"content", "free text"}})).ok());
  EXPECT_EQ(checker.check(text_line, chat({{"refusal", "no"}})).kind, ErrorKind::refusal);
  // Null refusals (every ordinary answer) are skipped without a parse; a real one still counts.
  EXPECT_TRUE(checker.check(text_line, chat({{"content", "hi"}, {"refusal", nullptr}})).ok());
  EXPECT_TRUE(checker.check(text_line, R"({"choices":[{"message":{"content":"hi","refusal" : null}}]})").ok());
  EXPECT_EQ(checker.check(text_line, R"({"choices":[{"message":{"refusal":"no"}}],"x":{"refusal":null}})").kind, ErrorKind::refusal);
  EXPECT_EQ(checker.check(text_line, R"({"x":{"refusal":null},"choices":[{"message":{"refusal": "no"}}]})").kind, ErrorKind::refusal);
}

TEST(AnswerChecker, FixedSchemaAppliesToEveryLine) {
  AnswerChecker checker(std::string(R"({"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]})"));
  EXPECT_TRUE(checker.check(R"({"model":"m"})", chat({{"content", R"({"ok":true})"}})).ok());
  EXPECT_EQ(checker.check(R"({"model":"m"})", chat({{"content", R"({"ok":1})"}})).kind, ErrorKind::schema_violation);
}

}  // namespace
}  // namespace floodgate::schema
