#include "floodgate/audio/merge.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

namespace floodgate::audio {
namespace {

std::vector<ChunkTranscript> chunks(std::initializer_list<std::pair<double, std::string>> items) {
  std::vector<ChunkTranscript> out;
  for (const auto& [offset, body] : items) out.push_back(ChunkTranscript{Seconds(offset), body});
  return out;
}

struct ParsedCue {
  std::string number;
  double start;
  double end;
  std::string text;
};

// An independent reader for the merged output: blocks separated by blank lines.
std::vector<ParsedCue> read_cues(const std::string& text, bool vtt) {
  std::vector<ParsedCue> out;
  std::istringstream in(text);
  std::string line;
  if (vtt) {
    std::getline(in, line);
    EXPECT_EQ(line, "WEBVTT");
    std::getline(in, line);
  }
  while (true) {
    ParsedCue c;
    if (!vtt) {
      if (!std::getline(in, c.number)) break;
    }
    std::string timing;
    if (!std::getline(in, timing)) break;
    const auto arrow = timing.find(" --> ");
    EXPECT_NE(arrow, std::string::npos) << timing;
    c.start = parse_timestamp(timing.substr(0, arrow)).value_or(Seconds(-1)).count();
    c.end = parse_timestamp(timing.substr(arrow + 5)).value_or(Seconds(-1)).count();
    std::getline(in, c.text);
    std::getline(in, line);
    EXPECT_EQ(line, "");
    out.push_back(c);
  }
  return out;
}

TEST(Timestamps, FormatAndParse) {
  EXPECT_EQ(format_timestamp(Seconds(0), ','), "00:00:00,000");
  EXPECT_EQ(format_timestamp(Seconds(3723.4567), ','), "01:02:03,457");
  EXPECT_EQ(format_timestamp(Seconds(59.9996), '.'), "00:01:00.000");
  EXPECT_DOUBLE_EQ(parse_timestamp("01:02:03,457")->count(), 3723.457);
  EXPECT_DOUBLE_EQ(parse_timestamp("02:03.5")->count(), 123.5);
  EXPECT_FALSE(parse_timestamp("1:75:00,000"));
  EXPECT_FALSE(parse_timestamp("abc"));
  EXPECT_FALSE(parse_timestamp("00:00:01,"));
}

TEST(Merge, TextJoinsInChunkOrder) {
  const auto c = chunks({{0, "first part.\n"}, {600, "  second part."}, {1200, ""}, {1800, "third."}});
  const auto merged = merge_transcripts(ResponseFormat::text, c, Seconds(2000));
  ASSERT_TRUE(merged.ok());
  EXPECT_EQ(*merged, "first part. second part. third.\n");
}

TEST(Merge, JsonJoinsTextAndSumsUsage) {
  const auto c = chunks({{0, R"({"text":"Hello","usage":{"type":"duration","seconds":600}})"},
                         {600, R"({"text":"world.","usage":{"type":"duration","seconds":30}})"}});
  const auto merged = merge_transcripts(ResponseFormat::json, c, Seconds(630));
  ASSERT_TRUE(merged.ok()) << merged.error().message;
  const auto doc = nlohmann::json::parse(*merged);
  EXPECT_EQ(doc["text"], "Hello world.");
  EXPECT_EQ(doc["usage"]["seconds"], 630);
  EXPECT_EQ(doc["usage"]["type"], "duration");
}

TEST(Merge, SrtShiftedRenumberedMonotonicAndClamped) {
  const auto c = chunks({
      {0.0, "1\n00:00:00,000 --> 00:00:04,000\nalpha\n\n2\n00:00:04,500 --> 00:00:09,900\nbeta\n\n"},
      // Chunk 2 starts at 9.5 s; its first cue would overlap the previous one's end.
      {9.5, "1\r\n00:00:00,000 --> 00:00:03,000\r\ngamma\r\n\r\n2\r\n00:00:03,000 --> 00:00:08,000\r\ndelta\r\n"},
  });
  const auto merged = merge_transcripts(ResponseFormat::srt, c, Seconds(15.0));
  ASSERT_TRUE(merged.ok()) << merged.error().message;
  const auto cues = read_cues(*merged, false);
  ASSERT_EQ(cues.size(), 4U);
  const std::vector<std::string> texts = {"alpha", "beta", "gamma", "delta"};
  double prev_end = 0;
  for (std::size_t i = 0; i < cues.size(); ++i) {
    EXPECT_EQ(cues[i].number, std::to_string(i + 1));
    EXPECT_EQ(cues[i].text, texts[i]);
    EXPECT_GE(cues[i].start, prev_end);
    EXPECT_GE(cues[i].end, cues[i].start);
    EXPECT_LE(cues[i].end, 15.0);
    prev_end = cues[i].end;
  }
  EXPECT_DOUBLE_EQ(cues[2].start, 9.9);   // pushed after beta's end
  EXPECT_DOUBLE_EQ(cues[2].end, 12.5);    // 3.0 + 9.5
  EXPECT_DOUBLE_EQ(cues[3].start, 12.5);
  EXPECT_DOUBLE_EQ(cues[3].end, 15.0);    // 17.5 clamped to the file's duration
}

TEST(Merge, VttWithHeaderNotesAndSettings) {
  const auto c = chunks({
      {0.0, "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nhello\n\n"},
      {600.0, "WEBVTT\nKind: captions\n\nNOTE a comment\nspanning lines\n\ncue-1\n00:01.000 --> 00:02.500 align:start\nworld\n"},
  });
  const auto merged = merge_transcripts(ResponseFormat::vtt, c, Seconds(700));
  ASSERT_TRUE(merged.ok()) << merged.error().message;
  const auto cues = read_cues(*merged, true);
  ASSERT_EQ(cues.size(), 2U);
  EXPECT_EQ(cues[1].text, "world");
  EXPECT_DOUBLE_EQ(cues[1].start, 601.0);
  EXPECT_DOUBLE_EQ(cues[1].end, 602.5);
  EXPECT_NE(merged->find("00:10:01.000 --> 00:10:02.500"), std::string::npos) << *merged;
}

TEST(Merge, VerboseJsonShiftsSegmentsAndWords) {
  const auto c = chunks({
      {0, R"({"task":"transcribe","language":"english","duration":600,"text":"One.",
             "segments":[{"id":0,"seek":0,"start":0.0,"end":3.0,"text":"One."}],
             "words":[{"word":"One","start":0.5,"end":1.0}]})"},
      {598.25, R"({"task":"transcribe","language":"english","duration":10,"text":"Two. Three.",
             "segments":[{"id":0,"seek":0,"start":0.0,"end":2.0,"text":"Two."},
                         {"id":1,"seek":200,"start":2.0,"end":20.0,"text":"Three."}],
             "words":[{"word":"Two","start":0.25,"end":0.75}]})"},
  });
  const auto merged = merge_transcripts(ResponseFormat::verbose_json, c, Seconds(608.25));
  ASSERT_TRUE(merged.ok()) << merged.error().message;
  const auto doc = nlohmann::json::parse(*merged);
  EXPECT_EQ(doc["text"], "One. Two. Three.");
  EXPECT_EQ(doc["language"], "english");
  EXPECT_DOUBLE_EQ(doc["duration"].get<double>(), 608.25);
  ASSERT_EQ(doc["segments"].size(), 3U);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(doc["segments"][i]["id"], i);
  EXPECT_DOUBLE_EQ(doc["segments"][1]["start"].get<double>(), 598.25);
  EXPECT_DOUBLE_EQ(doc["segments"][1]["end"].get<double>(), 600.25);
  EXPECT_EQ(doc["segments"][1]["seek"], 59825);
  EXPECT_EQ(doc["segments"][2]["seek"], 60025);
  EXPECT_DOUBLE_EQ(doc["segments"][2]["end"].get<double>(), 608.25);  // clamped
  ASSERT_EQ(doc["words"].size(), 2U);
  EXPECT_DOUBLE_EQ(doc["words"][1]["start"].get<double>(), 598.5);
}

// Chunk 0 can start a little before 0 s (codec priming, offset -0.05 s): its segments' seek
// came out as -5.
TEST(Merge, SeekIsNeverNegative) {
  const auto c = chunks({
      {-0.05, R"({"task":"transcribe","language":"english","duration":10,"text":"One.",
             "segments":[{"id":0,"seek":0,"start":0.0,"end":3.0,"text":"One."}]})"},
      {9.95, R"({"task":"transcribe","language":"english","duration":10,"text":"Two.",
             "segments":[{"id":0,"seek":0,"start":0.0,"end":2.0,"text":"Two."}]})"},
  });
  const auto merged = merge_transcripts(ResponseFormat::verbose_json, c, Seconds(20));
  ASSERT_TRUE(merged.ok()) << merged.error().message;
  const auto doc = nlohmann::json::parse(*merged);
  EXPECT_EQ(doc["segments"][0]["seek"], 0);
  EXPECT_EQ(doc["segments"][1]["seek"], 995);
  EXPECT_DOUBLE_EQ(doc["segments"][0]["start"].get<double>(), 0.0);
}

TEST(Merge, AMalformedChunkIsAnErrorNotADrop) {
  const auto srt = merge_transcripts(ResponseFormat::srt, chunks({{0, "1\n00:00:00,000 --> 00:00:01,000\na\n"},
                                                                  {5, "not a subtitle"}}),
                                     Seconds(10));
  ASSERT_FALSE(srt.ok());
  EXPECT_NE(srt.error().message.find("chunk 1"), std::string::npos);
  const auto json = merge_transcripts(ResponseFormat::json, chunks({{0, "{\"text\":\"a\"}"}, {5, "{oops"}}), Seconds(10));
  ASSERT_FALSE(json.ok());
  const auto vtt = merge_transcripts(ResponseFormat::vtt, chunks({{0, "1\n00:00:00,000 --> 00:00:01,000\na\n"}}),
                                     Seconds(10));
  EXPECT_FALSE(vtt.ok());  // no WEBVTT header
}

TEST(TranscriptText, FromEachFormat) {
  EXPECT_EQ(transcript_text(ResponseFormat::json, R"({"text":" hi there "})"), "hi there");
  EXPECT_EQ(transcript_text(ResponseFormat::text, "hi\n"), "hi");
  EXPECT_EQ(transcript_text(ResponseFormat::srt, "1\n00:00:00,000 --> 00:00:01,000\nhi\nthere\n\n"), "hi there");
  EXPECT_EQ(transcript_text(ResponseFormat::json, "nope"), "");
}

TEST(PromptTail, KeepsTheEndAtAWordBoundary) {
  EXPECT_EQ(prompt_tail("short text", 100), "short text");
  EXPECT_EQ(prompt_tail("alpha beta gamma delta", 12), "gamma delta");
  const std::string tail = prompt_tail(std::string(1000, 'x') + " end of it", 50);
  EXPECT_LE(tail.size(), 50U);
  EXPECT_EQ(tail, "end of it");
}

TEST(ResponseFormats, NamesAndExtensions) {
  for (const char* name : {"json", "text", "srt", "vtt", "verbose_json"}) {
    const auto f = response_format_from_string(name);
    ASSERT_TRUE(f) << name;
    EXPECT_EQ(to_string(*f), name);
  }
  EXPECT_FALSE(response_format_from_string("xml"));
  EXPECT_EQ(transcript_extension(ResponseFormat::text), ".txt");
  EXPECT_EQ(transcript_extension(ResponseFormat::verbose_json), ".json");
}

}  // namespace
}  // namespace floodgate::audio
