// Provider dialects: credential header and endpoint URLs (see dialect.hpp).
#include "floodgate/http/dialect.hpp"

namespace floodgate::http {
namespace {

struct SplitUrl {
  std::string path;   // without a trailing '/'
  std::string query;  // without the '?'
};

SplitUrl split(std::string_view url) {
  SplitUrl out;
  const auto q = url.find('?');
  out.path = std::string(url.substr(0, q));
  if (q != std::string_view::npos) out.query = std::string(url.substr(q + 1));
  while (!out.path.empty() && out.path.back() == '/') out.path.pop_back();
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) { return s.size() >= suffix.size() && s.ends_with(suffix); }

// The value of api-version in a query string, or "".
std::string api_version_in(std::string_view query) {
  std::size_t pos = 0;
  while (pos <= query.size()) {
    const auto amp = query.find('&', pos);
    const std::string_view pair = query.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
    if (pair.starts_with("api-version=")) return std::string(pair.substr(12));
    if (amp == std::string_view::npos) break;
    pos = amp + 1;
  }
  return {};
}

// "/v1/chat/completions" -> "/chat/completions".
std::string_view short_path(Endpoint e) {
  std::string_view p = endpoint_path(e);
  if (p.starts_with("/v1/")) p.remove_prefix(3);
  return p;
}

}  // namespace

std::string auth_header(Provider provider, std::string_view api_key) {
  if (api_key.empty()) return {};
  if (provider == Provider::azure) return "api-key: " + std::string(api_key);
  return "Authorization: Bearer " + std::string(api_key);
}

bool url_depends_on_model(Provider provider, std::string_view base_url) {
  if (provider != Provider::azure) return false;
  const SplitUrl u = split(base_url);
  return !ends_with(u.path, "/openai/v1") && u.path.find("/openai/deployments/") == std::string::npos;
}

std::string endpoint_url(Provider provider, std::string_view base_url, Endpoint endpoint, std::string_view model,
                         std::string_view api_version) {
  const SplitUrl u = split(base_url);
  if (provider != Provider::azure) {
    std::string base = u.path;
    std::string_view path = endpoint_path(endpoint);
    if (ends_with(base, "/v1") && path.starts_with("/v1/")) path.remove_prefix(3);
    std::string out = base + std::string(path);
    if (!u.query.empty()) out += "?" + u.query;
    return out;
  }
  std::string version = api_version_in(u.query);
  if (version.empty()) version = std::string(api_version);
  if (ends_with(u.path, "/openai/v1")) {  // the v1 form: the model stays in the body
    std::string out = u.path + std::string(short_path(endpoint));
    if (!version.empty()) out += "?api-version=" + version;
    return out;
  }
  if (version.empty()) version = std::string(kDefaultAzureApiVersion);
  std::string out;
  if (u.path.find("/openai/deployments/") != std::string::npos) {
    out = u.path;  // names its deployment
  } else {
    std::string root = u.path;
    if (ends_with(root, "/openai")) root.resize(root.size() - 7);
    out = root + "/openai/deployments/" + std::string(model);
  }
  return out + std::string(short_path(endpoint)) + "?api-version=" + version;
}

}  // namespace floodgate::http
