#include "floodgate/engine/response.hpp"

#include <simdjson.h>

#include <algorithm>

#include "floodgate/engine/estimator.hpp"

namespace floodgate::engine {
namespace {

std::uint64_t get_u64(simdjson::dom::element obj, std::string_view key) {
  std::uint64_t v = 0;
  if (obj[key].get_uint64().get(v)) {
    std::int64_t s = 0;
    if (obj[key].get_int64().get(s) == simdjson::SUCCESS && s > 0) return static_cast<std::uint64_t>(s);
    return 0;
  }
  return v;
}

std::string get_string(simdjson::dom::element obj, std::string_view key) {
  std::string_view v;
  if (obj[key].get_string().get(v)) return {};
  return std::string(v);
}

}  // namespace

ResponseInfo inspect_response_body(std::string_view body) {
  thread_local simdjson::dom::parser parser;
  ResponseInfo info;
  simdjson::dom::element root;
  if (parser.parse(body.data(), body.size()).get(root)) return info;
  info.valid_json = true;
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) return info;
  simdjson::dom::element usage;
  if (root["usage"].get(usage) == simdjson::SUCCESS && usage.is_object()) {
    info.has_usage = true;
    info.usage.prompt_tokens = get_u64(usage, "prompt_tokens");
    if (info.usage.prompt_tokens == 0) info.usage.prompt_tokens = get_u64(usage, "input_tokens");
    info.usage.completion_tokens = get_u64(usage, "completion_tokens");
    if (info.usage.completion_tokens == 0) info.usage.completion_tokens = get_u64(usage, "output_tokens");
    info.usage.total_tokens = get_u64(usage, "total_tokens");
    if (info.usage.total_tokens == 0) info.usage.total_tokens = info.usage.prompt_tokens + info.usage.completion_tokens;
    // Chat's names, then the Responses API's.
    simdjson::dom::element details;
    for (const std::string_view name : {"prompt_tokens_details", "input_tokens_details"}) {
      if (usage[name].get(details) == simdjson::SUCCESS && details.is_object()) {
        info.usage.cached_tokens = get_u64(details, "cached_tokens");
        break;
      }
    }
    for (const std::string_view name : {"completion_tokens_details", "output_tokens_details"}) {
      if (usage[name].get(details) == simdjson::SUCCESS && details.is_object()) {
        info.usage.reasoning_tokens = get_u64(details, "reasoning_tokens");
        break;
      }
    }
  }
  simdjson::dom::element error;
  if (root["error"].get(error) == simdjson::SUCCESS && error.is_object()) {
    info.error_type = get_string(error, "type");
    info.error_code = get_string(error, "code");
    info.error_message = get_string(error, "message");
  }
  return info;
}

Estimator conservative_estimator() {
  return [](const Request& r) -> limit::ChargeInputs {
    limit::ChargeInputs in;
    in.generates = r.endpoint != Endpoint::embeddings && r.endpoint != Endpoint::audio_transcriptions &&
                   r.endpoint != Endpoint::moderations;
    if (r.endpoint == Endpoint::audio_transcriptions) return in;
    in.input_tokens = (r.body.size() + 2) / 3;
    if (!in.generates) return in;
    thread_local simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (parser.parse(r.body.data(), r.body.size()).get(root) == simdjson::SUCCESS && root.is_object()) {
      for (const char* key : {"max_completion_tokens", "max_tokens", "max_output_tokens"}) {
        std::uint64_t v = 0;
        if (root[key].get_uint64().get(v) == simdjson::SUCCESS) {
          in.max_tokens_per_choice = v;
          break;
        }
      }
      if (r.endpoint == Endpoint::completions && !in.max_tokens_per_choice) in.max_tokens_per_choice = 16;
      for (const char* key : {"n", "best_of"}) {
        std::uint64_t v = 0;
        if (root[key].get_uint64().get(v) == simdjson::SUCCESS) in.choices = std::max(in.choices, v);
      }
    }
    return in;
  };
}

}  // namespace floodgate::engine
