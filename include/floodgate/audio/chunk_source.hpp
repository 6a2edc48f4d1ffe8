#pragma once
// The uploads of a transcribe job as the engine's input: a RequestSource of audio chunks
// (or whole files), each one POST /v1/audio/transcriptions whose multipart form the
// transport streams from the chunk's file. Nothing is written to disk: each request is
// made in memory as the Batch API line
//   {"custom_id":ID,"method":"POST","url":"/v1/audio/transcriptions","body":{...,"file":PATH}}
// a file of them would hold, parsed as the engine parses such a file and numbered as its
// lines, so the journal's keys (the chunk ids, chunk_id()) and the source's identity are
// those of that file.
//
// Each item carries its ChunkUpload as the payload (store::RowContext::payload), so a sink knows
// which file and chunk an outcome answers (chunk_upload()).

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/audio/job.hpp"
#include "floodgate/engine/source.hpp"
#include "floodgate/store/sink.hpp"

namespace floodgate::audio {

// The custom_id of a file's chunk: the file's key (file_key()) and the chunk's index,
// "<key>-0003". A whole file sent as is is its chunk 0.
[[nodiscard]] std::string chunk_id(std::string_view file_key, std::size_t chunk_index);

// One upload: a chunk of an input file, or the whole file.
struct ChunkUpload {
  std::string id;                     // chunk_id(): the request's custom_id and journal key
  std::filesystem::path path;         // the audio streamed as the form's "file"
  TranscribeOptions options;
  std::optional<std::string> prompt;  // overrides options.prompt (--carry-prompt)
  std::size_t file_index = 0;         // which input of the job
  std::size_t chunk_index = 0;        // which of its chunks
};

class ChunkSource final : public engine::RequestSource {
 public:
  explicit ChunkSource(std::vector<ChunkUpload> uploads);

  [[nodiscard]] std::size_t size() const noexcept { return uploads_.size(); }

  [[nodiscard]] engine::SourceIdentity identity() override;
  [[nodiscard]] engine::SourceStatus next(engine::SourceItem& item) override;
  [[nodiscard]] std::optional<double> fraction_read() const noexcept override;
  [[nodiscard]] std::unique_ptr<engine::RequestSource> reopen() const override;

  // The Batch API line of an upload (without its '\n').
  [[nodiscard]] static std::string line_of(const ChunkUpload& upload);

 private:
  explicit ChunkSource(std::vector<std::shared_ptr<const ChunkUpload>> uploads) : uploads_(std::move(uploads)) {}
  std::vector<std::shared_ptr<const ChunkUpload>> uploads_;
  std::size_t next_ = 0;
};

// The upload a row's payload carries; the row must come from a ChunkSource (the payload of
// another source is not an upload). Null when the row has no payload.
[[nodiscard]] const ChunkUpload* chunk_upload(const store::RowContext& context) noexcept;

}  // namespace floodgate::audio
