#pragma once
// The answers of a transcribe job's uploads, by chunk id (chunk_id()).
//
// This run's outcomes reach the job in memory: the answer sink is an extra sink of the
// engine, which runs without an output file, so nothing is written to be read back. The
// successful answers are also kept in a store (transcribe: OUTDIR/.floodgate/answers.sqlite,
// SQLite table `answers`, one row per chunk id), committed at the engine's checkpoints
// (the engine's own journal is in memory): a re-run of an interrupted or partly failed job loads them
// (load_answers()) and sends only the chunks that have none, so no answered chunk is paid
// for twice. The store goes with the rest of OUTDIR/.floodgate/ once every file is
// transcribed, or with --force.

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "floodgate/store/sink.hpp"

namespace floodgate::audio {

// One chunk's answer: from this run (the sink) or an earlier one (the store).
struct ChunkAnswer {
  bool ok = false;
  std::string body;   // the JSON response body when ok
  std::string error;  // "<kind>: <message>" otherwise
  // This run's answers only (zero for the store's): when it came, and how long it took from
  // the engine's read of the request to the answer, and to the first send.
  std::chrono::system_clock::time_point finished_at{};
  std::chrono::nanoseconds total{0};
  std::chrono::nanoseconds queued{0};
};
using ChunkAnswers = std::map<std::string, ChunkAnswer, std::less<>>;

// The successful answers in the store at `store_path` (none when it does not exist). Throws
// floodgate::Error when it exists but cannot be read.
[[nodiscard]] ChunkAnswers load_answers(const std::filesystem::path& store_path);

// Adds successful answers to the store at `store_path` (creating it), committed on return.
void store_answers(const std::filesystem::path& store_path, const ChunkAnswers& answers);

// An engine sink: every outcome goes into `answers` under its custom_id (a success is never
// replaced by a later failure), and each success into the store at `store_path` as well,
// committed by flush(). Throws floodgate::Error when the store cannot be opened.
[[nodiscard]] std::unique_ptr<store::Sink> make_answer_sink(const std::filesystem::path& store_path, std::shared_ptr<ChunkAnswers> answers);

// The successful answers in the engine output files ("responses-*.jsonl") that floodgate
// transcribe left in its state folder `state` before it fed the engine from memory, and the
// removal of those files (their "requests-*.jsonl" and journals too): a job interrupted
// before an upgrade moves its answers to the store and resumes without paying for them again.
[[nodiscard]] ChunkAnswers read_legacy_answers(const std::filesystem::path& state);
void remove_legacy_files(const std::filesystem::path& state);

}  // namespace floodgate::audio
