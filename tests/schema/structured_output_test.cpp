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
    "tags": {"type": "array", "items": {"type": "object", "properties": {"t": {"type": "string"}}}}
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
  EXPECT_EQ(s["$defs"]["x"]["additionalProperties"], false);
  EXPECT_EQ(s["$defs"]["x"]["properties"]["y"]["anyOf"][0]["additionalProperties"], false);
  EXPECT_FALSE(s["properties"]["name"].contains("additionalProperties"));
  EXPECT_FALSE(s["$defs"]["x"]["properties"]["y"]["anyOf"][1].contains("additionalProperties"));
}

// OpenAI's strict mode rejects a schema whose "required" leaves out a property (400 "'required'
// is required to be supplied and to be an array including every key in properties"): every
// property is listed, and the ones the schema did not require accept null instead.
TEST(MakeStrict, EveryPropertyRequiredAndTheOptionalOnesNullable) {
  const char* pydantic = R"({
    "title": "Person", "type": "object",
    "properties": {
      "name": {"type": "string"},
      "nickname": {"type": "string", "default": null},
      "size": {"type": "string", "enum": ["S", "M"]},
      "score": {"type": ["integer", "number"]},
      "pet": {"$ref": "#/$defs/Pet"},
      "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
      "maybe": {"anyOf": [{"type": "string"}, {"type": "null"}]},
      "already": {"type": ["string", "null"]}
    },
    "required": ["name"],
    "$defs": {"Pet": {"type": "object", "properties": {"kind": {"type": "string"}, "age": {"type": "integer"}}, "required": ["kind"]}}
  })";
  const auto s = json::parse(make_strict(pydantic));
  EXPECT_EQ(s["required"], json::parse(R"(["name","nickname","size","score","pet","either","maybe","already"])"));
  EXPECT_EQ(s["properties"]["name"]["type"], "string");
  EXPECT_EQ(s["properties"]["nickname"]["type"], json::parse(R"(["string","null"])"));
  EXPECT_EQ(s["properties"]["size"]["type"], json::parse(R"(["string","null"])"));
  EXPECT_EQ(s["properties"]["size"]["enum"], json::parse(R"(["S","M",null])"));
  EXPECT_EQ(s["properties"]["score"]["type"], json::parse(R"(["integer","number","null"])"));
  EXPECT_EQ(s["properties"]["pet"], json::parse(R"({"anyOf":[{"$ref":"#/$defs/Pet"},{"type":"null"}]})"));
  EXPECT_EQ(s["properties"]["either"]["anyOf"].size(), 3u);
  EXPECT_EQ(s["properties"]["maybe"]["anyOf"].size(), 2u);
  EXPECT_EQ(s["properties"]["already"]["type"], json::parse(R"(["string","null"])"));
  EXPECT_EQ(s["$defs"]["Pet"]["required"], json::parse(R"(["kind","age"])"));
  EXPECT_EQ(s["$defs"]["Pet"]["properties"]["age"]["type"], json::parse(R"(["integer","null"])"));
  EXPECT_EQ(s["$defs"]["Pet"]["additionalProperties"], false);

  // The answers a strict model gives: an optional field comes back as null.
  const Validator v(s.dump());
  EXPECT_EQ(v.validate(R"({"name":"A","nickname":null,"size":null,"score":null,"pet":null,"either":null,"maybe":null,"already":null})"), "");
  EXPECT_EQ(v.validate(R"({"name":"A","nickname":"a","size":"M","score":1.5,"pet":{"kind":"cat","age":null},"either":2,"maybe":"m","already":"x"})"), "");
  EXPECT_NE(v.validate(R"({"name":null,"nickname":null,"size":null,"score":null,"pet":null,"either":null,"maybe":null,"already":null})"), "");
  EXPECT_NE(v.validate(R"({"name":"A","nickname":null,"size":"L","score":null,"pet":null,"either":null,"maybe":null,"already":null})"), "");
}

TEST(MakeStrict, WhatStrictModeCannotTakeIsRefusedWithTheRuleAndThePath) {
  auto refusal = [](const char* schema) {
    try {
      (void)make_strict(schema);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  const auto open = refusal(R"({"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"object","additionalProperties":true}}}}})");
  EXPECT_EQ(open.rfind("/properties/a/properties/b: strict mode needs \"additionalProperties\": false on every object", 0), 0u) << open;
  const auto map = refusal(R"({"type":"object","properties":{"m":{"type":"object","additionalProperties":{"type":"string"}}}})");
  EXPECT_EQ(map.rfind("/properties/m: strict mode needs \"additionalProperties\": false", 0), 0u) << map;
  const auto root = refusal(R"({"type":"array","items":{"type":"string"}})");
  EXPECT_EQ(root.rfind("/: strict mode needs the schema's root to be an object", 0), 0u) << root;
  EXPECT_NE(refusal(R"({"anyOf":[{"type":"object"},{"type":"null"}]})").find("root to be an object"), std::string::npos);
  const auto ghost = refusal(R"({"type":"object","properties":{"a":{"type":"string"}},"required":["a","b"]})");
  EXPECT_EQ(ghost.rfind("/required: \"b\" is required but is not among the properties", 0), 0u) << ghost;
  // A root with properties but no "type" is an object.
  EXPECT_EQ(json::parse(make_strict(R"({"properties":{"a":{"type":"string"}}})"))["type"], "object");
}

TEST(MakeStrict, ResponseFormatShapeAndPropertyOrder) {
  const auto rf = json::parse(response_format(kPerson, "person"));
  EXPECT_EQ(rf["type"], "json_schema");
  EXPECT_EQ(rf["json_schema"]["name"], "person");
  EXPECT_EQ(rf["json_schema"]["strict"], true);
  EXPECT_EQ(rf["json_schema"]["schema"]["additionalProperties"], false);
  EXPECT_EQ(rf["json_schema"]["schema"]["required"], json::parse(R"(["name","age","address","tags"])"));
  EXPECT_EQ(top_level_properties(kPerson), (std::vector<std::string>{"name", "age", "address", "tags"}));
  EXPECT_EQ(top_level_property_types(kPerson), (std::vector<std::string>{"string", "integer", "object", "array"}));
  EXPECT_EQ(top_level_property_types(make_strict(kPerson)), (std::vector<std::string>{"string", "integer", "object", "array"}));
  EXPECT_EQ(top_level_property_types(R"({"properties":{"a":{"type":["string","null"]},"b":{}}})"),
            (std::vector<std::string>{"string", ""}));
  EXPECT_THROW((void)response_format(kPerson, "bad name"), Error);
  EXPECT_THROW((void)make_strict("[1,2]"), Error);
  EXPECT_THROW((void)make_strict("{nope"), Error);
}

// A schema file with a syntax error said only "not a JSON object".
TEST(MakeStrict, SyntaxErrorsSayWhere) {
  try {
    (void)make_strict("{\n  \"type\": \"object\",\n  \"properties\": {,}\n}");
    FAIL() << "accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("the schema is not valid JSON: parse error at line 3, column 18", 0), 0u) << what;
  }
}

TEST(Validator, ValidAndInvalidInstancesWithAPointer) {
  const Validator v(make_strict(kPerson));
  EXPECT_EQ(v.validate(R"({"name":"Ann","age":3,"address":null,"tags":null})"), "");
  const auto wrong_type = v.validate(R"({"name":"Ann","age":"three"})");
  EXPECT_NE(wrong_type.find("/age"), std::string::npos) << wrong_type;
  const auto missing = v.validate(R"({"name":"Ann"})");
  EXPECT_NE(missing.find("age"), std::string::npos) << missing;
  const auto extra = v.validate(R"({"name":"Ann","age":1,"address":null,"tags":null,"zzz":1})");
  EXPECT_FALSE(extra.empty());
  EXPECT_EQ(v.validate("not json").rfind("not JSON", 0), 0u);
  EXPECT_FALSE(v.validate(R"({"name":"Ann","age":-1,"address":null,"tags":null})").empty());
}

TEST(CheckChatAnswer, RefusalViolationAndSuccess) {
  const Validator v(make_strict(kPerson));
  EXPECT_TRUE(check_chat_answer(chat({{"role", "assistant"}, {"content", R"({"name":"A","age":1,"address":null,"tags":[]})"}}), &v).ok());
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
  EXPECT_TRUE(check_chat_answer(chat({{"content", R"({"name":"A","age":1,"address":{"city":"B"},"tags":null})"}, {"refusal", nullptr}}), &v).ok());
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
