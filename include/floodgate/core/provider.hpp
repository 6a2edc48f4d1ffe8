#pragma once
// Provider dialects: what differs between OpenAI-compatible APIs for a client that paces
// itself by their rate limits (docs/limiter.md, "Provider dialects"):
//   openai  Authorization: Bearer; x-ratelimit-{limit,remaining,reset}-{requests,tokens}
//           per minute; charge at admission = input + (max_completion_tokens | max_tokens
//           | 16) x n.
//   azure   api-key header; deployment URLs (/openai/deployments/{model}/...?api-version=)
//           or the /openai/v1/ form; x-ratelimit-remaining-* without any limit header (the
//           limit is learned from remaining); charge rule depends on model and date.
//   groq    Bearer; x-ratelimit-*-requests count per DAY, -tokens per minute.
//   none    no rate-limit headers at all (vLLM, most self-hosted servers): run by
//           concurrency (--max-in-flight) with backoff on 429/503.

#include <cstdint>
#include <optional>
#include <string_view>

namespace floodgate {

enum class Provider : std::uint8_t { openai, azure, groq, none };

[[nodiscard]] std::string_view to_string(Provider p) noexcept;
// "openai", "azure", "groq", "none"; nullopt for anything else.
[[nodiscard]] std::optional<Provider> provider_from_name(std::string_view name) noexcept;
// The provider a base URL names without doubt: api.openai.com -> openai; *.openai.azure.com,
// *.cognitiveservices.azure.com, *.services.ai.azure.com -> azure; api.groq.com -> groq.
// nullopt for anything else (a proxy, a local server): the caller keeps its default.
[[nodiscard]] std::optional<Provider> guess_provider(std::string_view base_url) noexcept;

}  // namespace floodgate
