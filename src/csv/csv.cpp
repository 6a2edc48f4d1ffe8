#include "floodgate/csv/csv.hpp"

#include <cerrno>
#include <cstring>

#include "floodgate/core/error.hpp"

namespace floodgate::csv {
namespace {
constexpr std::size_t kBufferBytes = 64 * 1024;
}  // namespace

Reader::Reader(const std::string& path, ReaderOptions options) : options_(options), buf_(kBufferBytes) {
  if (path == "-") {
    file_ = stdin;
  } else {
    file_ = std::fopen(path.c_str(), "rb");
    if (file_ == nullptr) throw Error("cannot open " + path + ": " + std::strerror(errno));
    owns_ = true;
  }
}

Reader::Reader(std::FILE* file, ReaderOptions options) : file_(file), options_(options), buf_(kBufferBytes) {}

Reader::~Reader() {
  if (owns_) std::fclose(file_);
}

int Reader::peek() {
  if (replay_pos_ < replay_.size()) return static_cast<unsigned char>(replay_[replay_pos_]);
  if (pos_ == end_) {
    if (eof_) return EOF;
    end_ = std::fread(buf_.data(), 1, buf_.size(), file_);
    pos_ = 0;
    if (end_ == 0) {
      eof_ = true;
      return EOF;
    }
  }
  return static_cast<unsigned char>(buf_[pos_]);
}

int Reader::get() {
  const int c = peek();
  if (c == EOF) return c;
  if (replay_pos_ < replay_.size()) {
    ++replay_pos_;
  } else {
    ++pos_;
    ++bytes_read_;
  }
  if (raw_complete_) {
    if (raw_.size() < options_.max_record_bytes) {
      raw_.push_back(static_cast<char>(c));
    } else {
      raw_complete_ = false;
      raw_.clear();
    }
  }
  return c;
}

void Reader::replay_from(std::size_t from) {
  std::string rest = raw_.substr(from);
  rest.append(replay_, replay_pos_, std::string::npos);
  replay_ = std::move(rest);
  replay_pos_ = 0;
}

bool Reader::next(Record& record) {
  if (!started_) {
    started_ = true;
    // A UTF-8 byte order mark before the first record (the first read fills the buffer
    // with at least 3 bytes unless the whole input is shorter).
    if (peek() != EOF && end_ - pos_ >= 3 && std::memcmp(buf_.data() + pos_, "\xEF\xBB\xBF", 3) == 0) {
      pos_ += 3;
      bytes_read_ += 3;
    }
  }
  const char delim = options_.delimiter;
  for (;;) {
    record.fields.clear();
    record.error.clear();
    record.first_line = line_;
    int c = peek();
    if (c == EOF) return false;
    raw_.clear();
    raw_complete_ = true;
    // Blank lines are skipped.
    if (c == '\n' || c == '\r') {
      get();
      if (c == '\r' && peek() == '\n') get();
      ++line_;
      continue;
    }
    std::size_t bytes = 0;
    bool too_large = false;
    std::string field;
    enum class State { start, unquoted, quoted, after_quote } state = State::start;
    // Where the open quote was and, when its field went past a line break, the state at that
    // break: enough to end the record there when the quote turns out to be never closed.
    std::uint64_t quote_line = 0;
    std::size_t fields_before_quote = 0;
    std::size_t raw_after_break = std::string::npos;
    std::string field_before_break;
    // The quoted field that spans lines ends in an error: keep the quote's own line as the
    // error record and read the lines after it again.
    auto give_up_on_quote = [&] {
      if (raw_after_break == std::string::npos || !raw_complete_ || too_large) return false;
      record.fields.resize(fields_before_quote);
      record.fields.push_back(std::move(field_before_break));
      record.error = "a quote opened on line " + std::to_string(quote_line) + " is never closed";
      replay_from(raw_after_break);
      line_ = quote_line + 1;
      field.clear();
      return true;
    };
    auto end_field = [&] {
      if (!too_large) record.fields.push_back(std::move(field));
      field.clear();
      state = State::start;
    };
    auto add = [&](char ch) {
      if (++bytes > options_.max_record_bytes) {
        too_large = true;
        field.clear();
        record.fields.clear();
      }
      if (!too_large) field.push_back(ch);
    };
    bool done = false;
    // Outside quotes, the end of input or of a line ends the field and the record, and a
    // delimiter ends the field. Returns false for any other character.
    auto at_boundary = [&](int ch) {
      if (ch == EOF) {
        done = true;
      } else if (ch == '\n' || ch == '\r') {
        if (ch == '\r' && peek() == '\n') get();
        ++line_;
        done = true;
      } else if (ch != delim) {
        return false;
      }
      end_field();
      return true;
    };
    while (!done) {
      c = get();
      switch (state) {
        case State::start:
        case State::unquoted:
          if (at_boundary(c)) break;
          if (c == '"' && state == State::start) {
            state = State::quoted;
            quote_line = line_;
            fields_before_quote = record.fields.size();
            raw_after_break = std::string::npos;
          } else {
            add(static_cast<char>(c));  // a quote inside an unquoted field is kept as text
            state = State::unquoted;
          }
          break;
        case State::quoted:
          if (c == EOF) {
            done = true;
            if (give_up_on_quote()) break;
            if (record.error.empty()) {
              record.error = "a quote opened on line " + std::to_string(quote_line) + " is never closed";
            }
            end_field();
          } else if (c == '"') {
            if (peek() == '"') {
              get();
              add('"');
            } else {
              state = State::after_quote;
            }
          } else {
            if (c == '\n') {
              if (raw_after_break == std::string::npos) {
                raw_after_break = raw_.size();
                field_before_break = field;
                if (!field_before_break.empty() && field_before_break.back() == '\r') field_before_break.pop_back();
              }
              ++line_;
            }
            add(static_cast<char>(c));
          }
          break;
        case State::after_quote:
          if (at_boundary(c)) break;
          if (give_up_on_quote()) {
            done = true;
            break;
          }
          if (record.error.empty()) {
            record.error = "unexpected character after a closing quote on line " + std::to_string(line_);
          }
          add(static_cast<char>(c));
          state = State::unquoted;
          break;
      }
    }
    ++records_;
    record.number = records_;
    if (too_large) {
      record.fields.clear();
      record.error = "record larger than " + std::to_string(options_.max_record_bytes) + " bytes";
    }
    return true;
  }
}

std::vector<Record> parse(std::string_view text, ReaderOptions options) {
  std::vector<Record> out;
  if (text.empty()) return out;
  std::FILE* f = fmemopen(const_cast<char*>(text.data()), text.size(), "rb");
  if (f == nullptr) throw Error("fmemopen failed");
  {
    Reader reader(f, options);
    Record r;
    while (reader.next(r)) out.push_back(r);
  }
  std::fclose(f);
  return out;
}

void append_field(std::string& out, std::string_view field, char delimiter) {
  const bool needs_quotes =
      field.find_first_of(std::string{'"', '\r', '\n', delimiter}) != std::string_view::npos ||
      (!field.empty() && (field.front() == ' ' || field.back() == ' ' || field.front() == '\t'));
  if (!needs_quotes) {
    out.append(field);
    return;
  }
  out.push_back('"');
  for (const char c : field) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

namespace {
template <typename Fields>
void append_record_impl(std::string& out, const Fields& fields, char delimiter) {
  bool first = true;
  for (const auto& f : fields) {
    if (!first) out.push_back(delimiter);
    first = false;
    append_field(out, f, delimiter);
  }
  // A record of one empty field would read back as a blank line, which readers skip.
  if (fields.size() == 1 && std::string_view(fields.front()).empty()) out.append("\"\"");
  out.append("\r\n");
}
}  // namespace

void append_record(std::string& out, const std::vector<std::string>& fields, char delimiter) {
  append_record_impl(out, fields, delimiter);
}
void append_record(std::string& out, const std::vector<std::string_view>& fields, char delimiter) {
  append_record_impl(out, fields, delimiter);
}

}  // namespace floodgate::csv
