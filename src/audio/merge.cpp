#include "floodgate/audio/merge.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

#include "floodgate/core/text.hpp"

namespace floodgate::audio {

std::optional<ResponseFormat> response_format_from_string(std::string_view name) noexcept {
  if (name == "json") return ResponseFormat::json;
  if (name == "text") return ResponseFormat::text;
  if (name == "srt") return ResponseFormat::srt;
  if (name == "vtt") return ResponseFormat::vtt;
  if (name == "verbose_json") return ResponseFormat::verbose_json;
  return std::nullopt;
}

std::string_view to_string(ResponseFormat format) noexcept {
  switch (format) {
    case ResponseFormat::json: return "json";
    case ResponseFormat::text: return "text";
    case ResponseFormat::srt: return "srt";
    case ResponseFormat::vtt: return "vtt";
    case ResponseFormat::verbose_json: return "verbose_json";
  }
  return "json";
}

std::string_view transcript_extension(ResponseFormat format) noexcept {
  switch (format) {
    case ResponseFormat::text: return ".txt";
    case ResponseFormat::srt: return ".srt";
    case ResponseFormat::vtt: return ".vtt";
    case ResponseFormat::json:
    case ResponseFormat::verbose_json: return ".json";
  }
  return ".json";
}

std::string format_timestamp(Seconds t, char decimal_separator) {
  long long ms = std::llround(std::max(0.0, t.count()) * 1000.0);
  const long long h = ms / 3'600'000;
  ms %= 3'600'000;
  const long long m = ms / 60'000;
  ms %= 60'000;
  const long long s = ms / 1000;
  ms %= 1000;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld%c%03lld", h, m, s, decimal_separator, ms);
  return buf;
}

std::optional<Seconds> parse_timestamp(std::string_view text) noexcept {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) text.remove_suffix(1);
  std::vector<std::string_view> parts;
  std::size_t pos = 0;
  while (true) {
    const auto colon = text.find(':', pos);
    parts.push_back(text.substr(pos, colon == std::string_view::npos ? std::string_view::npos : colon - pos));
    if (colon == std::string_view::npos) break;
    pos = colon + 1;
  }
  if (parts.size() < 2 || parts.size() > 3) return std::nullopt;
  auto parse_int = [](std::string_view s, long long& out) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p == s.data() + s.size() && out >= 0;
  };
  long long h = 0;
  long long m = 0;
  if (parts.size() == 3 && !parse_int(parts[0], h)) return std::nullopt;
  if (!parse_int(parts[parts.size() - 2], m) || m >= 60) return std::nullopt;
  std::string_view sec = parts.back();
  const auto dot = sec.find_first_of(",.");
  long long s = 0;
  if (!parse_int(sec.substr(0, dot), s) || s >= 60) return std::nullopt;
  double frac = 0;
  if (dot != std::string_view::npos) {
    const std::string_view f = sec.substr(dot + 1);
    long long digits = 0;
    if (f.empty() || f.size() > 9 || !parse_int(f, digits)) return std::nullopt;
    frac = static_cast<double>(digits) / std::pow(10.0, static_cast<double>(f.size()));
  }
  return Seconds(static_cast<double>(h) * 3600 + static_cast<double>(m) * 60 + static_cast<double>(s) + frac);
}

namespace {

struct Cue {
  double start = 0;
  double end = 0;
  std::string text;
};

std::string trimmed(std::string_view s) { return std::string(trim(s)); }

std::vector<std::string_view> lines_of(std::string_view body) {
  std::vector<std::string_view> lines;
  std::size_t pos = 0;
  while (pos <= body.size()) {
    auto nl = body.find('\n', pos);
    if (nl == std::string_view::npos) nl = body.size();
    std::string_view line = body.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    pos = nl + 1;
  }
  return lines;
}

// Parses SRT or WebVTT cues. Returns nullopt when a timing line is malformed, or when the
// body has text but no cue at all.
std::optional<std::vector<Cue>> parse_cues(std::string_view body, bool vtt) {
  std::vector<Cue> cues;
  const auto lines = lines_of(body);
  std::size_t i = 0;
  if (vtt) {
    if (lines.empty() || trim(lines[0]).rfind("WEBVTT", 0) != 0) return std::nullopt;
    while (i < lines.size() && !trim(lines[i]).empty()) ++i;  // header block
  }
  while (i < lines.size()) {
    if (trim(lines[i]).empty()) {
      ++i;
      continue;
    }
    // A block: [identifier]\n timing \n text...
    std::size_t j = i;
    if (lines[j].find("-->") == std::string_view::npos) {
      const std::string first = trimmed(lines[j]);
      if (vtt && (first.rfind("NOTE", 0) == 0 || first.rfind("STYLE", 0) == 0 || first.rfind("REGION", 0) == 0)) {
        while (i < lines.size() && !trim(lines[i]).empty()) ++i;
        continue;
      }
      ++j;  // identifier / sequence number
    }
    if (j >= lines.size() || lines[j].find("-->") == std::string_view::npos) return std::nullopt;
    const std::string_view timing = lines[j];
    const auto arrow = timing.find("-->");
    std::string_view end_part = timing.substr(arrow + 3);
    while (!end_part.empty() && end_part.front() == ' ') end_part.remove_prefix(1);
    const auto space = end_part.find_first_of(" \t");  // VTT cue settings follow the end time
    const auto start = parse_timestamp(timing.substr(0, arrow));
    const auto end = parse_timestamp(end_part.substr(0, space));
    if (!start || !end) return std::nullopt;
    Cue cue{start->count(), end->count(), {}};
    std::size_t k = j + 1;
    for (; k < lines.size() && !trim(lines[k]).empty(); ++k) {
      if (!cue.text.empty()) cue.text += '\n';
      cue.text += trim(lines[k]);
    }
    cues.push_back(std::move(cue));
    i = k;
  }
  return cues;
}

void append_joined(std::string& out, std::string_view piece) {
  const std::string t = trimmed(piece);
  if (t.empty()) return;
  if (!out.empty()) out += ' ';
  out += t;
}

// Clamps [start, end] to [0, total] and after `floor`; returns the new end.
void clamp_monotonic(double& start, double& end, double total, double& floor) {
  start = std::clamp(start, 0.0, total);
  end = std::clamp(end, 0.0, total);
  start = std::max(start, floor);
  end = std::max(end, start);
  floor = end;
}

AudioError chunk_error(std::size_t index, std::string_view what) {
  return AudioError{AudioErrc::corrupt, "chunk " + std::to_string(index) + ": " + std::string(what)};
}

AudioResult<std::string> merge_cues(std::span<const ChunkTranscript> chunks, double total, bool vtt) {
  std::string out = vtt ? "WEBVTT\n\n" : "";
  double floor = 0;
  std::size_t n = 0;
  for (std::size_t c = 0; c < chunks.size(); ++c) {
    auto cues = parse_cues(chunks[c].body, vtt);
    if (!cues) return chunk_error(c, vtt ? "not valid WebVTT" : "not valid SRT");
    for (Cue& cue : *cues) {
      double start = cue.start + chunks[c].offset.count();
      double end = cue.end + chunks[c].offset.count();
      clamp_monotonic(start, end, total, floor);
      ++n;
      if (!vtt) out += std::to_string(n) + '\n';
      const char sep = vtt ? '.' : ',';
      out += format_timestamp(Seconds(start), sep) + " --> " + format_timestamp(Seconds(end), sep) + '\n';
      out += cue.text + "\n\n";
    }
  }
  return out;
}

void add_usage(nlohmann::json& total, const nlohmann::json& usage) {
  if (!usage.is_object()) return;
  if (!total.is_object()) total = nlohmann::json::object();
  for (const auto& [key, value] : usage.items()) {
    if (value.is_number_integer() && (!total.contains(key) || total[key].is_number_integer())) {
      total[key] = total.value(key, std::int64_t{0}) + value.get<std::int64_t>();
    } else if (value.is_number() && (!total.contains(key) || total[key].is_number())) {
      total[key] = total.value(key, 0.0) + value.get<double>();
    } else if (!total.contains(key)) {
      total[key] = value;
    }
  }
}

AudioResult<std::string> merge_json(std::span<const ChunkTranscript> chunks, double total, bool verbose) {
  std::string text;
  nlohmann::json segments = nlohmann::json::array();
  nlohmann::json words = nlohmann::json::array();
  nlohmann::json usage;
  nlohmann::json first;
  bool have_words = false;
  double seg_floor = 0;
  double word_floor = 0;
  for (std::size_t c = 0; c < chunks.size(); ++c) {
    nlohmann::json doc = nlohmann::json::parse(chunks[c].body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return chunk_error(c, "the response is not a JSON object");
    const auto text_it = doc.find("text");
    if (text_it == doc.end() || !text_it->is_string()) return chunk_error(c, "the response has no \"text\"");
    append_joined(text, text_it->get<std::string>());
    if (doc.contains("usage")) add_usage(usage, doc["usage"]);
    if (!verbose) continue;
    const double off = chunks[c].offset.count();
    if (first.is_null()) first = doc;
    if (first.value("language", std::string()).empty() && doc.contains("language")) first["language"] = doc["language"];
    if (auto it = doc.find("segments"); it != doc.end() && it->is_array()) {
      for (auto seg : *it) {
        if (!seg.is_object()) return chunk_error(c, "a segment is not an object");
        double start = seg.value("start", 0.0) + off;
        double end = seg.value("end", 0.0) + off;
        clamp_monotonic(start, end, total, seg_floor);
        seg["start"] = start;
        seg["end"] = end;
        seg["id"] = segments.size();
        if (seg.contains("seek") && seg["seek"].is_number()) {
          // Chunk 0 may start a little before 0 (codec priming): seek counts frames from the
          // file's start and is never negative.
          seg["seek"] = std::max<std::int64_t>(0, seg["seek"].get<std::int64_t>() + std::llround(off * 100.0));
        }
        segments.push_back(std::move(seg));
      }
    }
    if (auto it = doc.find("words"); it != doc.end() && it->is_array()) {
      have_words = true;
      for (auto word : *it) {
        if (!word.is_object()) return chunk_error(c, "a word is not an object");
        double start = word.value("start", 0.0) + off;
        double end = word.value("end", 0.0) + off;
        clamp_monotonic(start, end, total, word_floor);
        word["start"] = start;
        word["end"] = end;
        words.push_back(std::move(word));
      }
    }
  }
  nlohmann::json out = verbose && first.is_object() ? first : nlohmann::json::object();
  out["text"] = text;
  if (verbose) {
    if (!out.contains("task")) out["task"] = "transcribe";
    out["duration"] = total;
    out["segments"] = std::move(segments);
    if (have_words) {
      out["words"] = std::move(words);
    } else {
      out.erase("words");
    }
  }
  if (!usage.is_null()) {
    out["usage"] = usage;
  } else {
    out.erase("usage");
  }
  return out.dump();
}

}  // namespace

AudioResult<std::string> merge_transcripts(ResponseFormat format, std::span<const ChunkTranscript> chunks,
                                           Seconds total_duration) {
  const double total = std::max(0.0, total_duration.count());
  switch (format) {
    case ResponseFormat::text: {
      std::string out;
      for (const auto& c : chunks) append_joined(out, c.body);
      return out + "\n";
    }
    case ResponseFormat::srt: return merge_cues(chunks, total, false);
    case ResponseFormat::vtt: return merge_cues(chunks, total, true);
    case ResponseFormat::json: return merge_json(chunks, total, false);
    case ResponseFormat::verbose_json: return merge_json(chunks, total, true);
  }
  return AudioError{AudioErrc::internal, "unknown response format"};
}

std::string transcript_text(ResponseFormat format, std::string_view body) {
  switch (format) {
    case ResponseFormat::text: return trimmed(body);
    case ResponseFormat::json:
    case ResponseFormat::verbose_json: {
      const nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
      if (doc.is_object() && doc.contains("text") && doc["text"].is_string()) return trimmed(doc["text"].get<std::string>());
      return {};
    }
    case ResponseFormat::srt:
    case ResponseFormat::vtt: {
      const auto cues = parse_cues(body, format == ResponseFormat::vtt);
      std::string out;
      if (!cues) return out;
      for (const Cue& c : *cues) {
        std::string t = c.text;
        std::replace(t.begin(), t.end(), '\n', ' ');
        append_joined(out, t);
      }
      return out;
    }
  }
  return {};
}

std::string prompt_tail(std::string_view text, std::size_t max_chars) {
  std::string t = trimmed(text);
  if (t.size() <= max_chars) return t;
  std::size_t start = t.size() - max_chars;
  // Do not start inside a UTF-8 sequence, then move to the next word.
  while (start < t.size() && (static_cast<unsigned char>(t[start]) & 0xC0) == 0x80) ++start;
  const auto space = t.find(' ', start);
  if (space != std::string::npos && space + 1 < t.size()) start = space + 1;
  return t.substr(start);
}

}  // namespace floodgate::audio
