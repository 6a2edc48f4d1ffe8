#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include "sim/audio_info.hpp"
#include "sim/content.hpp"
#include "floodgate/tokens/encoding.hpp"
#include "sim/token_estimate.hpp"

namespace floodgate::sim {
namespace {

bool valid(const nlohmann::json& schema_doc, const nlohmann::json& instance) {
  valijson::Schema schema;
  valijson::SchemaParser parser;
  valijson::adapters::NlohmannJsonAdapter schema_adapter(schema_doc);
  parser.populateSchema(schema_adapter, schema);
  valijson::Validator validator;
  valijson::adapters::NlohmannJsonAdapter target(instance);
  return validator.validate(schema, target, nullptr);
}

const nlohmann::json kSchema = nlohmann::json::parse(R"({
  "type": "object",
  "properties": {
    "name": {"type": "string", "minLength": 5, "maxLength": 8},
    "age": {"type": "integer", "minimum": 18, "maximum": 20},
    "score": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    "ok": {"type": "boolean"},
    "color": {"enum": ["red", "green"]},
    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
    "maybe": {"type": ["string", "null"]},
    "kind": {"const": "fixed"},
    "ref": {"$ref": "#/$defs/point"},
    "any": {"anyOf": [{"type": "integer"}, {"type": "string"}]}
  },
  "required": ["name", "age", "score", "ok", "color", "tags", "maybe", "kind", "ref", "any"],
  "additionalProperties": false,
  "$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"],
                      "additionalProperties": false}}
})");

TEST(Content, SchemaInstancesValidateForManySeeds) {
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    const auto instance = schema_instance(kSchema, seed);
    EXPECT_TRUE(valid(kSchema, instance)) << instance.dump();
  }
}

TEST(Content, InvalidContentIsInvalid) {
  for (std::uint64_t seed = 0; seed < 10; ++seed) {
    const auto text = invalid_schema_content(kSchema, seed);
    const auto parsed = nlohmann::json::parse(text, nullptr, false);
    EXPECT_TRUE(parsed.is_discarded() || !valid(kSchema, parsed)) << text;
  }
  const nlohmann::json array_schema = {{"type", "array"}};
  EXPECT_FALSE(valid(array_schema, nlohmann::json::parse(invalid_schema_content(array_schema, 1))));
  EXPECT_TRUE(nlohmann::json::parse(invalid_schema_content(nlohmann::json::object(), 1), nullptr, false).is_discarded());
}

TEST(Content, CompletionTextHasExactlyTheTokensAsked) {
  for (std::int64_t n : {1, 2, 17, 64, 500}) {
    const auto text = completion_text(99, n);
    EXPECT_EQ(estimate_text_tokens(text), n);
    EXPECT_EQ(text, completion_text(99, n));  // deterministic
  }
  EXPECT_NE(completion_text(1, 30), completion_text(2, 30));
}

TEST(Content, EmbeddingsAreUnitLength) {
  const auto v = embedding_vector(7, 256);
  ASSERT_EQ(v.size(), 256u);
  double norm = 0;
  for (float x : v) norm += static_cast<double>(x) * x;
  EXPECT_NEAR(norm, 1.0, 1e-5);
  EXPECT_EQ(v, embedding_vector(7, 256));
}

TEST(TokenEstimate, ChatAndEmbeddings) {
  const auto request = nlohmann::json::parse(
      R"({"messages":[{"role":"system","content":"12345678"},{"role":"user","content":[{"type":"text","text":"abcd"},{"type":"image_url","image_url":{"url":"x"}}]}]})");
  EXPECT_EQ(estimate_chat_prompt_tokens(request), 3 + (4 + 2) + (4 + 1 + 85));
  EXPECT_EQ(estimate_embedding_input_tokens("abcde"), 2);
  EXPECT_EQ(estimate_embedding_input_tokens(nlohmann::json::parse(R"(["abcd","abcdefgh"])")), 3);
  EXPECT_EQ(estimate_embedding_input_tokens(nlohmann::json::parse(R"([[1,2,3],[4]])")), 4);
  EXPECT_EQ(estimate_embedding_input_tokens(nlohmann::json::parse(R"([1,2,3])")), 3);
  EXPECT_EQ(estimate_embedding_input_tokens(nlohmann::json::parse(R"([{"a":1}])")), -1);
  EXPECT_EQ(estimate_embedding_input_tokens(nlohmann::json::parse(R"([])")), -1);
}

TEST(TokenEstimate, ExactFollowsOpenAisChatAccounting) {
  const auto& enc = floodgate::tokens::Encoding::get(floodgate::tokens::EncodingId::o200k_base);
  const auto n = [&](std::string_view s) { return static_cast<std::int64_t>(enc.count(s)); };
  const auto request = nlohmann::json::parse(R"({"messages":[
      {"role":"system","content":"Réponds en français, s'il te plaît."},
      {"role":"user","name":"ana","content":[{"type":"text","text":"日本語のテキスト"},{"type":"image_url","image_url":{"url":"x"}}]},
      {"role":"tool","tool_call_id":"call_1","content":"42"}]})");
  const std::int64_t expected = 3 + (3 + n("system") + n("Réponds en français, s'il te plaît.")) +
                                (3 + n("user") + 1 + n("ana") + n("日本語のテキスト") + 85) +
                                (3 + n("tool") + n("call_1") + n("42"));
  EXPECT_EQ(estimate_chat_prompt_tokens(request, &enc), expected);
  EXPECT_NE(estimate_chat_prompt_tokens(request, &enc), estimate_chat_prompt_tokens(request));  // differs from bytes/4
  const auto with_tools = nlohmann::json::parse(
      R"({"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]})");
  EXPECT_EQ(estimate_chat_prompt_tokens(with_tools, &enc),
            3 + 3 + n("user") + n("hi") + n(with_tools["tools"].dump()));
  EXPECT_EQ(estimate_embedding_input_tokens(nlohmann::json::parse(R"(["Grüße",[1,2,3]])"), &enc), n("Grüße") + 3);
}

std::string wav(std::uint32_t sample_rate, std::uint16_t channels, std::uint32_t samples) {
  const std::uint32_t block = channels * 2;
  const std::uint32_t data = samples * block;
  std::string s = "RIFF";
  const auto u32 = [&](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  const auto u16 = [&](std::uint16_t v) {
    s.push_back(static_cast<char>(v & 0xff));
    s.push_back(static_cast<char>(v >> 8));
  };
  u32(36 + data);
  s += "WAVEfmt ";
  u32(16);
  u16(1);
  u16(channels);
  u32(sample_rate);
  u32(sample_rate * block);
  u16(static_cast<std::uint16_t>(block));
  u16(16);
  s += "data";
  u32(data);
  s.append(data, '\0');
  return s;
}

TEST(AudioSniffer, WavDurationIsExact) {
  AudioSniffer sniffer;
  const std::string file = wav(16000, 2, 16000 * 3 / 2);  // 1.5 s
  for (std::size_t i = 0; i < file.size(); i += 1000) sniffer.feed(std::string_view(file).substr(i, 1000));
  std::string method;
  EXPECT_DOUBLE_EQ(sniffer.duration_seconds(&method), 1.5);
  EXPECT_EQ(method, "wav");
}

TEST(AudioSniffer, Mp3FromFirstFrameBitrateElseEstimate) {
  std::string mp3 = "ID3";
  mp3 += std::string("\x04\x00\x00\x00\x00\x00\x0a", 7);  // ID3v2.4, size 10
  mp3.append(10, '\0');
  mp3 += std::string("\xff\xfb\x90\x00", 4);  // MPEG1 layer III, 128 kbit/s
  mp3.append(16000 - 4, '\x55');
  AudioSniffer sniffer;
  sniffer.feed(mp3);
  std::string method;
  EXPECT_NEAR(sniffer.duration_seconds(&method), 1.0, 1e-9);
  EXPECT_EQ(method, "mp3");
  AudioSniffer other;
  other.feed(std::string(32000, 'q'));
  EXPECT_DOUBLE_EQ(other.duration_seconds(&method), 2.0);
  EXPECT_EQ(method, "estimate");
}

}  // namespace
}  // namespace floodgate::sim
