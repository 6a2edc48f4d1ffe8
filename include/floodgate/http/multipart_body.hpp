#pragma once
// Multipart/form-data bodies for the audio endpoint, described by a JSON object (the
// `body` of a Batch API line for /v1/audio/transcriptions):
//   {"model":"whisper-1","file":"/path/chunk-0003.mp3","response_format":"verbose_json",
//    "timestamp_granularities":["word","segment"]}
// "file" becomes a file part streamed from disk by libcurl (curl_mime_filedata: the file
// is never read into memory); every other key becomes a text field (strings as is,
// numbers/booleans as their JSON text, arrays as one "key[]" field per element).
// The MimeBuilder is called once per attempt, so a retry streams the file again.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "floodgate/http/transport.hpp"

namespace floodgate::http {

struct MultipartSpec {
  std::string file_path;
  std::vector<std::pair<std::string, std::string>> fields;
};

// Parses the JSON description; nullopt with `error` set when it is not an object, has no
// "file" string, or the file cannot be opened for reading.
[[nodiscard]] std::optional<MultipartSpec> multipart_spec_from_json(std::string_view body_json, std::string& error);

// A builder for HttpRequest::mime.
[[nodiscard]] MimeBuilder make_mime_builder(std::shared_ptr<const MultipartSpec> spec);

}  // namespace floodgate::http
