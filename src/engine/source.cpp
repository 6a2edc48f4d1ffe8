#include "floodgate/engine/source.hpp"

#include <string_view>
#include <utility>

#include "floodgate/core/error.hpp"
#include "hex.hpp"

namespace floodgate::engine {

std::string hex64(std::uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i) {
    s[static_cast<std::size_t>(i)] = kHex[v & 0xF];
    v >>= 4;
  }
  return s;
}

std::string too_large_reason(const std::string& what, std::uint64_t bytes) {
  return what + " is " + std::to_string(bytes) + " bytes, more than the API accepts in one request (" +
         std::to_string(kMaxRequestBytes) + " bytes, 25 MiB): not sent";
}

std::string input_item_key(const ParsedLine& p, std::uint64_t line_no, CustomIdSet& ids) {
  const std::string& id = p.request ? p.request->custom_id : p.custom_id;
  if (!id.empty() && ids.insert(id)) return id;
  return "@line:" + std::to_string(line_no);
}

namespace {

// The journal's identity is taken from the first 64 KiB of the input (docs/engine.md).
constexpr std::size_t kIdentityPrefixBytes = kJsonlIdentityBytes / 2;
// An input line longer than the largest request plus room for the Batch API wrapper is
// never read whole.
constexpr std::size_t kMaxLineBytes = kMaxRequestBytes + (64u << 10);
// At most this many of the first lines' fingerprints are kept in the journal.
constexpr std::size_t kFingerprintLines = 256;

// The first lines say whether the input can be a job at all: an empty input, a file that
// is not JSONL (a binary file, a table without --template) or bare request bodies without
// --endpoint stop here with exit 2, instead of writing an error line for every line.
void check_input_start(std::string_view prefix, const std::string& name, const InputOptions& options) {
  static constexpr std::size_t kSniffLines = 32;
  const bool whole_input = prefix.size() < kIdentityPrefixBytes;
  std::size_t pos = 0;
  std::uint64_t line_no = 0;
  std::size_t seen = 0;
  std::size_t not_json = 0;
  std::string first_not_json;
  while (pos < prefix.size() && seen < kSniffLines) {
    const std::size_t nl = prefix.find('\n', pos);
    if (nl == std::string_view::npos && !whole_input) {
      // A line longer than the prefix: only its first byte can be judged here.
      const std::size_t first = prefix.find_first_not_of(" \t\r", pos);
      if (seen == 0 && first != std::string_view::npos && prefix[first] != '{') {
        throw Error(name + " is not JSONL (one JSON request per line): line 1 does not start with '{'");
      }
      break;
    }
    std::string_view line = prefix.substr(pos, (nl == std::string_view::npos ? prefix.size() : nl) - pos);
    pos = nl == std::string_view::npos ? prefix.size() : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (is_blank_line(line)) continue;
    ++seen;
    const ParsedLine p = parse_input_line(line, line_no, options);
    if (p.not_json) {
      ++not_json;
      if (first_not_json.empty()) first_not_json = p.error_message;
      // A first line that is not even the start of a JSON object: not JSONL at all.
      const std::size_t first = line.find_first_not_of(" \t");
      if (seen == 1 && line[first] != '{') {
        throw Error(name + " is not JSONL (one JSON request per line): " + p.error_message);
      }
    }
    if (seen == 1 && p.bare_body) {
      const auto guess = guess_endpoint(line);
      throw Error(name + " holds bare request bodies (line " + std::to_string(line_no) +
                  " has no custom_id, url or body): say where they go with --endpoint" +
                  (guess ? " (its fields suggest --endpoint " + std::string(endpoint_path(*guess)) + ")"
                         : std::string(", e.g. --endpoint /v1/chat/completions")) +
                  ", or write Batch API lines {\"custom_id\",\"method\",\"url\",\"body\"}");
    }
  }
  if (seen == 0 && whole_input) throw Error(name + " is empty: it has no request lines (one JSON request per line)");
  // Most of the first lines not JSON (three in four, and more than one): a file of another
  // kind. Fewer are broken lines of a JSONL file, each an invalid_input line.
  if (not_json >= 2 && not_json * 4 >= seen * 3) {
    throw Error(name + " is not JSONL (one JSON request per line): " + std::to_string(not_json) + " of its first " + std::to_string(seen) +
                " lines are not JSON; the first: " + first_not_json);
  }
}

// The key and a hash of the bytes of each whole line of `text` (a line cut by its end is
// not compared); those ending in the first 64 KiB, up to kFingerprintLines, are recorded.
std::vector<LineFingerprint> fingerprint_lines(std::string_view text, const InputOptions& options) {
  std::vector<LineFingerprint> out;
  CustomIdSet ids;
  std::size_t pos = 0;
  std::uint64_t line_no = 0;
  while (pos < text.size()) {
    const std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) break;  // a line cut by the prefix's end (or the last): not compared
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (is_blank_line(line)) continue;
    const bool recorded = pos <= kIdentityPrefixBytes && out.size() < kFingerprintLines &&
                          (out.empty() || out.back().recorded);
    out.push_back(LineFingerprint{input_item_key(parse_input_line(line, line_no, options), line_no, ids), CustomIdSet::hash(line), recorded});
  }
  return out;
}

class JsonlFileSource final : public RequestSource {
 public:
  // `check`: judge the first lines (not when reopened: they were judged at the start).
  JsonlFileSource(const std::string& path, const InputOptions& options, bool check)
      : path_(path),
        name_(path == "-" ? std::string("the input (stdin)") : "the input \"" + path + "\""),
        options_(options),
        reader_(path) {
    reader_.set_max_line_bytes(kMaxLineBytes);
    if (check) check_input_start(reader_.prefix(kIdentityPrefixBytes), name_, options_);
  }

  SourceIdentity identity() override {
    SourceIdentity id = jsonl_identity(reader_.prefix(kJsonlIdentityBytes), options_);
    id.name = name_;
    id.path = path_;
    return id;
  }

  SourceStatus next(SourceItem& item) override {
    std::string_view line;
    for (;;) {
      if (!reader_.next(line)) return SourceStatus::end;
      item.line_no = reader_.line_no();
      item.skipped_bytes = reader_.skipped_bytes();
      item.payload.reset();
      if (item.skipped_bytes > 0) {
        // Too long to be a request the API accepts: skipped while reading, never held.
        item.parsed = ParsedLine{};
        return SourceStatus::item;
      }
      if (is_blank_line(line)) continue;
      item.parsed = parse_input_line(line, item.line_no, options_);
      return SourceStatus::item;
    }
  }

  std::optional<double> fraction_read() const noexcept override {
    if (reader_.size_bytes() == 0) return std::nullopt;
    return static_cast<double>(reader_.bytes_read()) / static_cast<double>(reader_.size_bytes());
  }

  std::unique_ptr<RequestSource> reopen() const override {
    if (path_ == "-") return nullptr;
    return std::make_unique<JsonlFileSource>(path_, options_, false);
  }

 private:
  std::string path_;
  std::string name_;
  InputOptions options_;
  LineReader reader_;
};

}  // namespace

SourceIdentity jsonl_identity(std::string_view first_bytes, const InputOptions& options) {
  // Which input a journal belongs to (docs/engine.md): its endpoint setting, and the key
  // and bytes of the input's first lines. Journals of floodgate before this rule hold a
  // hash of the first 64 KiB instead ("v1"), still accepted as before.
  const std::string endpoint_setting =
      options.default_endpoint ? std::string(endpoint_path(*options.default_endpoint)) : std::string("-");
  SourceIdentity id;
  id.tag = "v2:" + hex64(CustomIdSet::hash("endpoint=" + endpoint_setting));
  id.legacy_tag = "v1:" + hex64(CustomIdSet::hash(std::string(first_bytes.substr(0, kIdentityPrefixBytes)) + "|endpoint=" + endpoint_setting));
  id.first_lines = fingerprint_lines(first_bytes.substr(0, kJsonlIdentityBytes), options);
  return id;
}

std::string batch_input_line(std::string_view custom_id, std::string_view url, std::string_view body) {
  std::string line;
  line.reserve(body.size() + custom_id.size() + url.size() + 48);
  line += "{\"custom_id\":";
  append_json_string(line, custom_id);
  line += ",\"method\":\"POST\",\"url\":";
  append_json_string(line, url);
  line += ",\"body\":";
  line += body;
  line += '}';
  return line;
}

std::unique_ptr<RequestSource> open_jsonl_source(const std::string& path, const InputOptions& options) {
  return std::make_unique<JsonlFileSource>(path, options, true);
}

}  // namespace floodgate::engine
