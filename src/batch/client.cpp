#include "floodgate/batch/client.hpp"

#include <thread>

#include "floodgate/core/exit_codes.hpp"
#include "floodgate/http/multipart_body.hpp"
#include "floodgate/http/transport.hpp"

namespace floodgate::batch {
namespace {

using nlohmann::json;

bool transient(int status) { return status == 0 || status == 408 || status == 409 || status == 429 || status >= 500; }

std::string error_code_of(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    const json& e = j["error"];
    if (e.contains("code") && e["code"].is_string()) return e["code"];
    if (e.contains("type") && e["type"].is_string()) return e["type"];
  }
  return {};
}

std::string error_message_of(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].contains("message") &&
      j["error"]["message"].is_string()) {
    return j["error"]["message"];
  }
  return body.substr(0, 200);
}

}  // namespace

ApiError::ApiError(int status, std::string code, const std::string& message)
    : Error(message, exit_code::some_failed), status_(status), code_(std::move(code)) {}

struct BatchClient::Impl {
  ClientOptions options;
  http::CurlTransport transport;
  std::shared_ptr<const std::vector<std::string>> headers;
  std::shared_ptr<const std::vector<std::string>> json_headers;

  explicit Impl(ClientOptions o) : options(std::move(o)), transport(transport_options(options)) {
    std::vector<std::string> h;
    if (!options.api_key.empty()) h.push_back("Authorization: Bearer " + options.api_key);
    if (!options.organization.empty()) h.push_back("OpenAI-Organization: " + options.organization);
    if (!options.project.empty()) h.push_back("OpenAI-Project: " + options.project);
    headers = std::make_shared<const std::vector<std::string>>(h);
    h.push_back("Content-Type: application/json");
    json_headers = std::make_shared<const std::vector<std::string>>(std::move(h));
    while (!options.base_url.empty() && options.base_url.back() == '/') options.base_url.pop_back();
  }

  static http::TransportOptions transport_options(const ClientOptions& o) {
    http::TransportOptions t;
    t.total_timeout = o.timeout;
    t.http2 = true;
    return t;
  }

  // One exchange, retried while transient. `make` builds the request for each attempt.
  http::HttpResponse call(const std::string& what, const std::function<http::HttpRequest()>& make) {
    auto backoff = options.first_backoff;
    for (int attempt = 1;; ++attempt) {
      transport.submit(make());
      std::vector<http::HttpResponse> done;
      while (done.empty()) transport.poll(std::chrono::milliseconds(1000), done);
      http::HttpResponse r = std::move(done.front());
      if (r.status >= 200 && r.status < 300) return r;
      if (!transient(r.status) || attempt >= options.max_attempts) {
        const std::string cause = r.status == 0 ? r.error_message : "HTTP " + std::to_string(r.status) + ": " + error_message_of(r.body);
        throw ApiError(r.status, error_code_of(r.body), what + " failed: " + cause);
      }
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(30'000));
    }
  }

  json call_json(const std::string& what, const std::string& path, const std::string* body) {
    const http::HttpResponse r = call(what, [&] {
      http::HttpRequest req;
      req.url = options.base_url + path;
      req.common_headers = body ? json_headers : headers;
      if (body) req.body = std::make_shared<const std::string>(*body);
      return req;
    });
    json j = json::parse(r.body, nullptr, false);
    if (j.is_discarded()) throw ApiError(r.status, "", what + ": the answer is not JSON");
    return j;
  }
};

BatchClient::BatchClient(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
BatchClient::~BatchClient() = default;

json BatchClient::upload(const std::string& path) {
  auto spec = std::make_shared<http::MultipartSpec>();
  spec->file_path = path;
  spec->fields.emplace_back("purpose", "batch");
  const std::shared_ptr<const http::MultipartSpec> shared = spec;
  const http::HttpResponse r = impl_->call("uploading " + path, [&] {
    http::HttpRequest req;
    req.url = impl_->options.base_url + "/files";
    req.common_headers = impl_->headers;
    req.mime = http::make_mime_builder(shared);
    return req;
  });
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("id")) throw ApiError(r.status, "", "uploading " + path + ": no file id in the answer");
  return j;
}

std::vector<json> BatchClient::list_files() {
  const json j = impl_->call_json("listing files", "/files?purpose=batch", nullptr);
  std::vector<json> out;
  if (j.contains("data") && j["data"].is_array()) {
    for (const auto& f : j["data"]) out.push_back(f);
  }
  return out;
}

json BatchClient::create_batch(const std::string& input_file_id, const std::string& endpoint, const json& metadata) {
  const std::string body = json{{"input_file_id", input_file_id},
                                {"endpoint", endpoint},
                                {"completion_window", "24h"},
                                {"metadata", metadata}}.dump();
  return impl_->call_json("creating a batch for " + input_file_id, "/batches", &body);
}

json BatchClient::get_batch(const std::string& id) { return impl_->call_json("retrieving " + id, "/batches/" + id, nullptr); }

std::vector<json> BatchClient::list_batches(std::size_t max_batches) {
  std::vector<json> out;
  std::string after;
  while (out.size() < max_batches) {
    const json page = impl_->call_json("listing batches", "/batches?limit=100" + (after.empty() ? "" : "&after=" + after), nullptr);
    if (!page.contains("data") || !page["data"].is_array() || page["data"].empty()) break;
    for (const auto& b : page["data"]) out.push_back(b);
    if (!page.value("has_more", false)) break;
    after = out.back().value("id", "");
    if (after.empty()) break;
  }
  return out;
}

json BatchClient::cancel_batch(const std::string& id) {
  const std::string empty;
  return impl_->call_json("cancelling " + id, "/batches/" + id + "/cancel", &empty);
}

void BatchClient::download_lines(const std::string& file_id, const std::function<void(std::string_view)>& on_line) {
  // A retry after a partial body would repeat lines: the caller ignores ids it has seen.
  std::string carry;
  // Only output lines go on: an error body (a 404's JSON) is not a line of the file.
  const auto deliver = [&](std::string_view line) {
    if (line.find("\"custom_id\"") != std::string_view::npos) on_line(line);
  };
  const http::HttpResponse r = impl_->call("downloading " + file_id, [&] {
    carry.clear();
    http::HttpRequest req;
    req.url = impl_->options.base_url + "/files/" + file_id + "/content";
    req.max_response_bytes = 0;  // streamed to the callback, never held: no cap (an output may be 200 MB)
    req.common_headers = impl_->headers;
    req.body_sink = [&](std::string_view data) {
      while (!data.empty()) {
        const std::size_t nl = data.find('\n');
        if (nl == std::string_view::npos) {
          carry.append(data);
          break;
        }
        if (carry.empty()) {
          deliver(data.substr(0, nl));
        } else {
          carry.append(data.substr(0, nl));
          deliver(carry);
          carry.clear();
        }
        data.remove_prefix(nl + 1);
      }
      return true;
    };
    return req;
  });
  if (!carry.empty()) deliver(carry);
  (void)r;
}

}  // namespace floodgate::batch
