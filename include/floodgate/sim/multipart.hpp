#pragma once
// An incremental multipart/form-data parser (RFC 7578 / RFC 2046) for request bodies that
// arrive in chunks of any size: it never holds more than one part's header block
// (at most 16 KiB) plus a delimiter's worth of body bytes. Part data is handed to the
// handler as it is found, so a 25 MB upload is hashed and counted, never buffered whole.
//
// Usage:
//   MultipartParser parser(*MultipartParser::boundary_from_content_type(content_type), handler);
//   for each chunk: if (!parser.feed(chunk)) -> parser.error() says why
//   parser.finish() -> true iff the closing delimiter was seen and nothing went wrong
//
// No socket, no allocation per byte: the fuzz target fuzz/sim_multipart.cpp drives it
// directly with arbitrary splits.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace floodgate::sim {

struct PartHeaders {
  std::string name;          // Content-Disposition name="…"
  std::string filename;      // Content-Disposition filename="…" (empty if absent)
  bool has_filename = false;
  std::string content_type;  // Content-Type of the part (empty if absent)
};

class MultipartHandler {
 public:
  virtual ~MultipartHandler() = default;
  virtual void on_part_begin(const PartHeaders& headers) = 0;
  virtual void on_part_data(std::string_view data) = 0;
  virtual void on_part_end() = 0;
};

class MultipartParser {
 public:
  static constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
  static constexpr std::size_t kMaxBoundaryBytes = 70;  // RFC 2046

  // The boundary parameter of a multipart/form-data Content-Type, or nullopt.
  static std::optional<std::string> boundary_from_content_type(std::string_view content_type);

  MultipartParser(std::string boundary, MultipartHandler& handler);

  // Consumes a chunk. Returns false once the body is malformed (and ignores later input).
  bool feed(std::string_view chunk);
  // Call at end of input. True iff the body was complete and well formed.
  bool finish();
  [[nodiscard]] bool done() const noexcept { return state_ == State::epilogue; }
  [[nodiscard]] const std::string& error() const noexcept { return error_; }

 private:
  enum class State { preamble, after_delimiter, headers, body, epilogue, failed };
  bool fail(std::string message);
  bool parse_headers(std::string_view block);
  bool step();

  std::string delimiter_;  // "\r\n--" + boundary
  MultipartHandler& handler_;
  State state_ = State::preamble;
  std::string buffer_;     // unconsumed input
  std::size_t pos_ = 0;    // consumed prefix of buffer_
  std::string error_;
  bool in_part_ = false;
};

}  // namespace floodgate::sim
