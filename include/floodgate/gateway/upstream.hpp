#pragma once
// The upstream the gateway forwards to: its URL and its credentials. The HTTP client itself
// is the gateway's own (src/gateway/proxy.*, Beast/Asio on the connection's event loop), so
// that an answer is relayed piece by piece as it arrives (server-sent events included), a
// multipart upload is streamed through without being held whole, and a client that hangs up
// ends its upstream call at once (the upstream connection is closed).

#include <chrono>
#include <string>
#include <string_view>

namespace floodgate::gateway {

struct UpstreamOptions {
  std::string base_url;      // "https://api.openai.com/v1" (OPENAI_BASE_URL's form)
  std::string api_key;       // sent as "Authorization: Bearer ..."; never logged
  std::string organization;  // OpenAI-Organization, when set
  std::string project;       // OpenAI-Project, when set
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds timeout{600'000};  // one call, from its first byte sent to its last byte relayed
  std::size_t max_idle_connections = 256;      // per event-loop thread, kept for reuse
};

// An upstream base URL taken apart. "https://api.openai.com/v1" -> tls, host
// "api.openai.com", port "443", base_path "/v1", host_header "api.openai.com".
struct UpstreamAddress {
  bool tls = false;
  std::string host;
  std::string port;
  std::string base_path;    // without a trailing slash; "" for a bare host
  std::string host_header;  // host[:port], the port only when not the scheme's default
};
// Throws floodgate::Error for what is not an http:// or https:// URL with a host.
[[nodiscard]] UpstreamAddress parse_upstream_url(std::string_view url);

}  // namespace floodgate::gateway
