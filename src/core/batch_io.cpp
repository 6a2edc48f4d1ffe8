#include "floodgate/core/batch_io.hpp"

#include <simdjson.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <functional>

#include "floodgate/core/error.hpp"

namespace floodgate {
namespace {

namespace od = simdjson::ondemand;

// A reusable copy of the line with simdjson's padding after it.
struct Scratch {
  std::string buf;
  od::parser parser;
  simdjson::padded_string_view pad(std::string_view text) {
    // After a long line, give its memory back (a thread-local copy would keep it all run).
    if (buf.size() > (4u << 20) && text.size() + simdjson::SIMDJSON_PADDING < buf.size() / 4) {
      std::string().swap(buf);
      parser = od::parser{};
    }
    if (buf.size() < text.size() + simdjson::SIMDJSON_PADDING) buf.resize(text.size() + simdjson::SIMDJSON_PADDING);
    // An empty line may come as a null view: memcpy from null is undefined even for 0 bytes.
    if (!text.empty()) std::memcpy(buf.data(), text.data(), text.size());
    std::memset(buf.data() + text.size(), ' ', simdjson::SIMDJSON_PADDING);
    return simdjson::padded_string_view(buf.data(), text.size(), buf.size());
  }
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

std::string line_error(std::uint64_t line_no, std::string_view reason) {
  std::string msg = "line " + std::to_string(line_no) + ": ";
  msg.append(reason);
  return msg;
}

ParsedLine bad(std::uint64_t line_no, std::string_view reason, std::string custom_id = {}) {
  ParsedLine p;
  p.error = ErrorKind::invalid_input;
  p.error_message = line_error(line_no, reason);
  p.custom_id = std::move(custom_id);
  return p;
}

// Lines from this size on are validated with a parser of their own, freed at once: a
// thread-local one would keep its capacity (several times the line) for the whole run.
constexpr std::size_t kLargeLineBytes = 1 << 20;

// Why `text` is not one JSON value under RFC 8259 (the byte column and what was found), or
// an empty string when it is. Only called when simdjson has refused the text: nlohmann's
// parser says where, which simdjson does not.
std::string where_json_fails(std::string_view text, simdjson::error_code simdjson_error) {
  // A SAX handler that builds nothing and keeps the first error.
  struct Locate : nlohmann::json_sax<nlohmann::json> {
    std::size_t byte = 0;
    std::string what;
    bool null() override { return true; }
    bool boolean(bool /*v*/) override { return true; }
    bool number_integer(number_integer_t /*v*/) override { return true; }
    bool number_unsigned(number_unsigned_t /*v*/) override { return true; }
    bool number_float(number_float_t /*v*/, const string_t& /*s*/) override { return true; }
    bool string(string_t& /*v*/) override { return true; }
    bool binary(binary_t& /*v*/) override { return true; }
    bool start_object(std::size_t /*n*/) override { return true; }
    bool key(string_t& /*v*/) override { return true; }
    bool end_object() override { return true; }
    bool start_array(std::size_t /*n*/) override { return true; }
    bool end_array() override { return true; }
    bool parse_error(std::size_t position, const std::string& /*last_token*/, const nlohmann::detail::exception& e) override {
      byte = position;
      what = e.what();
      return false;
    }
  } locate;
  if (nlohmann::json::sax_parse(text.begin(), text.end(), &locate) || locate.what.empty()) {
    return std::string("not JSON (") + simdjson::error_message(simdjson_error) + ")";
  }
  const std::size_t column = locate.byte == 0 ? 1 : locate.byte;
  if (locate.what.find("expected end of input") != std::string::npos) {
    return "not JSON: trailing content after the JSON value at column " + std::to_string(column) +
           " (one request per line, nothing after its closing brace)";
  }
  // "[json.exception.parse_error.101] parse error at line 1, column 7: syntax error ..."
  std::string detail = locate.what;
  if (const std::size_t at = detail.find(", column "); at != std::string::npos) {
    if (const std::size_t colon = detail.find(": ", at); colon != std::string::npos) detail = detail.substr(colon + 2);
  }
  return "not JSON at column " + std::to_string(column) + ": " + detail;
}

// Strict validation (RFC 8259, UTF-8 included) of the whole line before anything is taken
// from it: the on-demand walk below skips what it does not read (a body is taken as raw
// bytes), so a body that is not JSON would otherwise be sent and come back 400. `padded`
// is the line with simdjson's padding after it.
std::string strict_json_error(std::string_view line, const char* padded) {
  auto check = [&](simdjson::dom::parser& dom) {
    simdjson::dom::element root;
    const auto err = dom.parse(reinterpret_cast<const std::uint8_t*>(padded), line.size(), false).get(root);
    return err == simdjson::SUCCESS ? std::string() : where_json_fails(line, err);
  };
  if (line.size() >= kLargeLineBytes) {
    simdjson::dom::parser dom;
    return check(dom);
  }
  thread_local simdjson::dom::parser dom;
  return check(dom);
}

// Reads body.model from the body's bytes (which sit inside the padded scratch buffer).
std::string read_model(od::parser& parser, std::string_view body, const char* buf_end) {
  simdjson::padded_string_view view(body.data(), body.size(), static_cast<std::size_t>(buf_end - body.data()));
  od::document doc;
  if (parser.iterate(view).get(doc)) return {};
  od::object obj;
  if (doc.get_object().get(obj)) return {};
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return {};
    if (key == "model") {
      std::string_view model;
      if (field.value().get_string().get(model)) return {};
      return std::string(model);
    }
  }
  return {};
}

// What a line's top-level fields say, before the checks that make it a request or an error.
struct LineFields {
  std::optional<std::string> custom_id;
  std::optional<std::string> method;
  std::optional<std::string> url;
  std::string_view body;  // the last object "body", raw bytes in the scratch buffer
  bool has_body = false;
  bool body_not_object = false;
  std::string body_model;  // body.model of that body ("" when absent or not a string)
  std::string line_model;  // the line's own "model", for a bare body (same rule)
};

// ---- one pass: strict and extracting at once ------------------------------------------------
//
// Every line used to be parsed twice: simdjson's DOM parser validated it (RFC 8259), then the
// on-demand parser took the fields, skipping the body. The walk below does both in one pass
// of the on-demand parser: it visits every value the way the DOM parser's second stage does
// (every key and string unescaped, every number and literal parsed, every comma, colon and
// bracket checked, nothing after the root object) and takes the fields on the way. It only
// ever says yes to lines the DOM parser accepts; for anything else (an error of any kind, a
// field of the wrong type, nesting deeper than kWalkDepth) it gives up and the line goes
// the old two-parse way, so every error and its message stay as they were.

// Deeper than this, the walk leaves the line to the DOM parser (whose limit is 1024).
constexpr int kWalkDepth = 256;

bool walk_strict(od::value value, int depth);

// The fields of an object, each value walked; `on_field(key, value)` may take the value
// (returning 1 when it consumed and checked it, 0 to have it walked, -1 to give up).
template <typename OnField>
bool walk_object(od::object obj, int depth, OnField&& on_field) {
  for (auto result : obj) {
    od::field field;
    std::string_view key;
    if (std::move(result).get(field) || field.unescaped_key().get(key)) return false;
    od::value& child = field.value();
    const int taken = on_field(key, child);
    if (taken < 0) return false;
    if (taken == 0 && !walk_strict(child, depth + 1)) return false;
  }
  return true;
}

bool walk_strict(od::value value, int depth) {
  od::json_type type;
  if (value.type().get(type)) return false;
  switch (type) {
    case od::json_type::object: {
      od::object obj;
      if (depth >= kWalkDepth || value.get_object().get(obj)) return false;
      return walk_object(obj, depth, [](std::string_view, od::value&) { return 0; });
    }
    case od::json_type::array: {
      od::array arr;
      if (depth >= kWalkDepth || value.get_array().get(arr)) return false;
      for (auto element : arr) {
        od::value child;
        if (element.get(child) || !walk_strict(child, depth + 1)) return false;
      }
      return true;
    }
    case od::json_type::string: {
      // Unescaped (escapes checked) and consumed: a string left in place could pass for a
      // key when the on-demand parser skips it.
      std::string_view text;
      return !value.get_string().get(text);
    }
    case od::json_type::number: {
      od::number number;
      return !value.get_number().get(number);
    }
    case od::json_type::boolean: {
      bool flag = false;
      return !value.get_bool().get(flag);
    }
    case od::json_type::null: {
      bool is_null = false;
      return !value.is_null().get(is_null) && is_null;
    }
  }
  return false;
}

// Takes the first "model" of an object being walked: its string, or "" when it is not one
// (as read_model() does). Returns what walk_object()'s callback returns.
int take_model(std::string_view key, od::value& value, std::string& model, bool& seen, int depth) {
  if (key != "model" || seen) return 0;
  seen = true;
  std::string_view text;
  if (!value.get_string().get(text)) {
    model.assign(text);
    return 1;
  }
  model.clear();
  return walk_strict(value, depth + 1) ? 1 : -1;
}

// The one-pass parse; false when the line must go the two-parse way.
bool fields_in_one_pass(od::parser& parser, simdjson::padded_string_view padded, LineFields& f) {
  od::document doc;
  od::object root;
  if (parser.iterate(padded).get(doc) || doc.get_object().get(root)) return false;
  bool line_model_seen = false;
  const bool ok = walk_object(root, 1, [&](std::string_view key, od::value& value) -> int {
    std::optional<std::string>* text_field = key == "custom_id" ? &f.custom_id : key == "method" ? &f.method : key == "url" ? &f.url : nullptr;
    if (text_field != nullptr) {
      std::string_view text;
      if (value.get_string().get(text)) return -1;  // an error line: its message comes from the old way
      text_field->emplace(text);
      return 1;
    }
    if (key == "body") {
      od::object body;
      const char* begin = value.raw_json_token().data();
      if (*begin != '{' || value.get_object().get(body)) return -1;
      f.has_body = true;
      f.body_model.clear();
      bool body_model_seen = false;
      if (!walk_object(body, 2, [&](std::string_view k, od::value& v) { return take_model(k, v, f.body_model, body_model_seen, 2); })) return -1;
      // As object::raw_json() has it: from the brace up to the next token.
      const char* end = nullptr;
      if (doc.current_location().get(end)) return -1;
      f.body = std::string_view(begin, static_cast<std::size_t>(end - begin));
      return 1;
    }
    return take_model(key, value, f.line_model, line_model_seen, 1);
  });
  // Nothing may follow the root object: at its end, the location is out of bounds.
  return ok && doc.current_location().error() != simdjson::SUCCESS;
}

// The two-parse way: strict DOM validation (which says where a line fails), then the
// on-demand walk for the fields. nullopt: the fields were read; else the line's error.
std::optional<ParsedLine> fields_in_two_passes(Scratch& s, std::string_view line, std::uint64_t line_no,
                                               simdjson::padded_string_view padded, LineFields& f) {
  if (std::string why = strict_json_error(line, s.buf.data()); !why.empty()) {
    ParsedLine p = bad(line_no, why);
    p.not_json = true;
    return p;
  }
  od::document doc;
  if (auto err = s.parser.iterate(padded).get(doc)) return bad(line_no, std::string("not JSON (") + simdjson::error_message(err) + ")");
  od::object obj;
  if (auto err = doc.get_object().get(obj)) {
    if (err == simdjson::INCORRECT_TYPE) return bad(line_no, "not a JSON object");
    return bad(line_no, std::string("not JSON (") + simdjson::error_message(err) + ")");
  }

  for (auto field : obj) {
    std::string_view key;
    if (field.error() || field.unescaped_key().get(key)) return bad(line_no, "not JSON (malformed object)");
    od::value value;
    if (field.value().get(value)) return bad(line_no, "not JSON (malformed value)");
    if (key == "custom_id") {
      std::string_view id;
      if (value.get_string().get(id)) return bad(line_no, "custom_id is not a string");
      f.custom_id = std::string(id);
    } else if (key == "method") {
      std::string_view m;
      if (value.get_string().get(m)) return bad(line_no, "method is not a string");
      f.method = std::string(m);
    } else if (key == "url") {
      std::string_view u;
      if (value.get_string().get(u)) return bad(line_no, "url is not a string");
      f.url = std::string(u);
    } else if (key == "body") {
      f.has_body = true;
      od::json_type type;
      if (value.type().get(type)) return bad(line_no, "not JSON (malformed body)");
      if (type != od::json_type::object) {
        f.body_not_object = true;
        (void)value.raw_json_token();
        continue;
      }
      od::object body_obj;
      if (value.get_object().get(body_obj) || body_obj.raw_json().get(f.body)) return bad(line_no, "not JSON (malformed body)");
    }
  }
  // Whatever the loop skipped must still be well formed, and nothing may follow the object.
  if (!doc.current_location().error()) return bad(line_no, "not JSON (trailing content after the object)");
  return std::nullopt;
}

ParsedLine parse_line(std::string_view line, std::uint64_t line_no, const InputOptions& options, bool one_pass) {
  Scratch& s = scratch();
  auto padded = s.pad(line);
  const char* buf_end = s.buf.data() + s.buf.size();

  LineFields f;
  const bool read_in_one_pass = one_pass && fields_in_one_pass(s.parser, padded, f);
  if (!read_in_one_pass) {
    f = LineFields{};
    if (auto error = fields_in_two_passes(s, line, line_no, padded, f)) return std::move(*error);
  }

  const bool batch_format = f.custom_id.has_value() || f.url.has_value() || f.has_body;
  if (!batch_format) {
    if (!options.default_endpoint) {
      ParsedLine p = bad(line_no, "not a Batch API line (no custom_id, url and body) and no --endpoint given for bare bodies");
      p.bare_body = true;
      return p;
    }
    // A bare request body: the whole line, the line number as custom_id.
    std::string_view whole(s.buf.data(), line.size());
    // Trim surrounding whitespace so the forwarded bytes are exactly the object.
    while (!whole.empty() && (whole.front() == ' ' || whole.front() == '\t')) whole.remove_prefix(1);
    while (!whole.empty() && (whole.back() == ' ' || whole.back() == '\t' || whole.back() == '\r')) whole.remove_suffix(1);
    ParsedLine p;
    Request r;
    r.custom_id = std::to_string(line_no);
    r.endpoint = *options.default_endpoint;
    r.url = std::string(endpoint_path(r.endpoint));
    r.body = std::string(whole);
    r.model = read_in_one_pass ? std::move(f.line_model) : read_model(s.parser, whole, buf_end);
    r.line_no = line_no;
    p.custom_id = r.custom_id;
    p.request = std::move(r);
    return p;
  }

  if (!f.custom_id) return bad(line_no, "no custom_id");
  if (f.custom_id->empty()) return bad(line_no, "empty custom_id");
  if (!f.has_body) return bad(line_no, "no body", *f.custom_id);
  if (f.body_not_object) return bad(line_no, "body is not a JSON object", *f.custom_id);
  if (f.method && *f.method != "POST") return bad(line_no, "method \"" + *f.method + "\" is not POST", *f.custom_id);

  Endpoint endpoint;
  if (f.url) {
    auto e = endpoint_from_path(*f.url);
    if (!e) return bad(line_no, "unknown endpoint \"" + *f.url + "\"", *f.custom_id);
    endpoint = *e;
  } else if (options.default_endpoint) {
    endpoint = *options.default_endpoint;
  } else {
    return bad(line_no, "no url and no --endpoint given", *f.custom_id);
  }

  ParsedLine p;
  Request r;
  r.custom_id = std::move(*f.custom_id);
  r.endpoint = endpoint;
  r.url = std::string(endpoint_path(endpoint));
  r.body = std::string(f.body);
  r.model = read_in_one_pass ? std::move(f.body_model) : read_model(s.parser, f.body, buf_end);
  r.line_no = line_no;
  p.custom_id = r.custom_id;
  p.request = std::move(r);
  return p;
}

}  // namespace

bool is_blank_line(std::string_view line) noexcept {
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

ParsedLine parse_input_line(std::string_view line, std::uint64_t line_no, const InputOptions& options) {
  return parse_line(line, line_no, options, true);
}

namespace detail {
ParsedLine parse_input_line_two_pass(std::string_view line, std::uint64_t line_no, const InputOptions& options) {
  return parse_line(line, line_no, options, false);
}
}  // namespace detail

std::optional<Endpoint> guess_endpoint(std::string_view body) {
  simdjson::dom::parser dom;
  simdjson::dom::object obj;
  if (dom.parse(body.data(), body.size()).get_object().get(obj)) return std::nullopt;
  auto has = [&](std::string_view key) { return obj.at_key(key).error() == simdjson::SUCCESS; };
  if (has("messages")) return Endpoint::chat_completions;
  if (has("prompt")) return Endpoint::completions;
  if (has("input")) {
    std::string_view model;
    if (obj.at_key("model").get_string().get(model)) model = {};
    if (model.find("embedding") != std::string_view::npos || has("encoding_format") || has("dimensions")) return Endpoint::embeddings;
    return Endpoint::responses;
  }
  return std::nullopt;
}

// ---- LineReader ---------------------------------------------------------------------------

LineReader::LineReader(const std::string& path) : buf_(1 << 16) {
  if (path == "-") {
    file_ = stdin;
  } else {
    file_ = std::fopen(path.c_str(), "rb");
    if (file_ == nullptr) throw Error("cannot open input \"" + path + "\": " + std::strerror(errno));
    owns_ = true;
    struct stat st {};
    if (::fstat(fileno(file_), &st) == 0 && S_ISREG(st.st_mode)) size_bytes_ = static_cast<std::uint64_t>(st.st_size);
  }
}

LineReader::~LineReader() {
  if (owns_ && file_ != nullptr) std::fclose(file_);
}

bool LineReader::fill() {
  if (eof_) return false;
  if (begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == buf_.size()) {
    // Double, but not far past the longest line wanted: a longer one is skipped, not held.
    std::size_t size = buf_.size() * 2;
    if (max_line_bytes_ < size / 2 * 2 - 2) size = std::max(buf_.size() + 1, max_line_bytes_ + 2);
    buf_.resize(size);
  }
  const std::size_t n = std::fread(buf_.data() + end_, 1, buf_.size() - end_, file_);
  if (n == 0) {
    eof_ = true;
    return false;
  }
  end_ += n;
  return true;
}

bool LineReader::skip_rest_of_line(std::string_view& line) {
  std::uint64_t length = end_ - begin_;
  begin_ = end_ = 0;
  for (;;) {
    if (eof_) break;
    const std::size_t n = std::fread(buf_.data(), 1, buf_.size(), file_);
    if (n == 0) {
      eof_ = true;
      break;
    }
    const void* nl = std::memchr(buf_.data(), '\n', n);
    if (nl != nullptr) {
      const std::size_t pos = static_cast<std::size_t>(static_cast<const char*>(nl) - buf_.data());
      length += pos;
      begin_ = pos + 1;
      end_ = n;
      bytes_consumed_ += 1;  // the newline
      break;
    }
    length += n;
  }
  bytes_consumed_ += length;
  skipped_bytes_ = length;
  ++line_no_;
  line = std::string_view();
  return true;
}

bool LineReader::next(std::string_view& line) {
  skipped_bytes_ = 0;
  constexpr std::size_t kInitial = 1 << 16;
  if (buf_.size() > 16 * kInitial && end_ - begin_ < kInitial) {
    // The long line that grew the buffer is gone: shrink back.
    std::vector<char> small(std::max(kInitial, end_ - begin_));
    std::memcpy(small.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
    buf_.swap(small);
  }
  std::size_t scan_from = begin_;
  for (;;) {
    const void* nl = std::memchr(buf_.data() + scan_from, '\n', end_ - scan_from);
    if (nl != nullptr) {
      const std::size_t pos = static_cast<std::size_t>(static_cast<const char*>(nl) - buf_.data());
      std::size_t len = pos - begin_;
      if (len > 0 && buf_[begin_ + len - 1] == '\r') --len;
      line = std::string_view(buf_.data() + begin_, len);
      bytes_consumed_ += pos + 1 - begin_;
      begin_ = pos + 1;
      ++line_no_;
      return true;
    }
    const std::size_t scanned = end_ - begin_;
    if (scanned > max_line_bytes_) return skip_rest_of_line(line);
    if (!fill()) {
      if (begin_ == end_) return false;
      // The last line has no newline.
      std::size_t len = end_ - begin_;
      if (len > 0 && buf_[begin_ + len - 1] == '\r') --len;
      line = std::string_view(buf_.data() + begin_, len);
      bytes_consumed_ += end_ - begin_;
      begin_ = end_;
      ++line_no_;
      return true;
    }
    scan_from = begin_ + scanned;  // fill() moved the unconsumed bytes to the front
  }
}

std::string_view LineReader::prefix(std::size_t max_bytes) {
  while (end_ - begin_ < max_bytes && fill()) {
  }
  return std::string_view(buf_.data() + begin_, std::min(max_bytes, end_ - begin_));
}

// ---- CustomIdSet --------------------------------------------------------------------------

std::uint64_t CustomIdSet::hash(std::string_view id) noexcept {
  // FNV-1a followed by a strong 64-bit finaliser (splitmix64).
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : id) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h == 0 ? 1 : h;
}

bool CustomIdSet::insert_hash(std::uint64_t h) {
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    if (slots_[i] == h) return false;
    if (slots_[i] == 0) {
      slots_[i] = h;
      ++size_;
      return true;
    }
  }
}

bool CustomIdSet::insert(std::string_view id) {
  if (slots_.empty() || (size_ + 1) * 10 > slots_.size() * 7) {
    std::vector<std::uint64_t> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : old.size() * 2, 0);
    size_ = 0;
    for (std::uint64_t h : old) {
      if (h != 0) insert_hash(h);
    }
  }
  return insert_hash(hash(id));
}

bool CustomIdSet::contains(std::string_view id) const noexcept {
  if (slots_.empty()) return false;
  const std::uint64_t h = hash(id);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    if (slots_[i] == h) return true;
    if (slots_[i] == 0) return false;
  }
}

// ---- output -------------------------------------------------------------------------------

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  // Bytes that need no escape go in runs (one append each), not one push_back per byte.
  std::size_t run = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default: {
        const char escape[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(escape, sizeof escape);
      }
    }
  }
  out.append(text.data() + run, text.size() - run);
  out.push_back('"');
}

void append_output_line(std::string& out, const Outcome& o) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "{\"id\":\"batch_req_";
  std::uint64_t h = CustomIdSet::hash(o.custom_id.empty() ? std::string_view("#") : std::string_view(o.custom_id)) ^ o.line_no;
  char id[16];
  for (char& digit : id) {
    digit = kHex[h >> 60];
    h <<= 4;
  }
  out.append(id, sizeof id);
  out += "\",\"custom_id\":";
  if (o.custom_id.empty()) {
    out += "null";
  } else {
    append_json_string(out, o.custom_id);
  }
  out += ",\"response\":";
  if (o.status_code > 0) {
    out += "{\"status_code\":";
    out += std::to_string(o.status_code);
    out += ",\"request_id\":";
    append_json_string(out, o.request_id);
    out += ",\"body\":";
    if (o.body.empty()) {
      out += "null";
    } else {
      out += o.body;
    }
    out += '}';
  } else {
    out += "null";
  }
  out += ",\"error\":";
  if (o.ok()) {
    out += "null";
  } else {
    out += "{\"code\":";
    append_json_string(out, to_string(o.error));
    out += ",\"message\":";
    append_json_string(out, o.error_message);
    out += ",\"attempts\":";
    out += std::to_string(o.attempts);
    out += ",\"line\":";
    out += std::to_string(o.line_no);
    out += '}';
  }
  out += "}\n";
}

std::string format_output_line(const Outcome& outcome) {
  std::string out;
  out.reserve(outcome.body.size() + 256);
  append_output_line(out, outcome);
  return out;
}

std::optional<OutputLineInfo> read_output_line(std::string_view line) {
  Scratch& s = scratch();
  auto padded = s.pad(line);
  od::document doc;
  if (s.parser.iterate(padded).get(doc)) return std::nullopt;
  od::object obj;
  if (doc.get_object().get(obj)) return std::nullopt;
  OutputLineInfo info;
  bool has_id = false;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return std::nullopt;
    od::value value;
    if (field.value().get(value)) return std::nullopt;
    if (key == "custom_id") {
      std::string_view id;
      if (value.is_null()) {
        has_id = true;  // an invalid input line without an id
        continue;
      }
      if (value.get_string().get(id)) return std::nullopt;
      info.custom_id = std::string(id);
      has_id = true;
    } else if (key == "response") {
      if (value.is_null()) continue;
      od::object resp;
      if (value.get_object().get(resp)) return std::nullopt;
      for (auto rf : resp) {
        std::string_view rkey;
        if (rf.unescaped_key().get(rkey)) return std::nullopt;
        if (rkey == "status_code") {
          std::int64_t code = 0;
          if (rf.value().get_int64().get(code)) return std::nullopt;
          info.status_code = static_cast<int>(code);
        }
      }
    } else if (key == "error") {
      if (value.is_null()) continue;
      od::object err;
      if (value.get_object().get(err)) return std::nullopt;
      for (auto ef : err) {
        std::string_view ekey;
        if (ef.unescaped_key().get(ekey)) return std::nullopt;
        if (ekey == "code") {
          std::string_view code;
          if (ef.value().get_string().get(code)) return std::nullopt;
          info.error = error_kind_from_string(code).value_or(ErrorKind::http_other);
        } else if (ekey == "line") {
          std::uint64_t n = 0;
          if (ef.value().get_uint64().get(n)) return std::nullopt;
          info.line_no = n;
        }
      }
    }
  }
  if (!has_id) return std::nullopt;
  return info;
}

}  // namespace floodgate
