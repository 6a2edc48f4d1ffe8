#include "floodgate/http/multipart_body.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace floodgate::http {

std::optional<MultipartSpec> multipart_spec_from_json(std::string_view body_json, std::string& error) {
  const auto j = nlohmann::json::parse(body_json, nullptr, false);
  if (!j.is_object()) {
    error = "the audio request body is not a JSON object";
    return std::nullopt;
  }
  MultipartSpec spec;
  for (const auto& [key, value] : j.items()) {
    if (key == "file") {
      if (!value.is_string()) {
        error = "\"file\" must be a path string";
        return std::nullopt;
      }
      spec.file_path = value.get<std::string>();
    } else if (value.is_string()) {
      spec.fields.emplace_back(key, value.get<std::string>());
    } else if (value.is_array()) {
      for (const auto& v : value) spec.fields.emplace_back(key + "[]", v.is_string() ? v.get<std::string>() : v.dump());
    } else if (!value.is_null()) {
      spec.fields.emplace_back(key, value.dump());
    }
  }
  if (spec.file_path.empty()) {
    error = "no \"file\" path in the audio request body";
    return std::nullopt;
  }
  if (::access(spec.file_path.c_str(), R_OK) != 0) {
    error = "cannot read the audio file \"" + spec.file_path + "\"";
    return std::nullopt;
  }
  return spec;
}

MimeBuilder make_mime_builder(std::shared_ptr<const MultipartSpec> spec) {
  return [spec = std::move(spec)](CURL* easy) -> curl_mime* {
    curl_mime* mime = curl_mime_init(easy);
    if (mime == nullptr) return nullptr;
    for (const auto& [name, value] : spec->fields) {
      curl_mimepart* part = curl_mime_addpart(mime);
      curl_mime_name(part, name.c_str());
      curl_mime_data(part, value.data(), value.size());
    }
    curl_mimepart* file = curl_mime_addpart(mime);
    curl_mime_name(file, "file");
    if (curl_mime_filedata(file, spec->file_path.c_str()) != CURLE_OK) {
      curl_mime_free(mime);
      return nullptr;
    }
    return mime;
  };
}

}  // namespace floodgate::http
