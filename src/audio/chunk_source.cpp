#include "floodgate/audio/chunk_source.hpp"

#include <cstdio>
#include <utility>

#include "floodgate/core/batch_io.hpp"

namespace floodgate::audio {

namespace {
constexpr std::string_view kUrl = "/v1/audio/transcriptions";
}  // namespace

std::string chunk_id(std::string_view file_key, std::size_t chunk_index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "-%04zu", chunk_index);
  return std::string(file_key) + buf;
}

ChunkSource::ChunkSource(std::vector<ChunkUpload> uploads) {
  uploads_.reserve(uploads.size());
  for (ChunkUpload& u : uploads) uploads_.push_back(std::make_shared<const ChunkUpload>(std::move(u)));
}

std::string ChunkSource::line_of(const ChunkUpload& upload) {
  return engine::batch_input_line(upload.id, kUrl, request_body(upload.options, upload.path, upload.prompt));
}

engine::SourceIdentity ChunkSource::identity() {
  std::string first_lines;
  for (std::size_t i = next_; i < uploads_.size() && first_lines.size() < engine::kJsonlIdentityBytes; ++i) {
    first_lines += line_of(*uploads_[i]);
    first_lines += '\n';
  }
  engine::SourceIdentity id = engine::jsonl_identity(first_lines, InputOptions{});
  id.name = "the audio uploads";
  return id;
}

engine::SourceStatus ChunkSource::next(engine::SourceItem& item) {
  if (next_ >= uploads_.size()) return engine::SourceStatus::end;
  const auto& upload = uploads_[next_++];
  item = engine::SourceItem{};
  item.line_no = next_;
  item.parsed = parse_input_line(line_of(*upload), item.line_no, InputOptions{});
  item.payload = upload;
  return engine::SourceStatus::item;
}

std::optional<double> ChunkSource::fraction_read() const noexcept {
  if (uploads_.empty()) return std::nullopt;
  return static_cast<double>(next_) / static_cast<double>(uploads_.size());
}

std::unique_ptr<engine::RequestSource> ChunkSource::reopen() const {
  return std::unique_ptr<engine::RequestSource>(new ChunkSource(uploads_));
}

const ChunkUpload* chunk_upload(const store::RowContext& context) noexcept {
  return static_cast<const ChunkUpload*>(context.payload.get());
}

}  // namespace floodgate::audio
