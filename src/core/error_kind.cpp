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
    {ErrorKind::budget, "budget"},
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

ErrorKind classify_http(int status, std::string_view type, std::string_view code) noexcept {
  if (status >= 200 && status < 300) return ErrorKind::none;
  if (status == 429) {
    if (code == "insufficient_quota" || type == "insufficient_quota") return ErrorKind::insufficient_quota;
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
