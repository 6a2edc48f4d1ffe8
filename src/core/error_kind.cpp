#include "floodgate/core/error_kind.hpp"

#include <array>
#include <utility>

namespace floodgate {
namespace {

constexpr std::array<std::pair<ErrorKind, std::string_view>, 22> kNames{{
    {ErrorKind::none, "none"},
    {ErrorKind::rate_limited, "rate_limited"},
    {ErrorKind::server_error, "server_error"},
    {ErrorKind::timeout, "timeout"},
    {ErrorKind::conflict, "conflict"},
    {ErrorKind::connection, "connection"},
    {ErrorKind::bad_response, "bad_response"},
    {ErrorKind::bad_request, "bad_request"},
    {ErrorKind::auth, "auth"},
    {ErrorKind::permission, "permission"},
    {ErrorKind::not_found, "not_found"},
    {ErrorKind::too_large, "too_large"},
    {ErrorKind::unprocessable, "unprocessable"},
    {ErrorKind::http_other, "http_other"},
    {ErrorKind::invalid_input, "invalid_input"},
    {ErrorKind::cannot_fit, "cannot_fit"},
    {ErrorKind::max_wait, "max_wait"},
    {ErrorKind::schema_violation, "schema_violation"},
    {ErrorKind::refusal, "refusal"},
    {ErrorKind::insufficient_quota, "insufficient_quota"},
    {ErrorKind::cancelled, "cancelled"},
}};

}  // namespace

std::string_view to_string(ErrorKind kind) noexcept {
  for (const auto& [k, name] : kNames) {
    if (k == kind) return name;
  }
  return "unknown";
}

std::optional<ErrorKind> error_kind_from_string(std::string_view name) noexcept {
  for (const auto& [k, n] : kNames) {
    if (n == name) return k;
  }
  return std::nullopt;
}

namespace {

constexpr std::array<std::string_view, 6> kQuotaCodes{
    "insufficient_quota",          "credit_balance_exhausted",          "organization_spend_limit_exceeded",
    "project_spend_limit_exceeded", "organization_usage_limit_exceeded", "billing_hard_limit_reached"};

char lower_ascii(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
bool word_char(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }

// Where `needle` (lower case) occurs in `text` in any case, as a whole word; npos if not.
std::size_t find_word(std::string_view text, std::string_view needle) noexcept {
  for (std::size_t at = 0; at + needle.size() <= text.size(); ++at) {
    std::size_t i = 0;
    while (i < needle.size() && lower_ascii(text[at + i]) == needle[i]) ++i;
    if (i < needle.size()) continue;
    const bool starts = at == 0 || !word_char(text[at - 1]);
    const bool ends = at + needle.size() == text.size() || !word_char(text[at + needle.size()]);
    if (starts && ends) return at;
  }
  return std::string_view::npos;
}

}  // namespace

bool is_quota_code(std::string_view code) noexcept {
  for (std::string_view q : kQuotaCodes) {
    if (code == q) return true;
  }
  return false;
}

std::string_view quota_code_in_text(std::string_view body) noexcept {
  body = body.substr(0, 64 * 1024);  // an error page, not a novel
  std::size_t best = std::string_view::npos;
  std::string_view found;
  for (std::string_view q : kQuotaCodes) {
    const std::size_t at = find_word(body, q);
    if (at < best) {
      best = at;
      found = q;
    }
  }
  if (found.empty() && find_word(body, "exceeded your current quota") != std::string_view::npos) return kQuotaCodes[0];
  return found;
}

ErrorKind classify_http(int status, std::string_view type, std::string_view code) noexcept {
  if (status >= 200 && status < 300) return ErrorKind::none;
  if (status == 429) {
    if (is_quota_code(code) || is_quota_code(type)) return ErrorKind::insufficient_quota;
    return ErrorKind::rate_limited;
  }
  if (status >= 500) return ErrorKind::server_error;
  switch (status) {
    case 400: return ErrorKind::bad_request;
    case 401: return ErrorKind::auth;
    case 403: return ErrorKind::permission;
    case 404: return ErrorKind::not_found;
    case 408: return ErrorKind::timeout;
    case 409: return ErrorKind::conflict;
    case 413: return ErrorKind::too_large;
    case 422: return ErrorKind::unprocessable;
    default: return ErrorKind::http_other;
  }
}

}  // namespace floodgate
