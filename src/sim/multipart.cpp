#include "floodgate/sim/multipart.hpp"

#include <algorithm>
#include <cctype>

#include "floodgate/core/text.hpp"

namespace floodgate::sim {
namespace {

// Reads `;`-separated parameters (key=value or key="quoted value") after the first token.
// Calls f(key, value) for each.
template <typename F>
void for_each_param(std::string_view value, F&& f) {
  std::size_t i = value.find(';');
  while (i != std::string_view::npos && i < value.size()) {
    ++i;
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    const std::size_t eq = value.find('=', i);
    if (eq == std::string_view::npos) return;
    const std::string_view key = trim(value.substr(i, eq - i));
    std::size_t j = eq + 1;
    std::string val;
    if (j < value.size() && value[j] == '"') {
      ++j;
      while (j < value.size() && value[j] != '"') {
        if (value[j] == '\\' && j + 1 < value.size()) ++j;
        val.push_back(value[j]);
        ++j;
      }
      if (j < value.size()) ++j;  // closing quote
      i = value.find(';', j);
    } else {
      const std::size_t end = value.find(';', j);
      val = std::string(trim(value.substr(j, end == std::string_view::npos ? std::string_view::npos : end - j)));
      i = end;
    }
    f(key, val);
  }
}

}  // namespace

std::optional<std::string> MultipartParser::boundary_from_content_type(std::string_view content_type) {
  const std::size_t semi = content_type.find(';');
  if (!iequals(trim(content_type.substr(0, semi)), "multipart/form-data")) return std::nullopt;
  std::optional<std::string> boundary;
  for_each_param(content_type, [&](std::string_view key, const std::string& value) {
    if (iequals(key, "boundary") && !value.empty() && value.size() <= kMaxBoundaryBytes) boundary = value;
  });
  return boundary;
}

MultipartParser::MultipartParser(std::string boundary, MultipartHandler& handler)
    : delimiter_("\r\n--" + boundary), handler_(handler) {
  // The first delimiter may open the body without a preceding CRLF: pretend there was one.
  buffer_ = "\r\n";
}

bool MultipartParser::fail(std::string message) {
  state_ = State::failed;
  error_ = std::move(message);
  buffer_.clear();
  pos_ = 0;
  return false;
}

bool MultipartParser::parse_headers(std::string_view block) {
  PartHeaders headers;
  bool has_disposition = false;
  while (!block.empty()) {
    const std::size_t eol = block.find("\r\n");
    const std::string_view line = block.substr(0, eol);
    block = eol == std::string_view::npos ? std::string_view{} : block.substr(eol + 2);
    if (line.empty()) continue;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return fail("malformed part header");
    const std::string_view key = trim(line.substr(0, colon));
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(key, "content-disposition")) {
      const std::size_t semi = value.find(';');
      if (!iequals(trim(value.substr(0, semi)), "form-data")) return fail("part is not form-data");
      has_disposition = true;
      for_each_param(value, [&](std::string_view k, const std::string& v) {
        if (iequals(k, "name")) headers.name = v;
        if (iequals(k, "filename")) {
          headers.filename = v;
          headers.has_filename = true;
        }
      });
    } else if (iequals(key, "content-type")) {
      headers.content_type = std::string(value);
    }
  }
  if (!has_disposition) return fail("part without Content-Disposition");
  in_part_ = true;
  handler_.on_part_begin(headers);
  return true;
}

// Makes one step of progress on buffer_[pos_..]; returns false when more input is needed.
bool MultipartParser::step() {
  const std::string_view data = std::string_view(buffer_).substr(pos_);
  switch (state_) {
    case State::preamble: {
      const std::size_t at = data.find(delimiter_);
      if (at == std::string_view::npos) {
        // Keep only what could still be the start of a delimiter.
        if (data.size() >= delimiter_.size()) pos_ += data.size() - (delimiter_.size() - 1);
        return false;
      }
      pos_ += at + delimiter_.size();
      state_ = State::after_delimiter;
      return true;
    }
    case State::after_delimiter: {
      if (data.size() < 2) return false;
      if (data.substr(0, 2) == "--") {
        pos_ += 2;
        state_ = State::epilogue;
        return true;
      }
      // Transport padding (spaces/tabs) may follow a delimiter before its CRLF.
      std::size_t i = 0;
      while (i < data.size() && (data[i] == ' ' || data[i] == '\t')) ++i;
      if (i > 256) return fail("malformed delimiter line");
      if (data.size() < i + 2) return false;
      if (data.substr(i, 2) != "\r\n") return fail("malformed delimiter line");
      pos_ += i + 2;
      state_ = State::headers;
      return true;
    }
    case State::headers: {
      if (data.substr(0, 2) == "\r\n") {  // a part with no header lines at all
        pos_ += 2;
        return parse_headers({}) && ((state_ = State::body), true);
      }
      const std::size_t end = data.find("\r\n\r\n");
      if (end == std::string_view::npos) {
        if (data.size() > kMaxHeaderBytes) return fail("part headers too large");
        return false;
      }
      if (end > kMaxHeaderBytes) return fail("part headers too large");
      const std::string block(data.substr(0, end));
      pos_ += end + 4;
      if (!parse_headers(block)) return false;
      state_ = State::body;
      return true;
    }
    case State::body: {
      const std::size_t at = data.find(delimiter_);
      if (at == std::string_view::npos) {
        if (data.size() >= delimiter_.size()) {
          const std::size_t safe = data.size() - (delimiter_.size() - 1);
          handler_.on_part_data(data.substr(0, safe));
          pos_ += safe;
        }
        return false;
      }
      if (at > 0) handler_.on_part_data(data.substr(0, at));
      handler_.on_part_end();
      in_part_ = false;
      pos_ += at + delimiter_.size();
      state_ = State::after_delimiter;
      return true;
    }
    case State::epilogue:
      pos_ = buffer_.size();  // anything after the closing delimiter is ignored
      return false;
    case State::failed:
      return false;
  }
  return false;
}

bool MultipartParser::feed(std::string_view chunk) {
  if (state_ == State::failed) return false;
  if (state_ == State::epilogue) return true;
  buffer_.append(chunk);
  while (step()) {
  }
  if (state_ == State::failed) return false;
  // Drop the consumed prefix so the buffer stays small.
  if (pos_ > 0) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  return true;
}

bool MultipartParser::finish() {
  if (state_ == State::failed) return false;
  if (state_ != State::epilogue) return fail(in_part_ ? "body ended inside a part" : "body ended before the closing delimiter");
  return true;
}

}  // namespace floodgate::sim
