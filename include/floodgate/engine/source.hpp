#pragma once
// RequestSource: where a job's requests come from. The engine asks it for the next item
// whenever its bounded look-ahead has room (that look-ahead is the back-pressure: a source
// is never asked for more than the engine can hold), and gets one of three answers:
//   item      an input item: a request, or the error of an item that cannot be one;
//   none_yet  nothing now, more may come: the engine waits (for its other work, or until
//             ready_fd() is readable) and asks again;
//   end       no more items, ever.
// Every item may carry an opaque payload (a table's row, an audio chunk ...) that the
// engine hands back, untouched, to the sinks with the item's outcome (RowContext::payload).
//
// A source also says which input it is (identity()), so that a journal made for another
// input is refused instead of its answers being taken for other requests (docs/engine.md,
// "Which input a journal belongs to").
//
// The JSONL file source (open_jsonl_source) reads a file of Batch API lines, or bare
// request bodies with a default endpoint; the run command's input is one.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/core/batch_io.hpp"
#include "floodgate/core/clock.hpp"

namespace floodgate::engine {

struct SourceItem {
  std::uint64_t line_no = 0;        // 1-based position in the input (the journal's "@line:N", errors' "line N")
  ParsedLine parsed;                // the request, or what is wrong with the item
  std::uint64_t skipped_bytes = 0;  // > 0: the item was too large to hold (then `parsed` is empty)
  std::shared_ptr<const void> payload;  // handed back to the sinks with the outcome
  // For requests from memory (engine::Client); a file's lines keep the defaults. The order
  // within the model's lane: higher first, equal ones in the order read. The latest time
  // (on the engine's clock) the request may be sent: not sent by then, it fails unsent
  // (ErrorKind::max_wait), and a failed attempt is not retried past it.
  int priority = 0;
  std::optional<TimePoint> deadline;
  // engine::Submission's: handed to the transport with every attempt; a cap on the attempts
  // (0: the retry policy's).
  std::shared_ptr<void> context;
  std::uint32_t max_attempts = 0;
};

enum class SourceStatus { item, none_yet, end };

// One of the input's first items: its journal key and a hash of its bytes.
struct LineFingerprint {
  std::string key;
  std::uint64_t hash = 0;
  bool recorded = false;  // kept in the journal (the first ones only); the others are only compared
};

struct SourceIdentity {
  std::string name;        // for messages: "the input \"in.jsonl\"", "the input (stdin)"
  std::string path;        // for messages that name the file itself
  std::string tag;         // the journal's identity: a journal with another one is refused
  std::string legacy_tag;  // also accepted (a journal of an earlier rule); empty: none
  // The first items, in order: a resumed run is refused when one of those the journal holds
  // as a success is gone or changed (see engine.cpp, check_first_lines).
  std::vector<LineFingerprint> first_lines;
};

class RequestSource {
 public:
  virtual ~RequestSource() = default;

  // Asked once, before the first next(). May throw floodgate::Error (exit 2) for an input
  // that cannot be a job at all.
  [[nodiscard]] virtual SourceIdentity identity() = 0;

  // Fills `item` (all of its fields) when it returns SourceStatus::item.
  [[nodiscard]] virtual SourceStatus next(SourceItem& item) = 0;

  // Readable when an item may have become ready after none_yet; -1 when next() never says
  // none_yet. The source clears it (in next()) before it answers none_yet again.
  [[nodiscard]] virtual int ready_fd() const noexcept { return -1; }

  // The engine stops (a verdict, a stop request) and asks for nothing more: a source whose
  // ready_fd() may still turn readable makes it quiet, or the engine's wait for the requests
  // in flight would return at once until they end.
  virtual void stop_reading() noexcept {}

  // How much of the input was read, 0..1, when known (progress).
  [[nodiscard]] virtual std::optional<double> fraction_read() const noexcept { return std::nullopt; }

  // The same input from its start, for --ordered's rewrite of a resumed output in input
  // order; null when it cannot be read again (stdin, a queue).
  [[nodiscard]] virtual std::unique_ptr<RequestSource> reopen() const { return nullptr; }
};

// The journal key of an input item: its custom_id the first time the id is seen, else
// "@line:N" (a bad item without a usable id, a duplicate id). `ids` holds the ids seen so far.
[[nodiscard]] std::string input_item_key(const ParsedLine& parsed, std::uint64_t line_no, CustomIdSet& ids);

// The identity of a JSONL input whose first bytes (up to 128 KiB, or all of it when
// shorter) are `first_bytes`: its tag from the endpoint setting, the legacy tag from the
// first 64 KiB, and the fingerprints of its whole lines. `name` and `path` are left empty.
// A source that stands for JSONL lines it does not keep on disk (a table's requests) gives
// the identity of those lines, so its journal is that of the same lines in a file.
[[nodiscard]] SourceIdentity jsonl_identity(std::string_view first_bytes, const InputOptions& options);
inline constexpr std::size_t kJsonlIdentityBytes = 2 * 64 * 1024;

// The Batch API input line {"custom_id":ID,"method":"POST","url":URL,"body":BODY}, without
// its '\n', `body` inserted verbatim: a source that makes its requests in memory (a table's
// rows, audio chunks) parses it, so that its items are those a file of such lines gives.
[[nodiscard]] std::string batch_input_line(std::string_view custom_id, std::string_view url, std::string_view body);

// Lines of a JSONL file ("-" = stdin), each parsed with `options`. Opening judges the
// first lines: an empty input, a file that is not JSONL or bare bodies without a default
// endpoint throw floodgate::Error (exit 2). Lines longer than the API accepts are skipped
// while reading (skipped_bytes), never held; blank lines are not items.
[[nodiscard]] std::unique_ptr<RequestSource> open_jsonl_source(const std::string& path, const InputOptions& options);

// The largest request the API accepts (25 MiB), and its reason text for an item over it.
inline constexpr std::uint64_t kMaxRequestBytes = 25ull << 20;
[[nodiscard]] std::string too_large_reason(const std::string& what, std::uint64_t bytes);

}  // namespace floodgate::engine
