#pragma once
// Batch API lines in and out.
//
// Input: one JSON object per line, either in the OpenAI Batch API input format
//   {"custom_id":"a1","method":"POST","url":"/v1/chat/completions","body":{...}}
// or, when a default endpoint is configured (--endpoint), a bare request body; the line
// number then becomes the custom_id. The body's bytes are kept exactly as read (a view of
// the line, never re-serialised) and its "model" becomes the limiter's key. A line that
// cannot become a request is not an exception: parse_input_line() returns an error naming
// the line and the reason, and the job goes on.
//
// LineReader reads lazily with a fixed buffer, so memory does not grow with the number of
// lines. CustomIdSet remembers 64-bit hashes of the ids seen (8 bytes per id in an open
// addressing table), enough to catch duplicate custom_ids in a 1,000,000-line file.
//
// Output: format_output_line() writes the Batch API output format, one whole line ending
// in '\n':
//   {"id":"...","custom_id":"a1","response":{"status_code":200,"request_id":"...","body":{...}},"error":null}
// Failures carry "error":{"code":<ErrorKind>,"message":...,"attempts":N,"line":L}; when an HTTP
// response was received it is kept in "response" as the Batch API does.

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/core/error_kind.hpp"
#include "floodgate/core/outcome.hpp"
#include "floodgate/core/request.hpp"

namespace floodgate {

struct InputOptions {
  // Where bare request bodies go (from --endpoint); nullopt: only Batch API lines accepted.
  std::optional<Endpoint> default_endpoint;
};

// One input line, parsed. Either `request` is set, or `error` names what is wrong.
struct ParsedLine {
  std::optional<Request> request;
  ErrorKind error = ErrorKind::none;  // invalid_input when the line is bad
  std::string error_message;          // "line 7: not JSON (...)"
  std::string custom_id;              // the id when one could be read, even on error
  // What kind of bad line (the run's start-up checks look at the first lines): not JSON
  // (RFC 8259, checked strictly before anything is read from the line), or a bare request
  // body (no custom_id, url or body) while no --endpoint was given.
  bool not_json = false;
  bool bare_body = false;
};

// Parses one line (without its trailing newline). `line_no` is 1-based. Never throws for
// bad input; throws std::bad_alloc only.
[[nodiscard]] ParsedLine parse_input_line(std::string_view line, std::uint64_t line_no, const InputOptions& options);

namespace detail {
// What parse_input_line() does with a line its one-pass parse gives up on (any line that
// is not a valid request, or nested deeper than 256): strict validation with simdjson's DOM
// parser, then the on-demand parser for the fields. The result must be the same on every
// line; tests and the jsonl_line fuzzer check that it is.
[[nodiscard]] ParsedLine parse_input_line_two_pass(std::string_view line, std::uint64_t line_no, const InputOptions& options);
}  // namespace detail

// The endpoint a bare request body's fields imply ("messages": chat, "prompt": completions,
// "input": embeddings for an embedding model or with encoding_format/dimensions, else
// responses); nullopt when they imply none or the text is not a JSON object.
[[nodiscard]] std::optional<Endpoint> guess_endpoint(std::string_view body);

// True when the line holds nothing but whitespace (such lines are skipped, not errors).
[[nodiscard]] bool is_blank_line(std::string_view line) noexcept;

// Reads a file (or stdin for "-") line by line with a bounded buffer. A line longer than
// the buffer grows it, up to max_line_bytes(): a longer line is never held, it is skipped
// to its end and reported (an empty view, skipped_bytes() its length), so memory stays
// bounded whatever the line length. After a long line the buffer shrinks back.
class LineReader {
 public:
  // Throws floodgate::Error (exit code usage) when the file cannot be opened.
  explicit LineReader(const std::string& path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line without its '\n' (and without a trailing '\r'). The view stays valid
  // until the next call. Returns false at the end of the input. line_no() is the line's
  // 1-based number.
  [[nodiscard]] bool next(std::string_view& line);
  [[nodiscard]] std::uint64_t line_no() const noexcept { return line_no_; }

  // Lines longer than this (bytes, without the newline) are skipped, not held. Default: no
  // limit. skipped_bytes(): the length of the line next() just returned when it was
  // skipped, else 0.
  void set_max_line_bytes(std::size_t max) noexcept { max_line_bytes_ = max; }
  [[nodiscard]] std::uint64_t skipped_bytes() const noexcept { return skipped_bytes_; }

  // The first up-to-`max_bytes` bytes of the input, read ahead without consuming them:
  // the run identity is a hash of this prefix (works for stdin too).
  [[nodiscard]] std::string_view prefix(std::size_t max_bytes);

  // Bytes consumed so far and the file's size (0 when unknown, e.g. a pipe): for progress.
  [[nodiscard]] std::uint64_t bytes_read() const noexcept { return bytes_consumed_; }
  [[nodiscard]] std::uint64_t size_bytes() const noexcept { return size_bytes_; }

 private:
  bool fill();  // reads more into buf_; false at EOF
  bool skip_rest_of_line(std::string_view& line);  // the line at begin_ is too long: drop it

  std::FILE* file_ = nullptr;
  bool owns_ = false;
  bool eof_ = false;
  std::vector<char> buf_;
  std::size_t begin_ = 0;  // first unconsumed byte in buf_
  std::size_t end_ = 0;    // one past the last valid byte in buf_
  std::uint64_t line_no_ = 0;
  std::uint64_t bytes_consumed_ = 0;
  std::uint64_t size_bytes_ = 0;
  std::size_t max_line_bytes_ = static_cast<std::size_t>(-1);
  std::uint64_t skipped_bytes_ = 0;
};

// A set of 64-bit hashes of custom_ids (open addressing, grows by doubling). A false
// "already present" needs a 64-bit hash collision: about 3e-8 for 1,000,000 ids.
class CustomIdSet {
 public:
  // Inserts; returns false when the id (its hash) was already present.
  bool insert(std::string_view id);
  [[nodiscard]] bool contains(std::string_view id) const noexcept;
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] static std::uint64_t hash(std::string_view id) noexcept;

 private:
  bool insert_hash(std::uint64_t h);
  std::vector<std::uint64_t> slots_;  // 0 = empty (a zero hash is stored as 1)
  std::size_t size_ = 0;
};

// The Batch API output line for an outcome, ending in '\n'. `outcome.body` must be empty or
// valid JSON (it is inserted verbatim); everything else is escaped.
[[nodiscard]] std::string format_output_line(const Outcome& outcome);
void append_output_line(std::string& out, const Outcome& outcome);

// Appends `text` to `out` as a JSON string literal (with quotes).
void append_json_string(std::string& out, std::string_view text);

// Reads the custom_id (and whether the line is a success) back from an output line we
// wrote: used when resuming to reconcile the output with the journal. nullopt when the
// line is not an output line.
struct OutputLineInfo {
  std::string custom_id;
  int status_code = 0;
  ErrorKind error = ErrorKind::none;
  std::uint64_t line_no = 0;  // from error lines ("error":{"line":N}); 0 otherwise
};
[[nodiscard]] std::optional<OutputLineInfo> read_output_line(std::string_view line);

}  // namespace floodgate
