#pragma once
// The end of a transcribe job: each input file's chunk answers merged, in chunk order, into
// its transcript and its row of the results table; and the results table itself, in
// OUTDIR/results.jsonl and OUTDIR/results.csv, plus a copy by extension (--table: a SQLite
// table `results` keyed by `key`, or CSV, or JSONL). The command
// (apps/floodgate/cmd_transcribe.cpp) plans and sends the chunks, then calls these.

#include <chrono>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include "floodgate/audio/answers.hpp"
#include "floodgate/audio/job.hpp"
#include "floodgate/audio/media.hpp"

namespace floodgate::audio {

// What became of a file whose chunks were sent.
struct MergedFile {
  enum class Status {
    ok,            // transcript holds the file's transcript
    chunk_failed,  // a chunk's answer is an error: a re-run sends that chunk again
    bad_response,  // every chunk answered, but the answers do not merge into a transcript
    pending,       // a chunk has no answer yet (the job stopped): a re-run resumes it
  };
  Status status = Status::pending;
  std::string transcript;  // the transcript file's text (ok only)
};

// Merges the answers of a file's chunks (their ids: chunk_id(key, i)) into the transcript
// in `wanted`'s format, and fills the file's row: status and error ("chunk 2: <kind>:
// <message>" for a file of several chunks, "bad_response: ..."; "pending" with a hint to
// re-run), the transcription time from the first send to the last answer of this run's
// answers, transcribed_at (the last answer; `now` when every answer came from an earlier
// run), the text (json and text formats) and, when ok, `transcript_name` as its transcript.
[[nodiscard]] MergedFile merge_file(std::span<const Chunk> chunks, std::string_view key, ResponseFormat wanted, Seconds duration,
                                    const ChunkAnswers& answers, const std::string& transcript_name, ResultRow& row,
                                    std::chrono::system_clock::time_point now);

// The rows of the results.jsonl an earlier run left in `outdir` that are ok and whose
// transcript is still there, by key: their files are not sent again.
[[nodiscard]] std::map<std::string, ResultRow> previous_results(const std::filesystem::path& outdir);

// Writes results.jsonl and results.csv in `outdir` and, when `table` is not empty, a copy at
// `table` by its extension (store::output_format_of): a SQLite table `results` whose rows are
// upserted by key (emptied first when `truncate_table`), or CSV, or JSONL. Each file is
// replaced whole (write_file_atomically). Throws floodgate::Error.
void write_results(const std::filesystem::path& outdir, std::span<const ResultRow> rows, const std::string& table,
                   bool truncate_table);

// Writes `text` to a temporary file beside `path` and renames it over `path`. Throws
// floodgate::Error (exit code internal).
void write_file_atomically(const std::filesystem::path& path, std::string_view text);

}  // namespace floodgate::audio
