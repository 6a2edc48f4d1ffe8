#pragma once
// The simulator's Files and Batches API (docs/sim.md "Batch API"):
//   POST /v1/files (multipart, streamed to disk), GET /v1/files, GET /v1/files/{id},
//   GET /v1/files/{id}/content (streamed), POST /v1/batches, GET /v1/batches,
//   GET /v1/batches/{id}, POST /v1/batches/{id}/cancel.
//
// Lifecycle, in simulated time (BatchSimOptions, divided by --batch-speed):
//   validating (the input is checked at create: a bad file ends `failed` with errors.data[]
//   naming each line; a batch that would pass the model's enqueued-token limit ends
//   `failed` with token_limit_exceeded) -> in_progress (one line per `per_line`, in a
//   seeded shuffled order, so outputs come back in no particular order) -> finalizing ->
//   completed, or expired when --batch-expire-rate left lines unrun (they get batch_expired
//   in the error file). Cancel: cancelling, then cancelled with the lines done so far.
// State moves lazily: every request first brings every batch up to the clock's now, so no
// thread runs in the background and a test's sequence of calls is reproducible.
// Each line is answered by the simulator's own chat/embeddings code (LineAnswerer), which
// writes it to the ledger with the batch's id: exactly-once can be checked across batch
// and real time.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "floodgate/core/clock.hpp"
#include "floodgate/sim/options.hpp"
#include "sim/files.hpp"

namespace floodgate::sim {

// What the glue in Simulator turns into a Reply (and a ledger line).
struct ApiReply {
  int status = 200;
  std::string body;
  std::string body_file;  // stream this file as the body instead
  std::string content_type = "application/json";
  std::string error_type;
  std::string error_code;
  std::string model;
};

struct LineAnswer {
  int status = 0;
  std::string request_id;
  std::string body;  // JSON
};

// Answers one batch line through the simulator's real-time code (no rate limits, no faults).
using LineAnswerer = std::function<LineAnswer(std::string_view url, std::string_view body, const std::string& api_key,
                                              std::string_view custom_id, std::string_view batch_id)>;

class BatchApi {
 public:
  BatchApi(const SimOptions& options, const Clock& clock, LineAnswerer answer);
  ~BatchApi();
  BatchApi(const BatchApi&) = delete;
  BatchApi& operator=(const BatchApi&) = delete;

  [[nodiscard]] static bool is_api_path(std::string_view path) noexcept;
  [[nodiscard]] static bool method_ok(std::string_view method, std::string_view path) noexcept;
  [[nodiscard]] static bool is_upload(std::string_view method, std::string_view path) noexcept;

  // A JSON request or a GET. `api_key` is kept in memory with a batch (to answer its lines).
  ApiReply handle(std::string_view method, std::string_view target, std::string_view body, const std::string& api_key);
  // POST /v1/files: the spool the file part streams into, then the upload's end.
  [[nodiscard]] std::unique_ptr<FileSpool> spool() { return files_.spool(); }
  ApiReply finish_upload(const std::vector<std::pair<std::string, std::string>>& fields, bool file_seen,
                         const std::string& filename, FileSpool* spool);

 private:
  struct Batch;
  ApiReply create(std::string_view body, const std::string& api_key);
  ApiReply retrieve(std::string_view id);
  ApiReply list(std::string_view query);
  ApiReply cancel(std::string_view id);
  void validate(Batch& b, const StoredFile& input);
  void advance_all(TimePoint now);
  void advance(Batch& b, TimePoint now);
  void run_lines(Batch& b, std::size_t due);
  void finish(Batch& b, const char* status);
  std::int64_t queued_tokens(const std::string& model) const;
  std::int64_t queue_limit(const std::string& model) const;
  std::string next_batch_id();
  nlohmann::ordered_json batch_object(const Batch& b) const;
  [[nodiscard]] std::chrono::nanoseconds scaled(std::chrono::nanoseconds d) const noexcept;

  const SimOptions& options_;
  const Clock& clock_;
  LineAnswerer answer_;
  FileStore files_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Batch>> batches_;  // oldest first
  std::uint64_t counter_ = 0;
};

}  // namespace floodgate::sim
