#pragma once
// BatchClient: the Files and Batches API, one blocking call at a time over the project's
// Transport (the control plane of a batch job is a handful of calls a minute, so there is
// no event loop to share). Uploads stream the part file from disk (multipart through
// http::make_mime_builder, curl_mime_filedata); downloads hand the body to a callback line
// by line (HttpRequest::body_sink), so neither is ever held whole in memory.
//
// Transient failures (no answer, 408/409/429/5xx) are retried up to `max_attempts` with
// exponential backoff; the rest throw ApiError. The API key is sent in the Authorization
// header only and never appears in an error message.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "floodgate/core/error.hpp"

namespace floodgate::batch {

struct ClientOptions {
  std::string base_url = "https://api.openai.com/v1";
  std::string api_key;       // never logged
  std::string organization;  // OpenAI-Organization
  std::string project;       // OpenAI-Project
  std::chrono::milliseconds timeout{600'000};
  int max_attempts = 5;
  std::chrono::milliseconds first_backoff{500};
};

// A refused call: the HTTP status (0: no answer) and the API's error code and message.
class ApiError : public Error {
 public:
  ApiError(int status, std::string code, const std::string& message);
  [[nodiscard]] int status() const noexcept { return status_; }
  [[nodiscard]] const std::string& code() const noexcept { return code_; }

 private:
  int status_;
  std::string code_;
};

class BatchClient {
 public:
  explicit BatchClient(ClientOptions options);
  ~BatchClient();
  BatchClient(const BatchClient&) = delete;
  BatchClient& operator=(const BatchClient&) = delete;

  // POST /v1/files purpose=batch; the remote filename is the file's base name.
  nlohmann::json upload(const std::string& path);
  // GET /v1/files?purpose=batch: the file objects.
  std::vector<nlohmann::json> list_files();
  nlohmann::json create_batch(const std::string& input_file_id, const std::string& endpoint,
                              const nlohmann::json& metadata);
  nlohmann::json get_batch(const std::string& id);
  // GET /v1/batches, every page, newest first (at most `max_batches`).
  std::vector<nlohmann::json> list_batches(std::size_t max_batches = 10'000);
  nlohmann::json cancel_batch(const std::string& id);
  // GET /v1/files/{id}/content, each line (without its '\n') to `on_line` as it arrives.
  void download_lines(const std::string& file_id, const std::function<void(std::string_view line)>& on_line);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace floodgate::batch
