#pragma once
// The simulator's request logic, with no sockets: the server hands it a request head and
// a body (or, for uploads, streams the body into an Upload), and gets back a Reply with
// status, headers, body, the latency to wait and the fault to act out. Every reply is
// counted in Stats and written to the Ledger here, so the server cannot forget one.
//
// Order of checks, as the real API: route (404) → auth (401) → size (413) → JSON (400) →
// fields (400) → model (404) → quota (429 insufficient_quota) → a 5xx fault, if drawn →
// rate limits (429) → answer (faults reset/stall/truncated/slow-first-byte happen after
// admission: the request was charged, the client just never sees a clean answer).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "floodgate/core/clock.hpp"
#include "floodgate/sim/multipart.hpp"
#include "floodgate/sim/options.hpp"
#include "sim/audio_info.hpp"
#include "sim/batches.hpp"
#include "sim/ledger.hpp"
#include "sim/limit_table.hpp"
#include "sim/stats.hpp"
#include "sim/util.hpp"

namespace floodgate::sim {

struct RequestHead {
  std::string_view method;
  std::string_view target;             // path and query as sent
  std::string_view authorization;
  std::string_view content_type;
  std::string_view client_request_id;  // x-client-request-id
  std::string_view api_key;            // api-key (Azure's auth header)
};

// The tokens a chat request is charged at admission under `charge` (docs/sim.md).
[[nodiscard]] std::int64_t admission_charge(const ChargeModel& charge, std::int64_t input_tokens,
                                            std::optional<std::int64_t> max_tokens, std::int64_t n);

struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  FaultKind fault = FaultKind::none;
  std::chrono::nanoseconds delay{0};  // wait before the first byte
  std::string body_file;              // when set, this file is streamed as the body (Files API content)
  bool close = false;                 // close the connection after this reply
};

// The state of one streaming multipart upload (POST /v1/audio/transcriptions).
class Upload final : public MultipartHandler {
 public:
  explicit Upload(std::string boundary);
  ~Upload() override;
  // Feeds raw body bytes; false once the multipart body is malformed.
  bool feed(std::string_view chunk);
  [[nodiscard]] std::uint64_t body_bytes() const noexcept { return body_bytes_; }

 private:
  friend class Simulator;
  void on_part_begin(const PartHeaders& headers) override;
  void on_part_data(std::string_view data) override;
  void on_part_end() override;

  MultipartParser parser_;
  Sha256 body_hash_;
  Sha256 file_hash_;
  AudioSniffer audio_;
  std::uint64_t body_bytes_ = 0;
  bool file_seen_ = false;
  bool in_file_ = false;
  std::string filename_;
  std::string current_name_;
  std::string current_value_;
  std::vector<std::pair<std::string, std::string>> fields_;
  std::unique_ptr<FileSpool> spool_;  // POST /v1/files: the file part goes to disk here
};

class Simulator {
 public:
  explicit Simulator(SimOptions options, const Clock& clock = SteadyClock::instance());
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  [[nodiscard]] const SimOptions& options() const noexcept { return options_; }

  // After the head: a reply when the request is refused before its body is read (unknown
  // route, bad auth, declared size over the limit), else nullopt.
  std::optional<Reply> check_head(const RequestHead& head, std::optional<std::uint64_t> content_length);
  // Whether the body of this request is a streamed multipart upload.
  [[nodiscard]] static bool is_upload(const RequestHead& head) noexcept;
  // A request with its whole (small) body: JSON endpoints, GETs, /_sim/*.
  Reply handle(const RequestHead& head, std::string_view body);
  // Uploads: begin (nullptr + reply when the Content-Type is not multipart), feed, finish.
  std::unique_ptr<Upload> begin_upload(const RequestHead& head, Reply& refusal);
  Reply finish_upload(const RequestHead& head, Upload& upload);
  // The body is over the limit: `bytes_read` so far (the ledger's upload_bytes), or a
  // declared Content-Length (named in the message, as the real API does).
  Reply too_large(const RequestHead& head, std::uint64_t bytes_read, std::uint64_t declared = 0);
  // The largest body this request may have (uploads to /v1/files may be larger).
  [[nodiscard]] std::uint64_t body_limit(const RequestHead& head) const noexcept;
  // The request could not be parsed as HTTP at all.
  Reply bad_http();

  nlohmann::json stats_json();
  void flush_ledger();
  Stats& stats() noexcept { return stats_; }

 private:
  struct Context;
  Reply route(Context& ctx, std::string_view body);
  Reply chat(Context& ctx, const nlohmann::json& request);
  Reply embeddings(Context& ctx, const nlohmann::json& request);
  // The legacy Completions and the Responses API: the request is answered as the same chat
  // request would be (limits, charge, faults, structured outputs), in that endpoint's shape.
  Reply completions(Context& ctx, const nlohmann::json& request);
  Reply responses(Context& ctx, const nlohmann::json& request);
  // /v1/moderations: every input flagged or not (seeded), input tokens against the limits.
  Reply moderations(Context& ctx, const nlohmann::json& request);
  std::optional<Reply> require_model(Context& ctx, ModelKind kind);
  Reply deliver(Context& ctx, Reply reply, std::int64_t completion_tokens);
  Reply models(Context& ctx);
  Reply files_and_batches(Context& ctx, std::string_view body);
  Reply api_reply(Context& ctx, ApiReply&& api);
  LineAnswer batch_line(std::string_view url, std::string_view body, const std::string& api_key,
                        std::string_view custom_id, std::string_view batch_id);
  Reply error(Context& ctx, int status, std::string_view message, std::string_view type,
              const char* param, const char* code);
  std::optional<Reply> gate(Context& ctx, std::int64_t tokens, bool transcription);
  void finish(Context& ctx, Reply& reply);
  std::optional<Reply> authorize(Context& ctx);
  std::optional<Reply> azure_error(Context& ctx, int status, std::string_view code, std::string_view message);
  std::optional<Reply> check_served(Context& ctx);
  static std::string api_version(const Context& ctx);
  [[nodiscard]] Dialect dialect_of(const Context& ctx) const;
  const ModelSpec* model_spec(const std::string& name) const;
  std::string next_request_id();
  FaultKind draw_fault();
  bool draw_invalid_content();
  std::chrono::nanoseconds latency(std::int64_t completion_tokens);
  void spend(const ModelSpec& spec, std::int64_t input_tokens, std::int64_t output_tokens);

  SimOptions options_;
  const Clock& clock_;
  LimitTable limits_;
  Stats stats_;
  std::unique_ptr<Ledger> ledger_;
  std::atomic<std::uint64_t> request_counter_{0};
  std::atomic<std::uint64_t> fault_counter_{0};
  std::atomic<std::uint64_t> invalid_counter_{0};
  std::atomic<std::uint64_t> latency_counter_{0};
  std::mutex quota_mutex_;
  std::int64_t spent_tokens_ = 0;
  double spent_usd_ = 0;
  std::unique_ptr<BatchApi> batch_api_;  // the Files and Batches API (src/sim/batches.cpp)
};

}  // namespace floodgate::sim
