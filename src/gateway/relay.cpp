#include "floodgate/gateway/relay.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "floodgate/engine/response.hpp"

namespace floodgate::gateway {
namespace {

bool space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// The end (one past the closing brace) of the JSON object that opens at `at`, or npos.
std::size_t object_end(std::string_view text, std::size_t at) noexcept {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = at; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}' && --depth == 0) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

}  // namespace

std::optional<Usage> usage_of(std::string_view text) {
  static constexpr std::string_view kKey = "\"usage\"";
  std::size_t from = text.size();
  while (from > 0) {
    const std::size_t at = text.rfind(kKey, from - 1);
    if (at == std::string_view::npos) return std::nullopt;
    from = at;
    std::size_t i = at + kKey.size();
    while (i < text.size() && space(text[i])) ++i;
    if (i >= text.size() || text[i] != ':') continue;
    ++i;
    while (i < text.size() && space(text[i])) ++i;
    if (i >= text.size() || text[i] != '{') continue;
    const std::size_t end = object_end(text, i);
    if (end == std::string_view::npos) continue;
    // The engine's reader of a body's usage (simdjson: a fifth of what nlohmann took here).
    std::string wrapped;
    wrapped.reserve(end - i + 10);
    wrapped.append(R"({"usage":)").append(text.substr(i, end - i)).append("}");
    const engine::ResponseInfo info = engine::inspect_response_body(wrapped);
    if (!info.has_usage) continue;
    return Usage{static_cast<std::int64_t>(info.usage.prompt_tokens), static_cast<std::int64_t>(info.usage.completion_tokens),
                 static_cast<std::int64_t>(info.usage.cached_tokens)};
  }
  return std::nullopt;
}

StreamAsk stream_ask_of(std::string_view body) {
  if (body.find("\"stream\"") == std::string_view::npos) return {};
  const auto doc = nlohmann::json::parse(body, nullptr, false);
  if (!doc.is_object()) return {};
  StreamAsk ask;
  const auto stream = doc.find("stream");
  ask.stream = stream != doc.end() && stream->is_boolean() && stream->get<bool>();
  const auto options = doc.find("stream_options");
  if (options != doc.end() && options->is_object()) {
    const auto include = options->find("include_usage");
    ask.include_usage = include != options->end() && include->is_boolean() && include->get<bool>();
  }
  return ask;
}

std::optional<std::string> with_include_usage(std::string_view body) {
  if (body.find("\"stream_options\"") == std::string_view::npos) {
    std::size_t end = body.size();
    while (end > 0 && space(body[end - 1])) --end;
    std::size_t start = 0;
    while (start < end && space(body[start])) ++start;
    if (end - start < 2 || body[start] != '{' || body[end - 1] != '}') return std::nullopt;
    std::size_t last = end - 1;  // the closing brace; is the object empty?
    std::size_t before = last;
    while (before > start + 1 && space(body[before - 1])) --before;
    std::string out(body.substr(0, last));
    out += before == start + 1 ? R"("stream_options":{"include_usage":true})" : R"(,"stream_options":{"include_usage":true})";
    out += body.substr(last);
    return out;
  }
  auto doc = nlohmann::ordered_json::parse(body, nullptr, false);
  if (!doc.is_object()) return std::nullopt;
  if (!doc["stream_options"].is_object()) doc["stream_options"] = nlohmann::ordered_json::object();
  doc["stream_options"]["include_usage"] = true;
  return doc.dump();
}

void SseRelay::feed(std::string_view bytes, std::string& out) {
  partial_.append(bytes);
  std::size_t begin = 0;
  for (;;) {
    const std::size_t lf = partial_.find("\n\n", begin);
    const std::size_t crlf = partial_.find("\n\r\n", begin);
    const std::size_t end = std::min(lf == std::string::npos ? lf : lf + 2, crlf == std::string::npos ? crlf : crlf + 3);
    if (end == std::string::npos) break;
    event(std::string_view(partial_).substr(begin, end - begin), out);
    begin = end;
  }
  partial_.erase(0, begin);
}

void SseRelay::finish(std::string& out) {
  if (!partial_.empty()) event(partial_, out);
  partial_.clear();
}

void SseRelay::event(std::string_view text, std::string& out) {
  if (text.find("\"usage\"") == std::string_view::npos) {
    out.append(text);
    return;
  }
  const auto usage = usage_of(text);
  if (usage) usage_ = usage;
  if (!strip_usage_) {
    out.append(text);
    return;
  }
  if (usage && text.find("\"choices\":[]") != std::string_view::npos) return;  // the usage chunk: not asked for
  static constexpr std::string_view kNull = ",\"usage\":null}";
  const std::size_t at = text.find(kNull);
  const std::size_t after = at == std::string_view::npos ? at : at + kNull.size();
  if (after != std::string_view::npos && after < text.size() && (text[after] == '\n' || text[after] == '\r')) {
    out.append(text.substr(0, at));
    out.append(text.substr(after - 1));
    return;
  }
  out.append(text);
}

void Tail::add(std::string_view bytes) {
  if (bytes.size() >= kKeep) {
    bytes_.assign(bytes.substr(bytes.size() - kKeep));
    return;
  }
  const std::size_t keep = std::min(bytes_.size(), kKeep - bytes.size());
  bytes_.erase(0, bytes_.size() - keep);
  bytes_.append(bytes);
}

}  // namespace floodgate::gateway
