// The library side of `floodgate transcribe` that does not need FFmpeg nor a server: the
// uploads as a RequestSource, the answers kept in memory and in the store for resume, and
// each file's merge into its transcript and results row.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "floodgate/audio/answers.hpp"
#include "floodgate/audio/chunk_source.hpp"
#include "floodgate/audio/results.hpp"
#include "floodgate/core/error.hpp"

namespace floodgate::audio {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  // One folder per test process: ctest runs the tests of this file in parallel.
  const auto root = fs::path(::testing::TempDir()) / ("floodgate-transcribe-job-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  return root;
}

std::vector<ChunkUpload> three_uploads() {
  TranscribeOptions o;
  o.model = "whisper-1";
  o.language = "en";
  std::vector<ChunkUpload> uploads;
  for (std::size_t c = 0; c < 3; ++c) {
    uploads.push_back(ChunkUpload{chunk_id("0123456789abcdef", c), "/audio/chunk-" + std::to_string(c) + ".mp3", o,
                                  c == 2 ? std::optional<std::string>("the end of chunk 1") : std::nullopt, 4, c});
  }
  return uploads;
}

TEST(ChunkSource, EachUploadIsOneTranscriptionRequestNumberedAsTheLinesOfAFile) {
  EXPECT_EQ(chunk_id("0123456789abcdef", 3), "0123456789abcdef-0003");
  ChunkSource source(three_uploads());
  EXPECT_EQ(source.size(), 3U);
  std::vector<engine::SourceItem> items;
  engine::SourceItem item;
  while (source.next(item) == engine::SourceStatus::item) items.push_back(item);
  ASSERT_EQ(items.size(), 3U);
  for (std::size_t i = 0; i < items.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(items[i].line_no, i + 1);
    ASSERT_TRUE(items[i].parsed.request) << items[i].parsed.error_message;
    const Request& r = *items[i].parsed.request;
    EXPECT_EQ(r.custom_id, chunk_id("0123456789abcdef", i));
    EXPECT_EQ(r.endpoint, Endpoint::audio_transcriptions);
    EXPECT_EQ(r.model, "whisper-1");
    const auto body = nlohmann::json::parse(r.body);
    EXPECT_EQ(body["file"], "/audio/chunk-" + std::to_string(i) + ".mp3");
    EXPECT_EQ(body["language"], "en");
    EXPECT_EQ(body.contains("prompt"), i == 2);
    store::RowContext ctx;
    ctx.payload = items[i].payload;
    const ChunkUpload* upload = chunk_upload(ctx);
    ASSERT_NE(upload, nullptr);
    EXPECT_EQ(upload->file_index, 4U);
    EXPECT_EQ(upload->chunk_index, i);
  }
  EXPECT_EQ(source.next(item), engine::SourceStatus::end);
  EXPECT_EQ(source.fraction_read(), 1.0);
  EXPECT_EQ(chunk_upload(store::RowContext{}), nullptr);

  // Read again from the start (--ordered), the same requests.
  auto again = source.reopen();
  ASSERT_NE(again, nullptr);
  std::size_t n = 0;
  while (again->next(item) == engine::SourceStatus::item) EXPECT_EQ(item.parsed.request->custom_id, chunk_id("0123456789abcdef", n++));
  EXPECT_EQ(n, 3U);
}

// The journal of a run is the one a file of the same requests had (what transcribe wrote
// before it fed the engine from memory): the same tag and first lines.
TEST(ChunkSource, IdentityIsThatOfAFileOfTheSameRequests) {
  const auto dir = fresh_dir("identity");
  std::string lines;
  for (const auto& u : three_uploads()) lines += ChunkSource::line_of(u) + "\n";
  std::ofstream(dir / "requests.jsonl") << lines;
  const auto from_file = engine::open_jsonl_source((dir / "requests.jsonl").string(), InputOptions{})->identity();
  ChunkSource source(three_uploads());
  const auto from_memory = source.identity();
  EXPECT_EQ(from_memory.tag, from_file.tag);
  EXPECT_EQ(from_memory.legacy_tag, from_file.legacy_tag);
  ASSERT_EQ(from_memory.first_lines.size(), 3U);
  ASSERT_EQ(from_file.first_lines.size(), 3U);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(from_memory.first_lines[i].key, from_file.first_lines[i].key);
    EXPECT_EQ(from_memory.first_lines[i].hash, from_file.first_lines[i].hash);
  }
  EXPECT_EQ(from_memory.first_lines[1].key, chunk_id("0123456789abcdef", 1));
}

Outcome answer(const std::string& id, bool ok, const std::string& body = R"({"text":"hi"})") {
  Outcome o;
  o.custom_id = id;
  if (ok) {
    o.status_code = 200;
    o.body = body;
  } else {
    o.error = ErrorKind::server_error;
    o.error_message = "HTTP 500";
  }
  return o;
}

TEST(AnswerSink, KeepsEveryOutcomeInMemoryAndTheSuccessesInTheStoreOnFlush) {
  const auto dir = fresh_dir("sink");
  const fs::path store = dir / "answers.sqlite";
  EXPECT_TRUE(load_answers(store).empty());  // no store yet: nothing answered
  auto answers = std::make_shared<ChunkAnswers>();
  {
    auto sink = make_answer_sink(store, answers);
    store::RowContext ctx;
    ctx.finished_at = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
    ctx.total = std::chrono::seconds(3);
    ctx.queued = std::chrono::seconds(1);
    sink->write(answer("a-0000", true, R"({"text":"first"})"), ctx);
    sink->write(answer("a-0001", false), ctx);
    sink->write(answer("a-0000", false), ctx);  // a success stays a success
    sink->flush();
    EXPECT_EQ(load_answers(store).size(), 1U);  // committed by flush, before close
    sink->write(answer("a-0002", true, R"({"text":"third"})"), ctx);
    sink->close();
  }
  ASSERT_EQ(answers->size(), 3U);
  EXPECT_TRUE(answers->at("a-0000").ok);
  EXPECT_EQ(answers->at("a-0000").body, R"({"text":"first"})");
  EXPECT_EQ(answers->at("a-0000").total, std::chrono::seconds(3));
  EXPECT_FALSE(answers->at("a-0001").ok);
  EXPECT_EQ(answers->at("a-0001").error, "server_error: HTTP 500");

  const ChunkAnswers stored = load_answers(store);
  ASSERT_EQ(stored.size(), 2U);  // the successes only: a failed chunk is sent again
  EXPECT_EQ(stored.at("a-0000").body, R"({"text":"first"})");
  EXPECT_EQ(stored.at("a-0002").body, R"({"text":"third"})");
  EXPECT_EQ(stored.at("a-0002").finished_at, std::chrono::system_clock::time_point{});  // an earlier run's: untimed

  // A second run adds to the store.
  ChunkAnswers more;
  more["b-0000"] = ChunkAnswer{true, R"({"text":"b"})", "", {}, {}, {}};
  more["b-0001"] = ChunkAnswer{false, "", "timeout: x", {}, {}, {}};
  store_answers(store, more);
  EXPECT_EQ(load_answers(store).size(), 3U);

  std::ofstream(dir / "broken.sqlite") << "not a database";
  EXPECT_THROW((void)load_answers(dir / "broken.sqlite"), Error);
}

TEST(LegacyAnswers, TheEngineFilesOfAnEarlierFloodgateAreReadOnceThenRemoved) {
  const auto dir = fresh_dir("legacy");
  std::ofstream(dir / "requests-1-0.jsonl") << "{}\n";
  std::ofstream(dir / "responses-1-0.jsonl")
      << R"({"id":"r1","custom_id":"k-0000","response":{"status_code":200,"request_id":"q","body":{"text":"one"}},"error":null})" "\n"
      << R"({"id":"r2","custom_id":"k-0001","response":{"status_code":500,"request_id":"q","body":{"error":{}}},"error":{"code":"server_error","message":"x"}})" "\n"
      << "torn";
  std::ofstream(dir / "responses-1-0.jsonl.journal") << "x";
  std::ofstream(dir / "answers.sqlite-keep") << "x";
  const ChunkAnswers legacy = read_legacy_answers(dir);
  ASSERT_EQ(legacy.size(), 1U);
  EXPECT_EQ(nlohmann::json::parse(legacy.at("k-0000").body)["text"], "one");
  remove_legacy_files(dir);
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir)) left.push_back(e.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"answers.sqlite-keep"});
}

std::vector<Chunk> two_chunks() {
  std::vector<Chunk> chunks(2);
  chunks[1].index = 1;
  chunks[1].offset = Seconds(10);
  return chunks;
}

TEST(MergeFile, AllChunksAnsweredMakeTheTranscriptAndAnOkRowTimedFromTheFirstSend) {
  using namespace std::chrono;
  ChunkAnswers answers;
  const auto t0 = system_clock::time_point(seconds(1'700'000'000));
  answers["k-0000"] = ChunkAnswer{true, R"({"text":"Hello"})", "", t0 + seconds(4), seconds(5), seconds(2)};  // sent at t0+1
  answers["k-0001"] = ChunkAnswer{true, R"({"text":"world."})", "", t0 + seconds(6), seconds(3), seconds(0)};  // sent at t0+3
  ResultRow row;
  const auto merged = merge_file(two_chunks(), "k", ResponseFormat::text, Seconds(20), answers, "a.txt", row, t0);
  ASSERT_EQ(merged.status, MergedFile::Status::ok);
  EXPECT_EQ(merged.transcript, "Hello world.\n");
  EXPECT_EQ(row.status, "ok");
  EXPECT_EQ(row.transcript, "a.txt");
  EXPECT_EQ(row.text, "Hello world.");
  EXPECT_DOUBLE_EQ(row.transcription_seconds, 5.0);  // t0+1 .. t0+6
  EXPECT_EQ(row.transcribed_at, "2023-11-14T22:13:26.000Z");  // t0 + 6 s
}

TEST(MergeFile, AFailedChunkFailsTheFileAMissingOneLeavesItPending) {
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  ChunkAnswers answers;
  answers["k-0000"] = ChunkAnswer{true, R"({"text":"Hello"})", "", {}, {}, {}};
  ResultRow pending;
  EXPECT_EQ(merge_file(two_chunks(), "k", ResponseFormat::json, Seconds(20), answers, "a.json", pending, now).status,
            MergedFile::Status::pending);
  EXPECT_EQ(pending.status, "pending");
  EXPECT_EQ(pending.error, "not finished: re-run the same command to resume");

  answers["k-0001"] = ChunkAnswer{false, "", "server_error: HTTP 500", {}, {}, {}};
  ResultRow failed;
  EXPECT_EQ(merge_file(two_chunks(), "k", ResponseFormat::json, Seconds(20), answers, "a.json", failed, now).status,
            MergedFile::Status::chunk_failed);
  EXPECT_EQ(failed.status, "error");
  EXPECT_EQ(failed.error, "chunk 1: server_error: HTTP 500");
  EXPECT_TRUE(failed.transcript.empty());

  answers["k-0001"] = ChunkAnswer{true, R"({"no_text":1})", "", {}, {}, {}};
  ResultRow bad;
  EXPECT_EQ(merge_file(two_chunks(), "k", ResponseFormat::json, Seconds(20), answers, "a.json", bad, now).status,
            MergedFile::Status::bad_response);
  EXPECT_EQ(bad.error.rfind("bad_response: ", 0), 0U) << bad.error;

  // Every answer from an earlier run: no time of this run, transcribed "now".
  answers["k-0001"] = ChunkAnswer{true, R"({"text":"again"})", "", {}, {}, {}};
  ResultRow earlier;
  EXPECT_EQ(merge_file(two_chunks(), "k", ResponseFormat::json, Seconds(20), answers, "a.json", earlier, now).status,
            MergedFile::Status::ok);
  EXPECT_EQ(earlier.transcribed_at, "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(earlier.transcription_seconds, 0.0);
}

TEST(Results, TheTableGoesToJsonlCsvAndACopyByExtensionAndOkRowsAreTakenBack) {
  const auto dir = fresh_dir("results");
  std::vector<ResultRow> rows(2);
  rows[0].filename = "a.mp3";
  rows[0].status = "ok";
  rows[0].key = "ka";
  rows[0].transcript = "a.txt";
  rows[1].filename = "b.mp3";
  rows[1].status = "error";
  rows[1].error = "corrupt: x";
  rows[1].key = "kb";
  std::ofstream(dir / "a.txt") << "text\n";
  write_results(dir, rows, (dir / "copy.csv").string(), false);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 4);  // no .tmp left
  std::ifstream csv(dir / "copy.csv");
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header, result_csv_header());
  const auto back = previous_results(dir);
  ASSERT_EQ(back.size(), 1U);  // only the ok row whose transcript is there
  EXPECT_EQ(back.at("ka").filename, "a.mp3");
  fs::remove(dir / "a.txt");
  EXPECT_TRUE(previous_results(dir).empty());
}

}  // namespace
}  // namespace floodgate::audio
