#pragma once
// The pieces of `floodgate transcribe` that do not need the network: which files a job
// covers, what it asks the API for each file or chunk, how a file's identity is keyed for
// resume, how chunk responses become the transcript the user asked for, and the rows of
// the results table. The command (apps/floodgate/cmd_transcribe.cpp) wires these to the
// engine.
//
// The API is always asked for JSON: `json` when the user wants text or json, and
// `verbose_json` when they want srt, vtt or verbose_json; srt and vtt are rendered here
// from the merged segments (the API renders its own srt/vtt from the same segments). So
// every response is a JSON body that the engine can check and journal like any other.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/audio/error.hpp"
#include "floodgate/audio/merge.hpp"
#include "floodgate/audio/media.hpp"

namespace floodgate::audio {

// The API's transcription parameters, per file.
struct TranscribeOptions {
  std::string model = "whisper-1";
  std::string language;                              // empty: not sent
  std::string prompt;                                // empty: not sent
  ResponseFormat response_format = ResponseFormat::json;
  std::optional<double> temperature;
  std::vector<std::string> timestamp_granularities;  // "word", "segment"
};

struct InputFile {
  std::filesystem::path path;
  TranscribeOptions options;
  std::size_t list_line = 0;  // the line of a JSONL list it came from (0: from the command line)
};

// File extensions the API accepts (and a folder is searched for), lower case with the dot.
[[nodiscard]] bool is_audio_extension(std::string_view extension) noexcept;

// Expands the command line's paths: a file is taken as is (whatever its extension: probe
// judges it); a folder is searched recursively for audio extensions, in sorted order; a
// `.jsonl` file is a list, one object per line: {"file": "...", and optionally "model",
// "language", "prompt", "response_format", "temperature", "timestamp_granularities"},
// relative paths resolved against the list's folder. Throws floodgate::Error for a path
// that does not exist or a malformed list line (naming the line).
[[nodiscard]] std::vector<InputFile> expand_inputs(std::span<const std::string> paths,
                                                   const TranscribeOptions& defaults);

// The API response format to request for what the user wants.
[[nodiscard]] ResponseFormat api_format(ResponseFormat wanted) noexcept;

// The JSON body of one transcription request (an engine input line's "body"): every
// parameter, and "file" the path to stream. `prompt` overrides options.prompt when set
// (--carry-prompt).
[[nodiscard]] std::string request_body(const TranscribeOptions& options, const std::filesystem::path& file,
                                       const std::optional<std::string>& prompt = std::nullopt);

// A stable key of a file for resume: path, size, mtime and every option that changes the
// result, as 16 hex digits (FNV-1a 64).
[[nodiscard]] std::string file_key(const std::filesystem::path& path, std::uint64_t size_bytes,
                                   std::int64_t mtime_ns, const TranscribeOptions& options,
                                   std::string_view split_signature);

// Turns the merged API response (json or verbose_json) into the transcript file's text
// in the wanted format.
[[nodiscard]] AudioResult<std::string> render_transcript(ResponseFormat wanted, std::string_view merged_api_body);

// One row of the results table.
struct ResultRow {
  std::string filename;      // the input path as given/expanded
  double duration_seconds = 0;
  std::uint64_t size_bytes = 0;
  std::size_t chunks = 0;
  std::string status;        // "ok", "error", "skipped"
  std::string error;         // "<kind>: <message>" for errors, the reason for skips
  double transcription_seconds = 0;  // wall time from the first chunk sent to the last answer
  std::string transcribed_at;        // ISO 8601 UTC of the last answer
  std::string model;
  std::string text;          // for json/text formats
  std::string transcript;    // the transcript file written (relative to OUTDIR)
  std::string key;           // file_key()
};

[[nodiscard]] std::string result_jsonl(const ResultRow& row);
[[nodiscard]] std::string result_csv_header();
[[nodiscard]] std::string result_csv(const ResultRow& row);
// Parses a line written by result_jsonl (for resume); nullopt when malformed.
[[nodiscard]] std::optional<ResultRow> parse_result_jsonl(std::string_view line);

// The planning of one file, as the helper `floodgate-audio plan` reports it (one JSON line
// per file): the probe's result or its error, and the chunks when the file was split.
struct FilePlan {
  std::size_t index = 0;
  std::optional<AudioError> error;
  AudioInfo info;
  bool split = false;
  std::vector<Chunk> chunks;  // empty unless split
};
[[nodiscard]] std::string plan_to_json(const FilePlan& plan);
[[nodiscard]] std::optional<FilePlan> plan_from_json(std::string_view line);


}  // namespace floodgate::audio
