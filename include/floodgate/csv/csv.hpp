#pragma once
// CSV as RFC 4180 writes it, read as a stream and written so that any reader gets back the
// same fields.
//
// Reading: CsvReader pulls records one by one from a file with a fixed read buffer, so
// memory is bounded by the largest record (and a record larger than max_record_bytes is an
// error record, skipped, not a reason to grow without limit). It accepts: quoted fields
// with "" for a quote, delimiters and line breaks inside quotes (kept verbatim), CRLF or LF
// record ends, a UTF-8 byte order mark at the start, and a last record without a line
// break. Blank lines are skipped. A malformed record (text after a closing quote, a quote
// left open at the end of the file, a record too large) comes back with `error` set and the
// reader goes on with the next record: one bad row never stops a table.
// A quote left open runs into the lines after it until some later quote seems to close it.
// When a quoted field that spans lines ends in an error (text after its closing quote, or the
// end of the file), the quote most likely was never closed on the line where it opened: that
// line alone becomes the error record ("a quote opened on line N is never closed") and the
// reader goes on with the next line, so the rows after it are not swallowed.
//
// Writing: append_csv_record() quotes a field only when it must (delimiter, quote, CR, LF,
// or leading/trailing space), doubles its quotes, and ends the record with CRLF.

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace floodgate::csv {

struct ReaderOptions {
  char delimiter = ',';
  std::size_t max_record_bytes = 16u << 20;  // 16 MiB
};

struct Record {
  std::vector<std::string> fields;
  std::uint64_t number = 0;      // 1-based among non-blank records (the header is 1)
  std::uint64_t first_line = 0;  // 1-based physical line where the record starts
  std::string error;             // empty when well formed
};

class Reader {
 public:
  // Reads `path` ("-" for stdin). Throws floodgate::Error when it cannot be opened.
  explicit Reader(const std::string& path, ReaderOptions options = {});
  // Reads from an open stream it does not own (for tests and pipes).
  explicit Reader(std::FILE* file, ReaderOptions options = {});
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // The next record; false at the end of the input.
  [[nodiscard]] bool next(Record& record);
  [[nodiscard]] std::uint64_t bytes_read() const noexcept { return bytes_read_; }

 private:
  int get();  // next byte or EOF
  int peek();
  // Reads again, before the file's next bytes, what the current record read after `from`.
  void replay_from(std::size_t from);

  std::FILE* file_ = nullptr;
  bool owns_ = false;
  ReaderOptions options_;
  std::vector<char> buf_;
  std::size_t pos_ = 0;
  std::size_t end_ = 0;
  bool eof_ = false;
  bool started_ = false;
  std::uint64_t line_ = 1;
  std::uint64_t records_ = 0;
  std::uint64_t bytes_read_ = 0;
  std::string raw_;          // bytes of the current record (up to max_record_bytes)
  bool raw_complete_ = true;  // false once the record outgrew raw_
  std::string replay_;       // bytes to read again before the file's
  std::size_t replay_pos_ = 0;
};

// Parses an in-memory text completely (small inputs, tests).
[[nodiscard]] std::vector<Record> parse(std::string_view text, ReaderOptions options = {});

// Appends one field, quoted when needed.
void append_field(std::string& out, std::string_view field, char delimiter = ',');
// Appends a whole record and its CRLF.
void append_record(std::string& out, const std::vector<std::string>& fields, char delimiter = ',');
void append_record(std::string& out, const std::vector<std::string_view>& fields, char delimiter = ',');

}  // namespace floodgate::csv
