#pragma once
// Where terminal outcomes go. The engine calls, for every request that reached a terminal
// outcome (success or final failure):
//   1. write(outcome, context)   — buffer one whole row; must not tear a row;
//   2. flush()                   — at a checkpoint: every row written so far reaches the
//                                  OS (and, with durable sinks, the disk) before the
//                                  journal commits those outcomes;
//   3. close()                   — once at the end (after a last flush()).
// and, before any write, forget(keys) when a --retry-failed run sends those rows again.
// The journal is committed only after flush() returns, so after a crash the sink holds
// every journaled outcome; the engine reconciles the rest when resuming (see
// docs/engine.md). Sinks are used from the engine's single thread: no locking needed.
// A sink destroyed without close() drops what was not flushed (the job stopped on an error:
// those rows are not journaled, a resume sends them again).
//
// Contract on the Outcome: `body` is empty or valid JSON (the engine guarantees it), so a
// sink may embed it verbatim. Errors writing are configuration-level failures: throw
// floodgate::Error (the job stops; everything journaled is safe).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/core/outcome.hpp"
#include "floodgate/core/request.hpp"

namespace floodgate::store {

// What the engine knows about a row beyond the Outcome: for sinks with more columns
// (CSV, SQLite: model, cost, timing).
struct RowContext {
  std::string_view model;                 // the request's body.model ("" when unknown)
  std::string_view url;                   // e.g. "/v1/chat/completions"
  Endpoint endpoint = Endpoint::chat_completions;
  std::string_view request_body;          // the body sent (empty for invalid input lines)
  std::uint64_t estimated_tokens = 0;     // the admission estimate
  std::chrono::nanoseconds queued{0};     // from read to the first send
  std::chrono::nanoseconds total{0};      // from read to the terminal outcome
  std::chrono::system_clock::time_point finished_at{};
  // What the request's source attached to it (a table's row ...), untouched; null for a
  // JSONL file. A sink that knows its source casts it back.
  std::shared_ptr<const void> payload;
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void write(const Outcome& outcome, const RowContext& context) = 0;
  virtual void flush() = 0;
  virtual void close() = 0;
  // Rows with these journal keys (custom_id, or "@line:<N>") are about to be done again
  // (--retry-failed): a sink that keeps rows on disk removes them, durably, so the new row
  // replaces the old one instead of joining it. Called before any write(); idempotent.
  virtual void forget(const std::vector<std::string>& /*keys*/) {}
};

// How a sink opens an existing file.
enum class OpenMode {
  truncate,  // start empty
  append,    // resume: keep what is there (a torn last line is cut back to the last '\n')
};

// The Batch API output format, one JSON object per line (see core/batch_io.hpp).
// `path` "-" writes to stdout (append mode then means nothing). `fsync_on_flush` makes
// every flush() durable against power loss, not only against a crash of the process.
[[nodiscard]] std::unique_ptr<Sink> make_jsonl_sink(const std::string& path, OpenMode mode, bool fsync_on_flush = false);

// Cuts a torn last line (no trailing '\n', e.g. after kill -9 or a full disk) from a JSONL
// file. Returns the number of bytes removed (0 when the file ends cleanly or is absent).
std::uint64_t truncate_torn_tail(const std::string& path);

}  // namespace floodgate::store
