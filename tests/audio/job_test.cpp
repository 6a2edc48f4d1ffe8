#include "floodgate/audio/job.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "floodgate/core/error.hpp"

namespace floodgate::audio {
namespace {

std::filesystem::path make_tree() {
  // One folder per test process: ctest runs the tests of this file in parallel.
  const auto root = std::filesystem::path(::testing::TempDir()) / ("floodgate-job-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root / "b" / "deeper");
  std::filesystem::create_directories(root / ".floodgate-tmp");
  for (const char* f : {"a.mp3", "b/c.WAV", "b/deeper/d.m4a", "b/notes.txt", ".floodgate-tmp/chunk-0000.mp3", "b/.hidden.mp3"}) {
    std::ofstream(root / f) << "x";
  }
  return root;
}

TEST(ExpandInputs, FoldersAreSearchedRecursivelyForAudioInSortedOrder) {
  const auto root = make_tree();
  const std::vector<std::string> args = {root.string()};
  const auto files = expand_inputs(args, {});
  ASSERT_EQ(files.size(), 3U);
  EXPECT_EQ(files[0].path, root / "a.mp3");
  EXPECT_EQ(files[1].path, root / "b" / "c.WAV");
  EXPECT_EQ(files[2].path, root / "b" / "deeper" / "d.m4a");
}

TEST(ExpandInputs, AFileIsTakenAsIsAndAMissingOneIsAnError) {
  const auto root = make_tree();
  const std::vector<std::string> one = {(root / "b" / "notes.txt").string()};
  EXPECT_EQ(expand_inputs(one, {}).size(), 1U);
  const std::vector<std::string> missing = {(root / "nope.mp3").string()};
  EXPECT_THROW((void)expand_inputs(missing, {}), Error);
}

TEST(ExpandInputs, JsonlListWithPerFileOptions) {
  const auto root = make_tree();
  const auto list = root / "list.jsonl";
  std::ofstream(list) << "{\"file\":\"a.mp3\",\"language\":\"de\",\"response_format\":\"srt\"}\n"
                      << "\n"
                      << "\"/abs/x.mp3\"\n"
                      << "{\"file\":\"b/c.WAV\",\"temperature\":0.2,\"timestamp_granularities\":[\"word\"]}\n";
  TranscribeOptions defaults;
  defaults.model = "whisper-1";
  defaults.language = "en";
  const std::vector<std::string> args = {list.string()};
  const auto files = expand_inputs(args, defaults);
  ASSERT_EQ(files.size(), 3U);
  EXPECT_EQ(files[0].path, root / "a.mp3");
  EXPECT_EQ(files[0].options.language, "de");
  EXPECT_EQ(files[0].options.response_format, ResponseFormat::srt);
  EXPECT_EQ(files[0].list_line, 1U);
  EXPECT_EQ(files[1].path, "/abs/x.mp3");
  EXPECT_EQ(files[1].options.language, "en");
  EXPECT_EQ(files[2].list_line, 4U);
  EXPECT_DOUBLE_EQ(files[2].options.temperature.value(), 0.2);
  ASSERT_EQ(files[2].options.timestamp_granularities.size(), 1U);

  std::ofstream(list) << "{\"file\":\"a.mp3\",\"colour\":\"red\"}\n";
  try {
    (void)expand_inputs(args, defaults);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("list.jsonl:1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("colour"), std::string::npos) << e.what();
  }
  std::ofstream(list) << "not json\n";
  EXPECT_THROW((void)expand_inputs(args, defaults), Error);
}

TEST(RequestBody, CarriesEveryParameterAndAsksForJson) {
  TranscribeOptions o;
  o.model = "whisper-1";
  o.language = "fr";
  o.prompt = "glossary";
  o.temperature = 0.0;
  o.timestamp_granularities = {"word", "segment"};
  o.response_format = ResponseFormat::srt;
  auto body = nlohmann::json::parse(request_body(o, "/tmp/a b.mp3"));
  EXPECT_EQ(body["model"], "whisper-1");
  EXPECT_EQ(body["file"], "/tmp/a b.mp3");
  EXPECT_EQ(body["response_format"], "verbose_json");
  EXPECT_EQ(body["language"], "fr");
  EXPECT_EQ(body["prompt"], "glossary");
  EXPECT_EQ(body["temperature"], 0.0);
  EXPECT_EQ(body["timestamp_granularities"].size(), 2U);
  body = nlohmann::json::parse(request_body(o, "/x.mp3", std::string("carried")));
  EXPECT_EQ(body["prompt"], "carried");
  o = TranscribeOptions{};
  o.response_format = ResponseFormat::text;
  body = nlohmann::json::parse(request_body(o, "/x.mp3"));
  EXPECT_EQ(body["response_format"], "json");
  EXPECT_FALSE(body.contains("language"));
  EXPECT_FALSE(body.contains("temperature"));
}

TEST(FileKey, StableAndSensitiveToEveryInput) {
  TranscribeOptions o;
  const auto k = file_key("/a.mp3", 100, 5, o, "600");
  EXPECT_EQ(k.size(), 16U);
  EXPECT_EQ(k, file_key("/a.mp3", 100, 5, o, "600"));
  EXPECT_NE(k, file_key("/b.mp3", 100, 5, o, "600"));
  EXPECT_NE(k, file_key("/a.mp3", 101, 5, o, "600"));
  EXPECT_NE(k, file_key("/a.mp3", 100, 6, o, "600"));
  EXPECT_NE(k, file_key("/a.mp3", 100, 5, o, "300"));
  TranscribeOptions o2 = o;
  o2.language = "en";
  EXPECT_NE(k, file_key("/a.mp3", 100, 5, o2, "600"));
  o2 = o;
  o2.response_format = ResponseFormat::vtt;
  EXPECT_NE(k, file_key("/a.mp3", 100, 5, o2, "600"));
}

TEST(RenderTranscript, SubtitlesFromSegments) {
  const std::string merged = R"({"text":"One. Two.","duration":70.0,"segments":[
      {"id":0,"start":0.0,"end":2.5,"text":" One."},{"id":1,"start":65.25,"end":70.0,"text":" Two."}]})";
  const auto srt = render_transcript(ResponseFormat::srt, merged);
  ASSERT_TRUE(srt.ok()) << srt.error().message;
  EXPECT_EQ(*srt, "1\n00:00:00,000 --> 00:00:02,500\nOne.\n\n2\n00:01:05,250 --> 00:01:10,000\nTwo.\n\n");
  const auto vtt = render_transcript(ResponseFormat::vtt, merged);
  ASSERT_TRUE(vtt.ok());
  EXPECT_EQ(vtt->rfind("WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nOne.\n\n", 0), 0U) << *vtt;
  EXPECT_EQ(*render_transcript(ResponseFormat::text, merged), "One. Two.\n");
  EXPECT_FALSE(render_transcript(ResponseFormat::srt, R"({"text":"no segments"})").ok());
  EXPECT_FALSE(render_transcript(ResponseFormat::text, "[]").ok());
}

TEST(ResultRows, CsvQuotesAndJsonlRoundTrips) {
  ResultRow r;
  r.filename = "dir/a, \"quoted\".mp3";
  r.duration_seconds = 12.3456;
  r.size_bytes = 1000;
  r.chunks = 2;
  r.status = "ok";
  r.text = "line one\nline two";
  r.model = "whisper-1";
  r.key = "0123456789abcdef";
  const std::string csv = result_csv(r);
  EXPECT_EQ(csv.rfind("\"dir/a, \"\"quoted\"\".mp3\",12.346,1000,2,ok,,", 0), 0U) << csv;
  EXPECT_NE(csv.find("\"line one\nline two\""), std::string::npos);
  const std::string header = result_csv_header();
  EXPECT_EQ(std::count(header.begin(), header.end(), ','), 11);
  const auto back = parse_result_jsonl(result_jsonl(r));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->filename, r.filename);
  EXPECT_EQ(back->text, r.text);
  EXPECT_EQ(back->chunks, 2U);
  EXPECT_DOUBLE_EQ(back->duration_seconds, 12.346);
  EXPECT_FALSE(parse_result_jsonl("{}"));
  EXPECT_FALSE(parse_result_jsonl("nope"));
}

}  // namespace
}  // namespace floodgate::audio

namespace floodgate::audio {
namespace {

TEST(FilePlan, JsonRoundTripForSplitFilesAndErrors) {
  FilePlan p;
  p.index = 7;
  p.info.container = "mp3";
  p.info.codec = "mp3";
  p.info.duration = Seconds(1234.5);
  p.info.size_bytes = 99;
  p.info.sample_rate_hz = 44100;
  p.info.channels = 2;
  p.split = true;
  Chunk c;
  c.index = 1;
  c.path = "/tmp/x/chunk-0001.mp3";
  c.offset = Seconds(599.75);
  c.duration = Seconds(600.25);
  c.size_bytes = 1000;
  p.chunks = {c};
  const auto back = plan_from_json(plan_to_json(p));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->index, 7U);
  EXPECT_FALSE(back->error);
  EXPECT_EQ(back->info.container, "mp3");
  EXPECT_DOUBLE_EQ(back->info.duration.count(), 1234.5);
  EXPECT_EQ(back->info.channels, 2);
  ASSERT_EQ(back->chunks.size(), 1U);
  EXPECT_EQ(back->chunks[0].path, c.path);
  EXPECT_DOUBLE_EQ(back->chunks[0].offset.count(), 599.75);

  FilePlan e;
  e.index = 3;
  e.error = AudioError{AudioErrc::corrupt, "x.mp3: truncated"};
  const auto eback = plan_from_json(plan_to_json(e));
  ASSERT_TRUE(eback && eback->error);
  EXPECT_EQ(eback->error->code, AudioErrc::corrupt);
  EXPECT_EQ(eback->error->message, "x.mp3: truncated");
  EXPECT_FALSE(plan_from_json("{}"));
  EXPECT_FALSE(plan_from_json("garbage"));
}

}  // namespace
}  // namespace floodgate::audio
