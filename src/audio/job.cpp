#include "floodgate/audio/job.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>

#include <nlohmann/json.hpp>

#include "floodgate/core/text.hpp"
#include "floodgate/core/error.hpp"

namespace floodgate::audio {

namespace {

using nlohmann::json;

TranscribeOptions options_from_line(const json& obj, TranscribeOptions o, const std::string& where) {
  auto str = [&](const char* key, std::string& out) {
    if (auto it = obj.find(key); it != obj.end()) {
      if (!it->is_string()) throw Error(where + ": \"" + key + "\" must be a string");
      out = it->get<std::string>();
    }
  };
  str("model", o.model);
  str("language", o.language);
  str("prompt", o.prompt);
  if (auto it = obj.find("response_format"); it != obj.end()) {
    const auto f = it->is_string() ? response_format_from_string(it->get<std::string>()) : std::nullopt;
    if (!f) throw Error(where + ": \"response_format\" must be one of json, text, srt, vtt, verbose_json");
    o.response_format = *f;
  }
  if (auto it = obj.find("temperature"); it != obj.end()) {
    if (!it->is_number()) throw Error(where + ": \"temperature\" must be a number");
    o.temperature = it->get<double>();
  }
  if (auto it = obj.find("timestamp_granularities"); it != obj.end()) {
    if (!it->is_array()) throw Error(where + ": \"timestamp_granularities\" must be an array of strings");
    o.timestamp_granularities.clear();
    for (const auto& g : *it) {
      if (!g.is_string()) throw Error(where + ": \"timestamp_granularities\" must be an array of strings");
      o.timestamp_granularities.push_back(g.get<std::string>());
    }
  }
  for (const auto& [key, value] : obj.items()) {
    static constexpr std::string_view kKnown[] = {"file", "model", "language", "prompt", "response_format",
                                                  "temperature", "timestamp_granularities"};
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown)) {
      throw Error(where + ": unknown key \"" + key + "\"");
    }
  }
  return o;
}

void read_list(const std::filesystem::path& list, const TranscribeOptions& defaults, std::vector<InputFile>& out) {
  std::ifstream in(list);
  if (!in) throw Error("cannot read the list " + list.string());
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = list.string() + ":" + std::to_string(line_no);
    const json obj = json::parse(line, nullptr, false);
    InputFile f;
    f.list_line = line_no;
    if (obj.is_string()) {
      f.path = obj.get<std::string>();
      f.options = defaults;
    } else if (obj.is_object() && obj.contains("file") && obj["file"].is_string()) {
      f.path = obj["file"].get<std::string>();
      f.options = options_from_line(obj, defaults, where);
    } else {
      throw Error(where + ": expected {\"file\": \"path\", ...} or a JSON string");
    }
    if (f.path.is_relative()) f.path = list.parent_path() / f.path;
    out.push_back(std::move(f));
  }
}

std::string csv_field(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

}  // namespace

bool is_audio_extension(std::string_view extension) noexcept {
  static constexpr std::string_view kExtensions[] = {".flac", ".m4a", ".mp3", ".mp4", ".mpeg", ".mpga",
                                                     ".oga",  ".ogg", ".wav", ".webm", ".opus"};
  std::string e(extension);
  for (char& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::find(std::begin(kExtensions), std::end(kExtensions), e) != std::end(kExtensions);
}

std::vector<InputFile> expand_inputs(std::span<const std::string> paths, const TranscribeOptions& defaults) {
  std::vector<InputFile> out;
  for (const std::string& arg : paths) {
    const std::filesystem::path p(arg);
    std::error_code ec;
    const auto st = std::filesystem::status(p, ec);
    if (ec || !std::filesystem::exists(st)) throw Error("no such file or folder: " + arg);
    if (std::filesystem::is_directory(st)) {
      std::vector<std::filesystem::path> found;
      for (auto it = std::filesystem::recursive_directory_iterator(
               p, std::filesystem::directory_options::skip_permission_denied, ec);
           !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        const auto name = it->path().filename().string();
        if (!name.empty() && name[0] == '.') {  // hidden files and folders (our own state)
          if (it->is_directory(ec)) it.disable_recursion_pending();
          continue;
        }
        if (it->is_regular_file(ec) && is_audio_extension(it->path().extension().string())) found.push_back(it->path());
      }
      std::sort(found.begin(), found.end());
      for (auto& f : found) out.push_back(InputFile{std::move(f), defaults, 0});
    } else if (iequals(p.extension().string(), ".jsonl")) {
      read_list(p, defaults, out);
    } else {
      out.push_back(InputFile{p, defaults, 0});
    }
  }
  return out;
}

ResponseFormat api_format(ResponseFormat wanted) noexcept {
  switch (wanted) {
    case ResponseFormat::json:
    case ResponseFormat::text: return ResponseFormat::json;
    case ResponseFormat::srt:
    case ResponseFormat::vtt:
    case ResponseFormat::verbose_json: return ResponseFormat::verbose_json;
  }
  return ResponseFormat::json;
}

std::string request_body(const TranscribeOptions& options, const std::filesystem::path& file,
                         const std::optional<std::string>& prompt) {
  json body = json::object();
  body["model"] = options.model;
  body["file"] = file.string();
  body["response_format"] = std::string(to_string(api_format(options.response_format)));
  if (!options.language.empty()) body["language"] = options.language;
  const std::string& p = prompt ? *prompt : options.prompt;
  if (!p.empty()) body["prompt"] = p;
  if (options.temperature) body["temperature"] = *options.temperature;
  if (!options.timestamp_granularities.empty()) body["timestamp_granularities"] = options.timestamp_granularities;
  return body.dump();
}

std::string file_key(const std::filesystem::path& path, std::uint64_t size_bytes, std::int64_t mtime_ns,
                     const TranscribeOptions& options, std::string_view split_signature) {
  std::string canon = path.string();
  canon += '\n' + std::to_string(size_bytes) + '\n' + std::to_string(mtime_ns) + '\n' + options.model + '\n' +
           options.language + '\n' + options.prompt + '\n' + std::string(to_string(options.response_format)) + '\n' +
           (options.temperature ? number(*options.temperature) : std::string("-")) + '\n';
  for (const auto& g : options.timestamp_granularities) canon += g + ',';
  canon += '\n';
  canon += split_signature;
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : canon) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

AudioResult<std::string> render_transcript(ResponseFormat wanted, std::string_view merged_api_body) {
  const json doc = json::parse(merged_api_body, nullptr, false);
  if (!doc.is_object() || !doc.contains("text") || !doc["text"].is_string()) {
    return AudioError{AudioErrc::corrupt, "the merged response is not a transcription object"};
  }
  switch (wanted) {
    case ResponseFormat::json:
    case ResponseFormat::verbose_json: return std::string(merged_api_body) + "\n";
    case ResponseFormat::text: return doc["text"].get<std::string>() + "\n";
    case ResponseFormat::srt:
    case ResponseFormat::vtt: break;
  }
  const bool vtt = wanted == ResponseFormat::vtt;
  const auto segments = doc.find("segments");
  if (segments == doc.end() || !segments->is_array()) {
    return AudioError{AudioErrc::corrupt, "the response has no segments to make subtitles from"};
  }
  std::string out = vtt ? "WEBVTT\n\n" : "";
  std::size_t n = 0;
  for (const auto& seg : *segments) {
    if (!seg.is_object()) continue;
    std::string text = seg.value("text", std::string());
    const auto a = text.find_first_not_of(" \t\r\n");
    text = a == std::string::npos ? std::string() : text.substr(a, text.find_last_not_of(" \t\r\n") - a + 1);
    ++n;
    if (!vtt) out += std::to_string(n) + "\n";
    const char sep = vtt ? '.' : ',';
    out += format_timestamp(Seconds(seg.value("start", 0.0)), sep) + " --> " +
           format_timestamp(Seconds(seg.value("end", 0.0)), sep) + "\n" + text + "\n\n";
  }
  return out;
}

std::string result_jsonl(const ResultRow& r) {
  json j = {{"filename", r.filename},
            {"duration_seconds", std::round(r.duration_seconds * 1000) / 1000},
            {"size_bytes", r.size_bytes},
            {"chunks", r.chunks},
            {"status", r.status},
            {"error", r.error.empty() ? json(nullptr) : json(r.error)},
            {"transcription_seconds", std::round(r.transcription_seconds * 1000) / 1000},
            {"transcribed_at", r.transcribed_at.empty() ? json(nullptr) : json(r.transcribed_at)},
            {"model", r.model},
            {"text", r.text.empty() ? json(nullptr) : json(r.text)},
            {"transcript", r.transcript.empty() ? json(nullptr) : json(r.transcript)},
            {"key", r.key}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string result_csv_header() {
  return "filename,duration_seconds,size_bytes,chunks,status,error,transcription_seconds,transcribed_at,model,text,"
         "transcript,key";
}

std::string result_csv(const ResultRow& r) {
  return csv_field(r.filename) + ',' + number(r.duration_seconds) + ',' + std::to_string(r.size_bytes) + ',' +
         std::to_string(r.chunks) + ',' + csv_field(r.status) + ',' + csv_field(r.error) + ',' +
         number(r.transcription_seconds) + ',' + csv_field(r.transcribed_at) + ',' + csv_field(r.model) + ',' +
         csv_field(r.text) + ',' + csv_field(r.transcript) + ',' + csv_field(r.key);
}

std::optional<ResultRow> parse_result_jsonl(std::string_view line) {
  const json j = json::parse(line, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  try {
    ResultRow r;
    auto s = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string(); };
    r.filename = s("filename");
    r.duration_seconds = j.value("duration_seconds", 0.0);
    r.size_bytes = j.value("size_bytes", std::uint64_t{0});
    r.chunks = j.value("chunks", std::size_t{0});
    r.status = s("status");
    r.error = s("error");
    r.transcription_seconds = j.value("transcription_seconds", 0.0);
    r.transcribed_at = s("transcribed_at");
    r.model = s("model");
    r.text = s("text");
    r.transcript = s("transcript");
    r.key = s("key");
    if (r.status.empty() || r.key.empty()) return std::nullopt;
    return r;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

std::string plan_to_json(const FilePlan& p) {
  json j = {{"index", p.index}};
  if (p.error) {
    j["error"] = {{"code", std::string(to_string(p.error->code))}, {"message", p.error->message}};
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  j["info"] = {{"container", p.info.container},
               {"codec", p.info.codec},
               {"duration", p.info.duration.count()},
               {"start_time", p.info.start_time.count()},
               {"size_bytes", p.info.size_bytes},
               {"sample_rate_hz", p.info.sample_rate_hz},
               {"channels", p.info.channels},
               {"bit_rate", p.info.bit_rate},
               {"stream_index", p.info.stream_index}};
  j["split"] = p.split;
  json chunks = json::array();
  for (const Chunk& c : p.chunks) {
    chunks.push_back({{"index", c.index},
                      {"path", c.path.string()},
                      {"offset", c.offset.count()},
                      {"duration", c.duration.count()},
                      {"size_bytes", c.size_bytes}});
  }
  j["chunks"] = std::move(chunks);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<FilePlan> plan_from_json(std::string_view line) {
  const json j = json::parse(line, nullptr, false);
  if (!j.is_object() || !j.contains("index")) return std::nullopt;
  try {
    FilePlan p;
    p.index = j.at("index").get<std::size_t>();
    if (j.contains("error")) {
      AudioError e;
      e.message = j["error"].value("message", std::string());
      const std::string code = j["error"].value("code", std::string());
      for (AudioErrc c : {AudioErrc::not_found, AudioErrc::unreadable, AudioErrc::empty, AudioErrc::not_audio,
                          AudioErrc::corrupt, AudioErrc::unsupported, AudioErrc::write_failed, AudioErrc::internal}) {
        if (to_string(c) == code) e.code = c;
      }
      p.error = std::move(e);
      return p;
    }
    const json& i = j.at("info");
    p.info.container = i.value("container", std::string());
    p.info.codec = i.value("codec", std::string());
    p.info.duration = Seconds(i.value("duration", 0.0));
    p.info.start_time = Seconds(i.value("start_time", 0.0));
    p.info.size_bytes = i.value("size_bytes", std::uint64_t{0});
    p.info.sample_rate_hz = i.value("sample_rate_hz", 0);
    p.info.channels = i.value("channels", 0);
    p.info.bit_rate = i.value("bit_rate", std::int64_t{0});
    p.info.stream_index = i.value("stream_index", 0);
    p.split = j.value("split", false);
    for (const json& c : j.at("chunks")) {
      Chunk chunk;
      chunk.index = c.at("index").get<std::size_t>();
      chunk.path = c.at("path").get<std::string>();
      chunk.offset = Seconds(c.at("offset").get<double>());
      chunk.duration = Seconds(c.at("duration").get<double>());
      chunk.size_bytes = c.value("size_bytes", std::uint64_t{0});
      p.chunks.push_back(std::move(chunk));
    }
    return p;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

}  // namespace floodgate::audio
