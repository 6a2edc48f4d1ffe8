#include "sim/batches.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "floodgate/core/batch_io.hpp"
#include "floodgate/tokens/encoding.hpp"
#include "floodgate/tokens/model_map.hpp"
#include "sim/token_estimate.hpp"
#include "sim/util.hpp"

namespace floodgate::sim {
namespace {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

constexpr std::string_view kFiles = "/v1/files";
constexpr std::string_view kBatches = "/v1/batches";
constexpr std::size_t kMaxListedErrors = 1000;

ojson error_json(std::string_view message, const char* param, const char* code) {
  return ojson{{"error",
                {{"message", std::string(message)},
                 {"type", "invalid_request_error"},
                 {"param", param ? ojson(param) : ojson(nullptr)},
                 {"code", code ? ojson(code) : ojson(nullptr)}}}};
}

ApiReply api_error(int status, std::string_view message, const char* param, const char* code) {
  ApiReply r;
  r.status = status;
  r.body = error_json(message, param, code).dump();
  r.error_type = "invalid_request_error";
  r.error_code = code ? code : "";
  return r;
}

ApiReply ok(const ojson& body) {
  ApiReply r;
  r.body = body.dump();
  return r;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::string with_commas(std::int64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// "limit=20&after=batch_x" -> value of `key`, or "".
std::string query_value(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == key) return std::string(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

// What the simulator answers, and what the API's CreateBatchRequest.endpoint enum allows
// (openai-openapi) beyond that: those are refused as not simulated, not as invalid.
const char* const kEndpoints[] = {"/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/responses",
                                  "/v1/moderations"};
const char* const kNotSimulated[] = {"/v1/images/generations", "/v1/images/edits", "/v1/videos"};

enum Fate : std::uint8_t { run_it, fail_it, expire_it, zero_it, lose_it };

// The `usage` object of an answer body, read without parsing the rest (an embeddings body
// is mostly its vectors): null when there is none.
json usage_of(std::string_view body) {
  const std::size_t at = body.rfind("\"usage\":{");
  if (at == std::string_view::npos) return nullptr;
  const std::size_t open = at + std::string_view("\"usage\":").size();
  int depth = 0;
  for (std::size_t i = open; i < body.size(); ++i) {
    if (body[i] == '{') ++depth;
    if (body[i] == '}' && --depth == 0) return json::parse(body.substr(open, i - open + 1), nullptr, false);
  }
  return nullptr;
}

std::int64_t int_field(const json& j, const char* key, const char* other) {
  for (const char* k : {key, other}) {
    if (const auto it = j.find(k); it != j.end() && it->is_number_integer()) return it->get<std::int64_t>();
  }
  return 0;
}

}  // namespace

struct BatchApi::Batch {
  std::string id;
  std::string endpoint;
  std::string input_file_id;
  std::string model;
  std::string api_key;  // in memory only, to answer the lines; never written
  ojson metadata;       // null or an object
  std::string status = "validating";
  TimePoint t_created{};
  TimePoint t_finalizing{};  // when in_progress ended
  TimePoint t_cancel{};
  long long created_at = 0, in_progress_at = 0, finalizing_at = 0, completed_at = 0, failed_at = 0, expired_at = 0,
            cancelling_at = 0, cancelled_at = 0;
  ojson errors;  // null or {"object":"list","data":[...]}
  bool valid = false;
  std::int64_t input_tokens = 0;
  std::string input_path;
  std::vector<std::uint64_t> offsets;
  std::vector<std::uint32_t> lengths;
  std::vector<std::uint32_t> order;  // shuffled
  std::vector<std::uint8_t> fate;
  std::size_t runnable = 0;  // lines not fated to expire
  std::size_t pos = 0;       // next index into order
  std::size_t done = 0;      // runnable lines answered
  std::uint64_t completed = 0, failed = 0;
  std::int64_t usage_input = 0, usage_output = 0;  // tokens the answered lines used
  std::string out_path, err_path;
  std::FILE* out = nullptr;
  std::FILE* err = nullptr;
  int input_fd = -1;
  std::string output_file_id, error_file_id;

  ~Batch() {
    if (out != nullptr) std::fclose(out);
    if (err != nullptr) std::fclose(err);
    if (input_fd >= 0) ::close(input_fd);
  }
  [[nodiscard]] bool terminal() const {
    return status == "completed" || status == "failed" || status == "expired" || status == "cancelled";
  }
};

BatchApi::BatchApi(const SimOptions& options, const Clock& clock, LineAnswerer answer)
    : options_(options), clock_(clock), answer_(std::move(answer)), files_(options.batch.dir, options.seed) {}

BatchApi::~BatchApi() = default;

bool BatchApi::is_api_path(std::string_view path) noexcept {
  return path == kFiles || starts_with(path, "/v1/files/") || path == kBatches || starts_with(path, "/v1/batches/");
}

bool BatchApi::method_ok(std::string_view method, std::string_view path) noexcept {
  if (path == kFiles || path == kBatches) return method == "POST" || method == "GET";
  if (starts_with(path, "/v1/batches/") && path.ends_with("/cancel")) return method == "POST";
  return method == "GET";
}

bool BatchApi::is_upload(std::string_view method, std::string_view path) noexcept {
  return method == "POST" && path == kFiles;
}

std::chrono::nanoseconds BatchApi::scaled(std::chrono::nanoseconds d) const noexcept {
  const double speed = options_.batch.speed > 0 ? options_.batch.speed : 1.0;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(d.count()) / speed));
}

std::string BatchApi::next_batch_id() {
  const std::uint64_t n = ++counter_;
  const std::uint64_t a = mix64(options_.seed ^ mix64(n ^ 0xba7c4ULL));
  const std::uint64_t b = mix64(a ^ n);
  std::uint8_t bytes[16];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<std::uint8_t>(a >> (8 * i));
    bytes[8 + i] = static_cast<std::uint8_t>(b >> (8 * i));
  }
  return "batch_" + to_hex(bytes, sizeof bytes);
}

ApiReply BatchApi::finish_upload(const std::vector<std::pair<std::string, std::string>>& fields, bool file_seen,
                                 const std::string& filename, FileSpool* spool) {
  std::string purpose;
  for (const auto& [name, value] : fields) {
    if (name == "purpose") purpose = value;
  }
  if (!file_seen || spool == nullptr) {
    return api_error(400, "Missing required parameter: 'file'.", "file", "missing_required_parameter");
  }
  if (purpose.empty()) {
    return api_error(400, "Missing required parameter: 'purpose'.", "purpose", "missing_required_parameter");
  }
  static constexpr const char* kPurposes[] = {"batch", "fine-tune", "assistants", "vision", "user_data", "evals"};
  if (std::none_of(std::begin(kPurposes), std::end(kPurposes), [&](const char* p) { return purpose == p; })) {
    return api_error(400, "Invalid value: '" + purpose + "'. Supported values are: 'assistants', 'batch', 'fine-tune', "
                     "'vision', 'user_data', and 'evals'.", "purpose", "invalid_value");
  }
  if (purpose == "batch" && !filename.ends_with(".jsonl")) {
    return api_error(400, "Invalid file format for Batch API. Must be .jsonl", nullptr, nullptr);
  }
  const auto stored = files_.add_upload(*spool, filename, purpose);
  if (!stored) {
    ApiReply r;
    r.status = 500;
    r.body = R"({"error":{"message":"The server could not store the file.","type":"server_error","param":null,"code":null}})";
    r.error_type = "server_error";
    return r;
  }
  return ok(file_object(*stored));
}

ApiReply BatchApi::handle(std::string_view method, std::string_view target, std::string_view body,
                          const std::string& api_key) {
  const std::size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  const std::lock_guard lock(mutex_);
  advance_all(clock_.now());
  if (path == kFiles) {  // GET: the list
    ojson data = ojson::array();
    const std::string purpose = query_value(query, "purpose");
    for (const auto& f : files_.list()) {
      if (purpose.empty() || f.purpose == purpose) data.push_back(file_object(f));
    }
    return ok(ojson{{"object", "list"}, {"data", data}, {"has_more", false}});
  }
  if (starts_with(path, "/v1/files/")) {
    std::string_view rest = path.substr(kFiles.size() + 1);
    const bool content = rest.ends_with("/content");
    if (content) rest.remove_suffix(std::string_view("/content").size());
    const auto file = files_.get(rest);
    if (!file) return api_error(404, "No such File object: " + std::string(rest), "id", nullptr);
    if (!content) return ok(file_object(*file));
    ApiReply r;
    r.body_file = file->path;
    r.content_type = "application/octet-stream";
    return r;
  }
  if (path == kBatches) return method == "POST" ? create(body, api_key) : list(query);
  std::string_view rest = path.substr(kBatches.size() + 1);
  if (rest.ends_with("/cancel")) {
    rest.remove_suffix(std::string_view("/cancel").size());
    return cancel(rest);
  }
  return retrieve(rest);
}

ApiReply BatchApi::create(std::string_view body, const std::string& api_key) {
  const json request = json::parse(body, nullptr, false);
  if (request.is_discarded() || !request.is_object()) {
    return api_error(400, "We could not parse the JSON body of your request.", nullptr, nullptr);
  }
  for (const char* key : {"input_file_id", "endpoint", "completion_window"}) {
    if (!request.contains(key) || !request[key].is_string()) {
      return api_error(400, std::string("Missing required parameter: '") + key + "'.", key, "missing_required_parameter");
    }
  }
  const std::string endpoint = request["endpoint"];
  if (std::any_of(std::begin(kNotSimulated), std::end(kNotSimulated), [&](const char* e) { return endpoint == e; })) {
    return api_error(400, "floodgate sim does not answer " + endpoint + " batches (it answers /v1/responses, "
                     "/v1/chat/completions, /v1/embeddings, /v1/completions and /v1/moderations).", "endpoint",
                     "invalid_value");
  }
  if (std::none_of(std::begin(kEndpoints), std::end(kEndpoints), [&](const char* e) { return endpoint == e; })) {
    return api_error(400, "Invalid value: '" + endpoint + "'. Supported values are: '/v1/responses', "
                     "'/v1/chat/completions', '/v1/embeddings', '/v1/completions', '/v1/moderations', "
                     "'/v1/images/generations', '/v1/images/edits', and '/v1/videos'.", "endpoint", "invalid_value");
  }
  if (request["completion_window"] != "24h") {
    return api_error(400, "Invalid value: '" + request["completion_window"].get<std::string>() +
                     "'. Supported values are: '24h'.", "completion_window", "invalid_value");
  }
  ojson metadata = nullptr;
  if (const auto m = request.find("metadata"); m != request.end() && !m->is_null()) {
    if (!m->is_object() || m->size() > 16) {
      return api_error(400, "Invalid 'metadata': expected an object with at most 16 keys.", "metadata", "invalid_value");
    }
    metadata = ojson::object();
    for (const auto& [k, v] : m->items()) {
      if (!v.is_string()) return api_error(400, "Invalid 'metadata': values must be strings.", "metadata", "invalid_type");
      // The spec's Metadata: keys at most 64 characters, values at most 512.
      if (k.size() > 64) {
        return api_error(400, "Invalid 'metadata': keys must be at most 64 characters long.", "metadata", "invalid_value");
      }
      if (v.get_ref<const std::string&>().size() > 512) {
        return api_error(400, "Invalid 'metadata': values must be at most 512 characters long.", "metadata", "invalid_value");
      }
      metadata[k] = v;
    }
  }
  const std::string input_id = request["input_file_id"];
  const auto input = files_.get(input_id);
  if (!input) return api_error(404, "No such File object: " + input_id, "input_file_id", nullptr);
  if (input->purpose != "batch") {
    return api_error(400, "The input file must have been uploaded with purpose 'batch'.", "input_file_id", "invalid_value");
  }

  auto b = std::make_unique<Batch>();
  b->id = next_batch_id();
  b->endpoint = endpoint;
  b->input_file_id = input_id;
  b->api_key = api_key;
  b->metadata = std::move(metadata);
  b->t_created = clock_.now();
  b->created_at = unix_now();
  validate(*b, *input);
  if (b->valid) {
    const std::int64_t limit = queue_limit(b->model);
    const std::int64_t queued = queued_tokens(b->model);
    if (limit > 0 && queued + b->input_tokens > limit) {
      b->valid = false;
      const std::string message = "Enqueued token limit reached for " + b->model + " in organization " +
                                  options_.organization + ". Limit: " + with_commas(limit) +
                                  " enqueued tokens. Please try again once some in_progress batches have been completed.";
      b->errors = ojson{{"object", "list"},
                        {"data", ojson::array({ojson{{"code", "token_limit_exceeded"},
                                                     {"message", message},
                                                     {"param", nullptr},
                                                     {"line", nullptr}}})}};
    }
  }
  const ojson object = batch_object(*b);
  batches_.push_back(std::move(b));
  ApiReply r = ok(object);
  r.model = batches_.back()->model;
  return r;
}

void BatchApi::validate(Batch& b, const StoredFile& input) {
  const BatchSimOptions& o = options_.batch;
  ojson data = ojson::array();
  const auto add = [&](const char* code, std::string message, const char* param, std::uint64_t line) {
    if (data.size() >= kMaxListedErrors) return;
    data.push_back({{"code", code},
                    {"message", std::move(message)},
                    {"param", param ? ojson(param) : ojson(nullptr)},
                    {"line", line > 0 ? ojson(line) : ojson(nullptr)}});
  };
  if (input.bytes > o.max_batch_bytes) {
    add("file_too_large", "The batch input file is larger than the " + with_commas(static_cast<std::int64_t>(o.max_batch_bytes)) +
        " byte maximum.", nullptr, 0);
  } else {
    LineReader reader(input.path);
    std::unordered_set<std::string> ids;
    std::string_view line;
    const tokens::Encoding* encoding = nullptr;
    std::uint64_t offset = reader.bytes_read();
    while (reader.next(line)) {
      const std::uint64_t at = offset;
      offset = reader.bytes_read();
      const std::uint64_t n = reader.line_no();
      if (is_blank_line(line)) continue;
      if (b.offsets.size() >= o.max_batch_lines) {
        add("too_many_requests", "The batch input file has more than " + with_commas(static_cast<std::int64_t>(o.max_batch_lines)) +
            " requests.", nullptr, n);
        break;
      }
      b.offsets.push_back(at);
      b.lengths.push_back(static_cast<std::uint32_t>(line.size()));
      const json j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        add("invalid_json_line", "This line is not parseable as valid JSON.", nullptr, n);
        continue;
      }
      if (!j.contains("custom_id") || !j["custom_id"].is_string()) {
        add("missing_required_parameter", "Missing required parameter: 'custom_id'.", "custom_id", n);
        continue;
      }
      if (!ids.insert(j["custom_id"].get<std::string>()).second) {
        add("duplicate_custom_id", "The custom_id for this request is a duplicate of another request. The custom_id "
            "parameter must be unique for each request in a batch.", "custom_id", n);
        continue;
      }
      if (j.value("method", "") != "POST") {
        add("invalid_value", "Invalid 'method': only POST is supported.", "method", n);
        continue;
      }
      if (j.value("url", "") != b.endpoint) {
        add("mismatched_endpoint", "The URL provided for this request does not match the batch endpoint.", "url", n);
        continue;
      }
      if (!j.contains("body") || !j["body"].is_object()) {
        add("missing_required_parameter", "Missing required parameter: 'body'.", "body", n);
        continue;
      }
      const json& body = j["body"];
      if (!body.contains("model") || !body["model"].is_string()) {
        add("missing_required_parameter", "Missing required parameter: 'body.model'.", "body.model", n);
        continue;
      }
      const std::string model = body["model"];
      if (b.model.empty()) {
        b.model = model;
        if (options_.token_charge == TokenCharge::exact) {
          encoding = &tokens::Encoding::get(
              tokens::builtin_encoding_for_model(model).value_or(tokens::EncodingId::o200k_base));
        }
      } else if (model != b.model) {
        add("mismatched_model", "The provided model differs from the model of other requests in this batch. Each "
            "batch input file must use a single model.", "body.model", n);
        continue;
      }
      if (options_.models.count(model) == 0) {
        add("model_not_found", "The model `" + model + "` does not exist or you do not have access to it.",
            "body.model", n);
        continue;
      }
      if (b.endpoint == "/v1/chat/completions") {
        b.input_tokens += estimate_chat_prompt_tokens(body, encoding);
      } else {
        // embeddings' input; the prompt (completions) or input (responses) counted as text,
        // or as the JSON of input items.
        const char* key = b.endpoint == "/v1/completions" ? "prompt" : "input";
        if (body.contains(key)) {
          const std::int64_t counted = estimate_embedding_input_tokens(body[key], encoding);
          b.input_tokens += counted >= 0 ? counted : estimate_text_tokens(body[key].dump());
        }
      }
    }
    if (b.offsets.empty() && data.empty()) add("empty_file", "The batch input file is empty.", nullptr, 0);
  }
  if (!data.empty()) {
    b.errors = ojson{{"object", "list"}, {"data", data}};
    b.valid = false;
    return;
  }
  b.valid = true;
  b.input_path = input.path;
  // Shuffled order (seeded by the batch id) and each line's fate.
  const std::size_t n = b.offsets.size();
  b.order.resize(n);
  for (std::size_t i = 0; i < n; ++i) b.order[i] = static_cast<std::uint32_t>(i);
  std::uint64_t state = mix64(options_.seed ^ digest_seed(sha256(b.id)));
  for (std::size_t i = n; i > 1; --i) {
    state = mix64(state);
    std::swap(b.order[i - 1], b.order[state % i]);
  }
  b.fate.assign(n, run_it);
  for (std::size_t i = 0; i < n; ++i) {
    const double u = unit_interval(mix64(state ^ mix64(i ^ 0xe1e1ULL)));
    if (u < o.expire_rate) {
      b.fate[i] = expire_it;
    } else if (u < o.expire_rate + o.line_failure_rate) {
      b.fate[i] = fail_it;
    } else if (u < o.expire_rate + o.line_failure_rate + o.zero_status_rate) {
      b.fate[i] = zero_it;
    } else if (u < o.expire_rate + o.line_failure_rate + o.zero_status_rate + o.lost_rate) {
      b.fate[i] = lose_it;
    }
  }
  b.runnable = static_cast<std::size_t>(std::count_if(b.fate.begin(), b.fate.end(), [](std::uint8_t f) { return f != expire_it; }));
}

std::int64_t BatchApi::queue_limit(const std::string& model) const {
  const auto it = options_.batch.queue_limits.find(model);
  return it != options_.batch.queue_limits.end() ? it->second : options_.batch.queue_limit_all;
}

std::int64_t BatchApi::queued_tokens(const std::string& model) const {
  std::int64_t sum = 0;
  for (const auto& b : batches_) {
    if (b->valid && !b->terminal() && b->model == model) sum += b->input_tokens;
  }
  return sum;
}

void BatchApi::advance_all(TimePoint now) {
  for (auto& b : batches_) advance(*b, now);
}

void BatchApi::advance(Batch& b, TimePoint now) {
  if (b.terminal()) return;
  const TimePoint t_ip = b.t_created + scaled(options_.batch.validating);
  if (b.status == "validating" || (b.status == "cancelling" && b.in_progress_at == 0)) {
    if (b.status == "cancelling") {
      if (now >= b.t_cancel + scaled(options_.batch.finalizing)) finish(b, "cancelled");
      return;
    }
    if (now < t_ip) return;
    if (!b.valid) {
      b.status = "failed";
      b.failed_at = unix_now();
      return;
    }
    b.status = "in_progress";
    b.in_progress_at = unix_now();
    b.input_fd = ::open(b.input_path.c_str(), O_RDONLY | O_CLOEXEC);
    b.out_path = files_.scratch_path(b.id + ".output.part");
    b.err_path = files_.scratch_path(b.id + ".errors.part");
    b.out = std::fopen(b.out_path.c_str(), "wb");
    b.err = std::fopen(b.err_path.c_str(), "wb");
  }
  const auto per_line = scaled(options_.batch.per_line);
  if (b.status == "in_progress" || b.status == "cancelling") {
    const TimePoint limit = b.status == "cancelling" ? std::min(now, b.t_cancel) : now;
    std::size_t due = b.runnable;
    if (per_line.count() > 0) {
      const auto elapsed = limit - t_ip;
      due = elapsed.count() <= 0 ? 0 : std::min<std::size_t>(b.runnable, static_cast<std::size_t>(elapsed / per_line));
    }
    run_lines(b, due);
    if (b.status == "cancelling") {
      if (now >= b.t_cancel + scaled(options_.batch.finalizing)) finish(b, "cancelled");
      return;
    }
    if (b.done < b.runnable) return;
    b.status = "finalizing";
    b.finalizing_at = unix_now();
    b.t_finalizing = t_ip + per_line * static_cast<std::int64_t>(b.runnable);
  }
  if (b.status == "finalizing" && now >= b.t_finalizing + scaled(options_.batch.finalizing)) {
    finish(b, b.runnable < b.order.size() ? "expired" : "completed");
  }
}

void BatchApi::run_lines(Batch& b, std::size_t due) {
  std::string raw;
  std::string out;
  while (b.done < due && b.pos < b.order.size()) {
    const std::uint32_t index = b.order[b.pos++];
    if (b.fate[index] == expire_it) continue;
    ++b.done;
    raw.resize(b.lengths[index]);
    const ssize_t got = ::pread(b.input_fd, raw.data(), raw.size(), static_cast<off_t>(b.offsets[index]));
    const json line = got == static_cast<ssize_t>(raw.size()) ? json::parse(raw, nullptr, false) : json();
    const std::string custom_id = line.is_object() ? line.value("custom_id", "") : "";
    const std::uint64_t seq = mix64(options_.seed ^ digest_seed(sha256(b.id + "/" + custom_id)));
    std::uint8_t id_bytes[16];
    for (int i = 0; i < 8; ++i) {
      id_bytes[i] = static_cast<std::uint8_t>(seq >> (8 * i));
      id_bytes[8 + i] = static_cast<std::uint8_t>(index >> (8 * (i % 4)));
    }
    out.clear();
    out += R"({"id":"batch_req_)" + to_hex(id_bytes, sizeof id_bytes) + R"(","custom_id":)" + json(custom_id).dump();
    bool success = false;
    if (b.fate[index] == lose_it) {  // counted, written nowhere
      ++b.completed;
      continue;
    }
    if (b.fate[index] == zero_it) {  // counted as completed, in the output file, no answer
      out += R"(,"response":{"status_code":0,"request_id":"","body":{}},"error":null})" "\n";
      std::fwrite(out.data(), 1, out.size(), b.out);
      ++b.completed;
      continue;
    }
    if (b.fate[index] == fail_it || !line.is_object()) {
      out += R"(,"response":{"status_code":500,"request_id":"req_batchfailure)" + to_hex(id_bytes, 8) +
             R"(","body":{"error":{"message":"The server had an error while processing your request. Sorry about that!",)"
             R"("type":"server_error","param":null,"code":null}}},"error":null})";
    } else {
      const LineAnswer a = answer_(b.endpoint, line["body"].dump(), b.api_key, custom_id, b.id);
      success = a.status == 200;
      // The batch's usage (the Batch object's `usage`): what the answered lines used.
      if (const json u = usage_of(a.body); u.is_object()) {
        b.usage_input += int_field(u, "prompt_tokens", "input_tokens");
        b.usage_output += int_field(u, "completion_tokens", "output_tokens");
      }
      out += R"(,"response":{"status_code":)" + std::to_string(a.status) + R"(,"request_id":)" + json(a.request_id).dump() +
             R"(,"body":)" + (a.body.empty() ? std::string("null") : a.body) + R"(},"error":null})";
    }
    out += '\n';
    std::fwrite(out.data(), 1, out.size(), success ? b.out : b.err);
    ++(success ? b.completed : b.failed);
  }
}

void BatchApi::finish(Batch& b, const char* status) {
  if (std::string_view(status) == "expired" && b.err != nullptr) {
    for (std::size_t i = 0; i < b.order.size(); ++i) {
      if (b.fate[i] != expire_it) continue;
      std::string raw(b.lengths[i], '\0');
      const ssize_t got = ::pread(b.input_fd, raw.data(), raw.size(), static_cast<off_t>(b.offsets[i]));
      const json line = got == static_cast<ssize_t>(raw.size()) ? json::parse(raw, nullptr, false) : json();
      const std::string custom_id = line.is_object() ? line.value("custom_id", "") : "";
      const std::string text = R"({"id":"batch_req_expired)" + std::to_string(i) + R"(","custom_id":)" +
                               json(custom_id).dump() +
                               R"(,"response":null,"error":{"code":"batch_expired","message":"This request could not )"
                               R"(be executed before the completion window expired."}})" "\n";
      std::fwrite(text.data(), 1, text.size(), b.err);
      ++b.failed;
    }
  }
  const auto adopt = [&](std::FILE*& f, const std::string& path, const char* suffix, std::string& id) {
    if (f == nullptr) return;
    const long size = std::ftell(f);
    std::fclose(f);
    f = nullptr;
    if (size > 0) {
      id = files_.add_file(path, b.id + suffix, "batch_output").id;
    } else {
      std::remove(path.c_str());
    }
  };
  adopt(b.out, b.out_path, "_output.jsonl", b.output_file_id);
  adopt(b.err, b.err_path, "_error.jsonl", b.error_file_id);
  if (b.input_fd >= 0) {
    ::close(b.input_fd);
    b.input_fd = -1;
  }
  b.status = status;
  const long long now = unix_now();
  if (b.status == "completed") b.completed_at = now;
  if (b.status == "expired") b.expired_at = now;
  if (b.status == "cancelled") b.cancelled_at = now;
  if (b.finalizing_at == 0 && b.status != "cancelled") b.finalizing_at = now;
}

ApiReply BatchApi::retrieve(std::string_view id) {
  for (const auto& b : batches_) {
    if (b->id == id) {
      ApiReply r = ok(batch_object(*b));
      r.model = b->model;
      return r;
    }
  }
  return api_error(404, "No batch found with id '" + std::string(id) + "'.", nullptr, nullptr);
}

ApiReply BatchApi::list(std::string_view query) {
  std::size_t limit = 20;
  if (const std::string l = query_value(query, "limit"); !l.empty()) {
    limit = static_cast<std::size_t>(std::clamp(std::atol(l.c_str()), 1L, 100L));
  }
  const std::string after = query_value(query, "after");
  ojson data = ojson::array();
  bool skipping = !after.empty();
  bool more = false;
  for (auto it = batches_.rbegin(); it != batches_.rend(); ++it) {  // newest first
    if (skipping) {
      if ((*it)->id == after) skipping = false;
      continue;
    }
    if (data.size() == limit) {
      more = true;
      break;
    }
    data.push_back(batch_object(**it));
  }
  ojson body{{"object", "list"}, {"data", data}};
  body["first_id"] = data.empty() ? ojson(nullptr) : data.front()["id"];
  body["last_id"] = data.empty() ? ojson(nullptr) : data.back()["id"];
  body["has_more"] = more;
  return ok(body);
}

ApiReply BatchApi::cancel(std::string_view id) {
  for (auto& b : batches_) {
    if (b->id != id) continue;
    if (b->terminal() || b->status == "cancelling") {
      return api_error(409, "Cannot cancel a batch with status '" + b->status + "'.", nullptr, nullptr);
    }
    if (b->status != "finalizing") {  // a finalizing batch has run every line: it completes
      b->status = "cancelling";
      b->t_cancel = clock_.now();
      b->cancelling_at = unix_now();
    }
    ApiReply r = ok(batch_object(*b));
    r.model = b->model;
    return r;
  }
  return api_error(404, "No batch found with id '" + std::string(id) + "'.", nullptr, nullptr);
}

ojson BatchApi::batch_object(const Batch& b) const {
  const auto stamp = [](long long t) { return t > 0 ? ojson(t) : ojson(nullptr); };
  const bool counted = b.in_progress_at > 0 || b.status == "completed";
  return ojson{{"id", b.id},
               {"object", "batch"},
               {"endpoint", b.endpoint},
               {"model", b.model.empty() ? ojson(nullptr) : ojson(b.model)},
               {"errors", b.status == "failed" ? b.errors : ojson(nullptr)},
               {"input_file_id", b.input_file_id},
               {"completion_window", "24h"},
               {"status", b.status},
               {"output_file_id", b.output_file_id.empty() ? ojson(nullptr) : ojson(b.output_file_id)},
               {"error_file_id", b.error_file_id.empty() ? ojson(nullptr) : ojson(b.error_file_id)},
               {"created_at", b.created_at},
               {"in_progress_at", stamp(b.in_progress_at)},
               {"expires_at", b.created_at + 86400},
               {"finalizing_at", stamp(b.finalizing_at)},
               {"completed_at", stamp(b.completed_at)},
               {"failed_at", stamp(b.failed_at)},
               {"expired_at", stamp(b.expired_at)},
               {"cancelling_at", stamp(b.cancelling_at)},
               {"cancelled_at", stamp(b.cancelled_at)},
               {"request_counts",
                {{"total", counted ? b.order.size() : 0}, {"completed", b.completed}, {"failed", b.failed}}},
               {"usage",
                {{"input_tokens", b.usage_input},
                 {"input_tokens_details", {{"cached_tokens", 0}}},
                 {"output_tokens", b.usage_output},
                 {"output_tokens_details", {{"reasoning_tokens", 0}}},
                 {"total_tokens", b.usage_input + b.usage_output}}},
               {"metadata", b.metadata}};
}

}  // namespace floodgate::sim
