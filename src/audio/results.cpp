#include "floodgate/audio/results.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <vector>

#include "floodgate/audio/chunk_source.hpp"
#include "floodgate/audio/merge.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/core/exit_codes.hpp"
#include "floodgate/core/text.hpp"
#include "floodgate/store/sqlite_table.hpp"
#include "floodgate/store/table_sink.hpp"

namespace floodgate::audio {
namespace {

using SystemTime = std::chrono::system_clock::time_point;

// The SQLite results table: one row per input keyed by file_key() (PRIMARY KEY), numbers
// typed; re-runs upsert, so a resumed job never duplicates a row.
void write_sqlite_results(const std::string& path, std::span<const ResultRow> rows, bool truncate) {
  static const std::vector<store::TableColumn> columns = {
      {"key", "TEXT"},     {"filename", "TEXT"}, {"duration_seconds", "REAL"},      {"size_bytes", "INTEGER"},
      {"chunks", "INTEGER"}, {"status", "TEXT"}, {"error", "TEXT"},                 {"transcription_seconds", "REAL"},
      {"transcribed_at", "TEXT"}, {"model", "TEXT"}, {"text", "TEXT"},              {"transcript", "TEXT"}};
  auto text = [](const std::string& v) {
    store::TableCell c;
    if (!v.empty()) {
      c.type = store::TableCell::Type::text;
      c.text = v;
    }
    return c;
  };
  auto real = [](double v) {
    store::TableCell c;
    c.type = store::TableCell::Type::real;
    c.real = std::round(v * 1000) / 1000;
    return c;
  };
  auto integer = [](std::uint64_t v) {
    store::TableCell c;
    c.type = store::TableCell::Type::integer;
    c.integer = static_cast<std::int64_t>(v);
    return c;
  };
  store::SqliteTable table(path, "results", columns, truncate ? store::OpenMode::truncate : store::OpenMode::append);
  for (const auto& r : rows) {
    table.upsert({text(r.key), text(r.filename), real(r.duration_seconds), integer(r.size_bytes), integer(r.chunks),
                  text(r.status), text(r.error), real(r.transcription_seconds), text(r.transcribed_at), text(r.model),
                  text(r.text), text(r.transcript)});
  }
  table.close();
}

}  // namespace

MergedFile merge_file(std::span<const Chunk> chunks, std::string_view key, ResponseFormat wanted, Seconds duration,
                      const ChunkAnswers& answers, const std::string& transcript_name, ResultRow& row, SystemTime now) {
  MergedFile out;
  std::vector<ChunkTranscript> pieces;
  std::string error;
  bool missing = false;
  SystemTime first_start = SystemTime::max();
  SystemTime last_end{};
  for (std::size_t c = 0; c < chunks.size(); ++c) {
    const auto a = answers.find(chunk_id(key, c));
    if (a == answers.end()) {
      missing = true;
      continue;
    }
    if (!a->second.ok) {
      if (error.empty()) error = (chunks.size() > 1 ? "chunk " + std::to_string(c) + ": " : "") + a->second.error;
      continue;
    }
    pieces.push_back(ChunkTranscript{chunks[c].offset, a->second.body});
    if (a->second.finished_at != SystemTime{}) {
      // From the chunk's first send, not from when the job read it: a file's time is its
      // own, not the wait for the files before it.
      const auto started = a->second.finished_at - std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                                       a->second.total - std::min(a->second.queued, a->second.total));
      first_start = std::min(first_start, started);
      last_end = std::max(last_end, a->second.finished_at);
    }
  }
  if (last_end != SystemTime{}) {
    row.transcription_seconds = std::chrono::duration<double>(last_end - first_start).count();
    row.transcribed_at = iso8601_utc(last_end);
  }
  if (!error.empty()) {
    row.status = "error";
    row.error = error;
    out.status = MergedFile::Status::chunk_failed;
    return out;
  }
  if (missing) {
    row.status = "pending";
    row.error = "not finished: re-run the same command to resume";
    out.status = MergedFile::Status::pending;
    return out;
  }
  auto merged = merge_transcripts(api_format(wanted), pieces, duration);
  auto rendered = merged ? render_transcript(wanted, *merged) : AudioResult<std::string>(merged.error());
  if (!rendered) {
    row.status = "error";
    row.error = "bad_response: " + rendered.error().message;
    out.status = MergedFile::Status::bad_response;
    return out;
  }
  row.status = "ok";
  row.transcript = transcript_name;
  if (wanted == ResponseFormat::json || wanted == ResponseFormat::text) {
    row.text = transcript_text(ResponseFormat::json, *merged);
  }
  if (row.transcribed_at.empty()) row.transcribed_at = iso8601_utc(now);
  out.status = MergedFile::Status::ok;
  out.transcript = std::move(*rendered);
  return out;
}

std::map<std::string, ResultRow> previous_results(const std::filesystem::path& outdir) {
  std::map<std::string, ResultRow> rows;
  std::ifstream in(outdir / "results.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto row = parse_result_jsonl(line);
    if (row && row->status == "ok" && !row->transcript.empty() && std::filesystem::exists(outdir / row->transcript)) {
      rows[row->key] = std::move(*row);
    }
  }
  return rows;
}

void write_results(const std::filesystem::path& outdir, std::span<const ResultRow> rows, const std::string& table,
                   bool truncate_table) {
  std::string jsonl;
  std::string csv = result_csv_header() + "\n";
  for (const auto& row : rows) {
    jsonl += result_jsonl(row) + "\n";
    csv += result_csv(row) + "\n";
  }
  write_file_atomically(outdir / "results.jsonl", jsonl);
  write_file_atomically(outdir / "results.csv", csv);
  if (table.empty()) return;
  switch (store::output_format_of(table)) {
    case store::OutputFormat::sqlite:
      write_sqlite_results(table, rows, truncate_table);
      break;
    case store::OutputFormat::csv:
      write_file_atomically(table, csv);
      break;
    case store::OutputFormat::jsonl:
      write_file_atomically(table, jsonl);
      break;
  }
}

void write_file_atomically(const std::filesystem::path& path, std::string_view text) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.flush();
    if (!out) throw Error("cannot write " + tmp.string(), exit_code::internal);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw Error("cannot write " + path.string() + ": " + ec.message(), exit_code::internal);
}

}  // namespace floodgate::audio
