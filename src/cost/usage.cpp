#include "floodgate/cost/usage.hpp"

#include <nlohmann/json.hpp>

namespace floodgate::cost {
namespace {

std::uint64_t count(const nlohmann::json& obj, const char* field) {
  const auto it = obj.find(field);
  if (it == obj.end() || !it->is_number_integer()) return 0;
  const auto v = it->get<std::int64_t>();
  return v > 0 ? static_cast<std::uint64_t>(v) : 0;
}

std::uint64_t nested(const nlohmann::json& obj, const char* details, const char* field) {
  const auto it = obj.find(details);
  if (it == obj.end() || !it->is_object()) return 0;
  return count(*it, field);
}

}  // namespace

std::optional<Usage> parse_usage(std::string_view response_body) {
  const auto doc = nlohmann::json::parse(response_body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return std::nullopt;
  const auto it = doc.find("usage");
  if (it == doc.end() || !it->is_object()) return std::nullopt;
  const auto& u = *it;
  Usage usage;
  if (u.contains("input_tokens") || u.contains("output_tokens")) {  // Responses API
    usage.prompt_tokens = count(u, "input_tokens");
    usage.completion_tokens = count(u, "output_tokens");
    usage.cached_tokens = nested(u, "input_tokens_details", "cached_tokens");
    usage.reasoning_tokens = nested(u, "output_tokens_details", "reasoning_tokens");
  } else {
    usage.prompt_tokens = count(u, "prompt_tokens");
    usage.completion_tokens = count(u, "completion_tokens");
    usage.cached_tokens = nested(u, "prompt_tokens_details", "cached_tokens");
    usage.reasoning_tokens = nested(u, "completion_tokens_details", "reasoning_tokens");
  }
  usage.total_tokens = count(u, "total_tokens");
  if (usage.total_tokens == 0) usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  return usage;
}

std::uint64_t completion_allowance(std::string_view request_body, std::uint64_t default_allowance) {
  const auto doc = nlohmann::json::parse(request_body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return default_allowance;
  std::uint64_t allowance = default_allowance;
  if (const auto v = count(doc, "max_completion_tokens"); v > 0) {
    allowance = v;
  } else if (const auto w = count(doc, "max_tokens"); w > 0) {
    allowance = w;
  }
  const std::uint64_t n = count(doc, "n");
  return allowance * (n > 0 ? n : 1);
}

}  // namespace floodgate::cost
