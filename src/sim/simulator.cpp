#include "sim/simulator.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "floodgate/core/duration.hpp"
#include "floodgate/tokens/encoding.hpp"
#include "floodgate/tokens/model_map.hpp"
#include "sim/content.hpp"
#include "sim/strict_schema.hpp"
#include "sim/token_estimate.hpp"

namespace floodgate::sim {
namespace {

using nlohmann::json;
using ojson = nlohmann::ordered_json;  // response bodies keep the real API's key order
using std::chrono::nanoseconds;

// The encoder the prompt is counted with: null for --token-charge bytes; otherwise the
// model's encoding by OpenAI's published families, o200k_base for unknown names.
const tokens::Encoding* prompt_encoding(const SimOptions& options, const std::string& model) {
  if (options.token_charge == TokenCharge::bytes) return nullptr;
  return &tokens::Encoding::get(tokens::builtin_encoding_for_model(model).value_or(tokens::EncodingId::o200k_base));
}

constexpr std::string_view kChatPath = "/v1/chat/completions";
constexpr std::string_view kCompletionsPath = "/v1/completions";
constexpr std::string_view kResponsesPath = "/v1/responses";
constexpr std::string_view kModerationsPath = "/v1/moderations";
constexpr std::string_view kDefaultModerationModel = "omni-moderation-latest";
constexpr std::string_view kEmbeddingsPath = "/v1/embeddings";
constexpr std::string_view kTranscriptionsPath = "/v1/audio/transcriptions";
constexpr std::string_view kModelsPath = "/v1/models";

constexpr const char* kBadJson =
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have "
    "trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)";
constexpr const char* kNoKey =
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth "
    "(i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the "
    "API from your browser and are prompted for a username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys.";
// The real message shows a masked key; the simulator shows none of it (the key never
// appears in any output).
constexpr const char* kBadKey =
    "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.";
constexpr const char* kQuota =
    "You exceeded your current quota, please check your plan and billing details. For more information on this "
    "error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.";
constexpr const char* kAudioFormats =
    "Invalid file format. Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', "
    "'webm']";
// Azure OpenAI's shapes (as recorded in public bug reports; docs/sim.md, "Dialects").
constexpr const char* kAzureDenied =
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an "
    "active subscription and use a correct regional API endpoint for your resource.";
constexpr const char* kAzureNoDeployment =
    "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, "
    "please wait a moment and try again.";
constexpr const char* k502Html =
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
    "<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n";

std::string_view path_of(std::string_view target) {
  const std::size_t q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

// A request target in the OpenAI form (/v1/...) or one of Azure's:
// /openai/deployments/{deployment}/chat/completions?api-version=... (the deployment names
// the model) and /openai/v1/... (the model in the body).
struct Route {
  std::string path;            // the OpenAI path it maps to (/v1/...), else the path as sent
  bool azure = false;
  std::string deployment;      // Azure deployment form only
  std::string api_version;     // ?api-version= value, if any
};

Route resolve(std::string_view target) {
  Route route;
  const std::string_view path = path_of(target);
  route.path = std::string(path);
  const std::string_view query = path.size() < target.size() ? target.substr(path.size() + 1) : std::string_view{};
  for (std::size_t at = 0; at <= query.size();) {
    std::size_t end = query.find('&', at);
    if (end == std::string_view::npos) end = query.size();
    const std::string_view item = query.substr(at, end - at);
    if (item.rfind("api-version=", 0) == 0) route.api_version = std::string(item.substr(12));
    at = end + 1;
  }
  constexpr std::string_view kAzureV1 = "/openai/v1/";
  constexpr std::string_view kDeployments = "/openai/deployments/";
  if (path.rfind(kAzureV1, 0) == 0) {
    route.azure = true;
    route.path = "/v1/" + std::string(path.substr(kAzureV1.size()));
  } else if (path.rfind(kDeployments, 0) == 0) {
    route.azure = true;
    const std::string_view rest = path.substr(kDeployments.size());
    const std::size_t slash = rest.find('/');
    if (slash != std::string_view::npos && slash > 0) {
      route.deployment = std::string(rest.substr(0, slash));
      route.path = "/v1/" + std::string(rest.substr(slash + 1));
    }
  }
  return route;
}

bool is_known_path(std::string_view path) {
  return path == kChatPath || path == kCompletionsPath || path == kResponsesPath || path == kModerationsPath ||
         path == kEmbeddingsPath ||
         path == kTranscriptionsPath || path == kModelsPath ||
         path.rfind("/v1/models/", 0) == 0 || BatchApi::is_api_path(path) || path == "/_sim/stats" || path == "/_sim/flush" || path == "/_sim/health";
}

bool method_ok(std::string_view method, std::string_view path) {
  if (path.rfind("/_sim/", 0) == 0) return true;
  if (BatchApi::is_api_path(path)) return BatchApi::method_ok(method, path);
  if (path.rfind(kModelsPath, 0) == 0) return method == "GET";
  return method == "POST";
}

std::string lower_ext(std::string_view filename) {
  const std::size_t dot = filename.rfind('.');
  if (dot == std::string_view::npos) return {};
  std::string ext(filename.substr(dot + 1));
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

bool audio_ext_ok(const std::string& ext) {
  static constexpr const char* kOk[] = {"flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"};
  return std::any_of(std::begin(kOk), std::end(kOk), [&](const char* e) { return ext == e; });
}

std::string format_seconds_plain(nanoseconds d) {
  return format_duration(d);
}

std::string timestamp(double seconds, char sep) {
  const auto total_ms = static_cast<long long>(std::llround(seconds * 1000));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld%c%03lld", total_ms / 3600000, (total_ms / 60000) % 60,
                (total_ms / 1000) % 60, sep, total_ms % 1000);
  return buf;
}

ojson error_body(std::string_view message, std::string_view type, const char* param, const char* code) {
  return ojson{{"error",
                {{"message", std::string(message)},
                 {"type", std::string(type)},
                 {"param", param ? ojson(param) : ojson(nullptr)},
                 {"code", code ? ojson(code) : ojson(nullptr)}}}};
}

// A streamed chat answer (stream: true) as server-sent events, written at once: role
// chunk, content in pieces of about four words, a finish chunk per choice, the usage
// chunk when stream_options.include_usage, then "data: [DONE]".
std::string stream_events(std::string_view id, long long created, const std::string& model,
                          const std::vector<std::pair<std::string, const char*>>& answers, std::int64_t prompt_tokens,
                          std::int64_t completion_tokens, bool include_usage) {
  const std::string head = R"({"id":"chatcmpl-)" + std::string(id) + R"(","object":"chat.completion.chunk","created":)" +
                           std::to_string(created) + R"(,"model":)" + json(model).dump() +
                           R"(,"system_fingerprint":"fp_floodgate","choices":[)";
  const std::string tail = include_usage ? R"(],"usage":null})" : "]}";
  std::string out;
  const auto event = [&](const std::string& choice) {
    out += "data: ";
    out += head;
    out += choice;
    out += tail;
    out += "\n\n";
  };
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const std::string index = R"({"index":)" + std::to_string(i);
    event(index + R"(,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null})");
    const std::string& text = answers[i].first;
    std::size_t at = 0;
    while (at < text.size()) {
      std::size_t end = at;
      for (int words = 0; words < 4 && end < text.size(); ++words) {
        end = text.find(' ', end + 1);
        if (end == std::string::npos) end = text.size();
      }
      event(index + R"(,"delta":{"content":)" + json(text.substr(at, end - at)).dump() +
            R"(},"logprobs":null,"finish_reason":null})");
      at = end;
    }
    event(index + R"(,"delta":{},"logprobs":null,"finish_reason":")" + answers[i].second + R"("})");
  }
  if (include_usage) {
    out += "data: " + head + R"(],"usage":{"prompt_tokens":)" + std::to_string(prompt_tokens) +
           R"(,"completion_tokens":)" + std::to_string(completion_tokens) + R"(,"total_tokens":)" +
           std::to_string(prompt_tokens + completion_tokens) + "}}\n\n";
  }
  out += "data: [DONE]\n\n";
  return out;
}

}  // namespace

std::int64_t admission_charge(const ChargeModel& charge, std::int64_t input_tokens,
                              std::optional<std::int64_t> max_tokens, std::int64_t n) {
  const std::int64_t allowance = max_tokens.value_or(charge.default_allowance) * n;
  switch (charge.rule) {
    case ChargeRule::input_plus_allowance: return input_tokens + allowance;
    case ChargeRule::max_input_allowance: return std::max(input_tokens, allowance);
    case ChargeRule::flat: return charge.flat_tokens;
    case ChargeRule::context: return max_tokens ? input_tokens + allowance : charge.context_tokens;
  }
  return input_tokens + allowance;
}

// ---------------------------------------------------------------------------------------
// Upload

Upload::Upload(std::string boundary) : parser_(std::move(boundary), *this) {}

Upload::~Upload() = default;

bool Upload::feed(std::string_view chunk) {
  body_bytes_ += chunk.size();
  body_hash_.update(chunk);
  return parser_.feed(chunk);
}

void Upload::on_part_begin(const PartHeaders& headers) {
  current_name_ = headers.name;
  current_value_.clear();
  in_file_ = headers.name == "file" && headers.has_filename;
  if (in_file_) {
    file_seen_ = true;
    filename_ = headers.filename;
  }
}

void Upload::on_part_data(std::string_view data) {
  if (in_file_ && spool_) {
    spool_->write(data);
  } else if (in_file_) {
    file_hash_.update(data);
    audio_.feed(data);
  } else if (current_value_.size() < 64 * 1024) {
    current_value_.append(data.substr(0, 64 * 1024 - current_value_.size()));
  }
}

void Upload::on_part_end() {
  if (!in_file_) fields_.emplace_back(current_name_, current_value_);
  in_file_ = false;
}

// ---------------------------------------------------------------------------------------
// Simulator

struct Simulator::Context {
  Context(const RequestHead& h, std::string id)
      : head(h), route(resolve(h.target)), path(route.path), request_id(std::move(id)) {}
  const RequestHead& head;
  Route route;
  std::string_view path;  // the OpenAI form of the path (route.path)
  std::string request_id;
  std::string api_key;  // in memory only: never logged, never echoed
  bool authorized = false;
  std::string model;
  const ModelSpec* spec = nullptr;
  bool transcription = false;
  bool admitted = false;
  TimePoint admitted_at{};
  std::int64_t tokens_charged = 0;       // counted against the limits (after any refund)
  std::int64_t charge_at_admission = 0;  // taken when admitted
  std::optional<RateHeaders> rate;
  std::string body_sha256;
  std::uint64_t upload_bytes = 0;
  std::string error_code;
  std::string error_type;
  std::string rate_limit_type;
  bool insufficient_quota = false;
  FaultKind fault = FaultKind::none;
  std::uint64_t seed = 0;
  std::string_view batch_id;  // a line of this batch: no rate limits, no faults
};

Simulator::Simulator(SimOptions options, const Clock& clock) : options_(std::move(options)), clock_(clock) {
  if (options_.models.empty()) options_.models = default_models();
  if (options_.embedding_dim_override > 0) {
    for (auto& [name, spec] : options_.models) {
      if (spec.kind == ModelKind::embedding) spec.embedding_dim = options_.embedding_dim_override;
    }
  }
  if (!options_.ledger_path.empty()) ledger_ = std::make_unique<Ledger>(options_.ledger_path);
  batch_api_ = std::make_unique<BatchApi>(options_, clock_,
                                          [this](std::string_view url, std::string_view body, const std::string& key,
                                                 std::string_view custom_id, std::string_view batch_id) {
                                            return batch_line(url, body, key, custom_id, batch_id);
                                          });
}

Simulator::~Simulator() = default;

std::string Simulator::next_request_id() {
  const std::uint64_t n = request_counter_.fetch_add(1);
  const std::uint64_t a = mix64(options_.seed ^ mix64(n));
  const std::uint64_t b = mix64(a ^ n);
  std::uint8_t bytes[16];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<std::uint8_t>(a >> (8 * i));
    bytes[8 + i] = static_cast<std::uint8_t>(b >> (8 * i));
  }
  return "req_" + to_hex(bytes, 16);
}

const ModelSpec* Simulator::model_spec(const std::string& name) const {
  const auto it = options_.models.find(name);
  return it == options_.models.end() ? nullptr : &it->second;
}

bool Simulator::is_upload(const RequestHead& head) noexcept {
  const std::string path = resolve(head.target).path;
  return (path == kTranscriptionsPath && head.method == "POST") || BatchApi::is_upload(head.method, path);
}

std::string Simulator::api_version(const Context& ctx) {
  return ctx.route.api_version.empty() ? "v1" : ctx.route.api_version;
}

// Whether `spec` is served on the route the request came by: Azure-dialect models on the
// /openai/... routes only, the others on /v1/... only. An unknown model on an Azure route is Azure's DeploymentNotFound.
std::optional<Reply> Simulator::check_served(Context& ctx) {
  const bool azure_model = ctx.spec != nullptr && ctx.spec->dialect == Dialect::azure;
  if (ctx.route.azure && !azure_model) {
    ctx.spec = nullptr;
    return azure_error(ctx, 404, "DeploymentNotFound", kAzureNoDeployment);
  }
  if (ctx.route.azure || !azure_model) return std::nullopt;
  ctx.spec = nullptr;
  return error(ctx, 404, "The model `" + ctx.model + "` does not exist or you do not have access to it.",
               "invalid_request_error", nullptr, "model_not_found");
}

Dialect Simulator::dialect_of(const Context& ctx) const {
  if (ctx.spec != nullptr) return ctx.spec->dialect;
  return ctx.route.azure ? Dialect::azure : options_.dialect;
}

Reply Simulator::error(Context& ctx, int status, std::string_view message, std::string_view type,
                       const char* param, const char* code) {
  Reply reply;
  reply.status = status;
  reply.body = error_body(message, type, param, code).dump();
  ctx.error_type = std::string(type);
  ctx.error_code = code ? code : "";
  finish(ctx, reply);
  return reply;
}

std::optional<Reply> Simulator::azure_error(Context& ctx, int status, std::string_view code, std::string_view message) {
  Reply reply;
  reply.status = status;
  reply.body = ojson{{"error", {{"code", std::string(code)}, {"message", std::string(message)}}}}.dump();
  ctx.error_code = std::string(code);
  finish(ctx, reply);
  return reply;
}

std::optional<Reply> Simulator::authorize(Context& ctx) {
  if (ctx.route.azure) {
    // Azure: the key in an `api-key` header; a Bearer header is an Entra ID token, which
    // the simulator does not issue, so it is refused like a wrong key.
    std::string_view key = ctx.head.api_key;
    while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
    while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
    if (key.empty() || (!options_.api_keys.empty() &&
                        std::find(options_.api_keys.begin(), options_.api_keys.end(), key) == options_.api_keys.end())) {
      return azure_error(ctx, 401, "401", kAzureDenied);
    }
    ctx.api_key = std::string(key);
    ctx.authorized = true;
    return std::nullopt;
  }
  std::string_view auth = ctx.head.authorization;
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() < kBearer.size() || !std::equal(kBearer.begin(), kBearer.end(), auth.begin(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
      })) {
    return error(ctx, 401, kNoKey, "invalid_request_error", nullptr, nullptr);
  }
  auth.remove_prefix(kBearer.size());
  while (!auth.empty() && auth.front() == ' ') auth.remove_prefix(1);
  while (!auth.empty() && auth.back() == ' ') auth.remove_suffix(1);
  if (auth.empty()) return error(ctx, 401, kNoKey, "invalid_request_error", nullptr, nullptr);
  if (!options_.api_keys.empty() &&
      std::find(options_.api_keys.begin(), options_.api_keys.end(), auth) == options_.api_keys.end()) {
    return error(ctx, 401, kBadKey, "invalid_request_error", nullptr, "invalid_api_key");
  }
  ctx.api_key = std::string(auth);
  ctx.authorized = true;
  return std::nullopt;
}

void Simulator::finish(Context& ctx, Reply& reply) {
  auto& h = reply.headers;
  const Dialect dialect = dialect_of(ctx);
  h.emplace_back("x-request-id", ctx.request_id);
  if (dialect == Dialect::azure) {
    h.emplace_back("apim-request-id", ctx.request_id);
  } else {
    h.emplace_back("openai-organization", options_.organization);
    h.emplace_back("openai-version", "2020-10-01");
  }
  h.emplace_back("openai-processing-ms", std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(reply.delay).count()));
  RateHeaders rate;
  if (ctx.rate) {
    rate = *ctx.rate;
  } else if (ctx.authorized && ctx.spec != nullptr) {
    rate = limits_.peek(ctx.api_key, ctx.model, ctx.spec->limits, clock_.now());
  }
  const bool tokens = !ctx.transcription;
  switch (dialect) {
    case Dialect::openai:
      h.emplace_back("x-ratelimit-limit-requests", std::to_string(rate.limit_requests));
      if (tokens) h.emplace_back("x-ratelimit-limit-tokens", std::to_string(rate.limit_tokens));
      h.emplace_back("x-ratelimit-remaining-requests", std::to_string(rate.remaining_requests));
      if (tokens) h.emplace_back("x-ratelimit-remaining-tokens", std::to_string(rate.remaining_tokens));
      h.emplace_back("x-ratelimit-reset-requests", format_seconds_plain(rate.reset_requests));
      if (tokens) h.emplace_back("x-ratelimit-reset-tokens", format_seconds_plain(rate.reset_tokens));
      break;
    case Dialect::azure:  // remaining only: no limit, no reset
      h.emplace_back("x-ratelimit-remaining-requests", std::to_string(rate.remaining_requests));
      if (tokens) h.emplace_back("x-ratelimit-remaining-tokens", std::to_string(rate.remaining_tokens));
      break;
    case Dialect::groq:  // the requests headers are the per-day figures, the tokens ones per minute
      h.emplace_back("x-ratelimit-limit-requests", std::to_string(rate.limit_requests_day));
      if (tokens) h.emplace_back("x-ratelimit-limit-tokens", std::to_string(rate.limit_tokens));
      h.emplace_back("x-ratelimit-remaining-requests", std::to_string(rate.remaining_requests_day));
      if (tokens) h.emplace_back("x-ratelimit-remaining-tokens", std::to_string(rate.remaining_tokens));
      h.emplace_back("x-ratelimit-reset-requests", format_seconds_plain(rate.reset_requests_day));
      if (tokens) h.emplace_back("x-ratelimit-reset-tokens", format_seconds_plain(rate.reset_tokens));
      break;
    case Dialect::none: break;
  }

  Outcome outcome;
  outcome.status = reply.status;
  outcome.model = ctx.spec != nullptr ? std::string_view(ctx.model) : std::string_view{};
  outcome.admitted = ctx.admitted;
  outcome.tokens_charged = ctx.tokens_charged;
  outcome.rate_limit_type = ctx.rate_limit_type;
  outcome.insufficient_quota = ctx.insufficient_quota;
  outcome.fault = reply.fault;
  outcome.upload_bytes = ctx.upload_bytes;
  stats_.record(outcome, clock_.now());

  if (ledger_) {
    LedgerEntry e;
    e.request_id = ctx.request_id;
    e.method = ctx.head.method;
    e.path = path_of(ctx.head.target);  // as sent: an Azure deployment URL stays one
    e.model = ctx.model;
    e.status = reply.status;
    e.error_code = ctx.error_code;
    e.error_type = ctx.error_type;
    e.admitted = ctx.admitted;
    e.admitted_ms = std::chrono::duration_cast<std::chrono::milliseconds>(ctx.admitted_at.time_since_epoch()).count();
    e.tokens_charged = ctx.tokens_charged;
    e.charge_at_admission = ctx.charge_at_admission;
    e.body_sha256 = ctx.body_sha256;
    e.upload_bytes = ctx.upload_bytes;
    e.client_request_id = ctx.head.client_request_id;
    e.fault = reply.fault == FaultKind::none ? std::string_view{} : std::string_view(to_string(reply.fault));
    e.batch_id = ctx.batch_id;
    ledger_->append(e);
  }
}

FaultKind Simulator::draw_fault() {
  if (options_.fault_rate <= 0 || options_.faults.empty()) return FaultKind::none;
  const std::uint64_t n = fault_counter_.fetch_add(1);
  const std::uint64_t r = mix64(options_.seed ^ mix64(n ^ 0xfa017ULL));
  if (unit_interval(r) >= options_.fault_rate) return FaultKind::none;
  return options_.faults[mix64(r) % options_.faults.size()];
}

bool Simulator::draw_invalid_content() {
  if (options_.invalid_content_rate <= 0) return false;
  const std::uint64_t n = invalid_counter_.fetch_add(1);
  return unit_interval(mix64(options_.seed ^ mix64(n ^ 0x1a7a11dULL))) < options_.invalid_content_rate;
}

nanoseconds Simulator::latency(std::int64_t completion_tokens) {
  const LatencyModel& m = options_.latency;
  switch (m.kind) {
    case LatencyKind::none: return nanoseconds{0};
    case LatencyKind::fixed: return m.fixed;
    case LatencyKind::random: {
      const std::uint64_t n = latency_counter_.fetch_add(1);
      const double u = unit_interval(mix64(options_.seed ^ mix64(n ^ 0x1a7e9cULL)));
      return m.fixed + nanoseconds{static_cast<nanoseconds::rep>(u * static_cast<double>((m.upper - m.fixed).count()))};
    }
    case LatencyKind::per_token: return m.fixed * std::max<std::int64_t>(completion_tokens, 0);
  }
  return nanoseconds{0};
}

void Simulator::spend(const ModelSpec& spec, std::int64_t input_tokens, std::int64_t output_tokens) {
  const std::lock_guard lock(quota_mutex_);
  spent_tokens_ += input_tokens + output_tokens;
  spent_usd_ += (static_cast<double>(input_tokens) * spec.usd_per_1m_input +
                 static_cast<double>(output_tokens) * spec.usd_per_1m_output) / 1e6;
}

// Quota, then a 5xx fault, then the rate limits. nullopt: admitted (and charged).
std::optional<Reply> Simulator::gate(Context& ctx, std::int64_t tokens, bool transcription) {
  {
    const std::lock_guard lock(quota_mutex_);
    const bool out_of_tokens = options_.quota_tokens && spent_tokens_ >= *options_.quota_tokens;
    const bool out_of_usd = options_.quota_usd && spent_usd_ >= *options_.quota_usd;
    if (out_of_tokens || out_of_usd) {
      ctx.insufficient_quota = true;
      return error(ctx, 429, kQuota, "insufficient_quota", nullptr, "insufficient_quota");
    }
  }
  if (!ctx.batch_id.empty()) {
    // A batch line: the Batch API has its own queue, not these limits, so it is answered
    // without being admitted (nor counted in the real-time windows); it is still charged.
    ctx.tokens_charged = tokens;
    ctx.charge_at_admission = tokens;
    return std::nullopt;
  }
  const FaultKind fault = draw_fault();
  if (fault == FaultKind::http_500 || fault == FaultKind::http_502 || fault == FaultKind::http_503) {
    Reply reply;
    reply.fault = fault;
    if (fault == FaultKind::http_500) {
      reply.status = 500;
      reply.body = error_body("The server had an error while processing your request. Sorry about that!",
                              "server_error", nullptr, nullptr).dump();
    } else if (fault == FaultKind::http_502) {
      reply.status = 502;
      reply.content_type = "text/html";
      reply.body = k502Html;
    } else {
      reply.status = 503;
      reply.body = error_body("The engine is currently overloaded, please try again later.", "server_error",
                              nullptr, nullptr).dump();
    }
    ctx.error_type = "server_error";
    finish(ctx, reply);
    return reply;
  }
  ctx.fault = fault;
  ModelLimits limits = ctx.spec->limits;
  if (transcription) {
    limits.tokens_per_minute = 0;
    limits.tokens_per_day = 0;
  }
  const TimePoint now = clock_.now();
  const Admission a = limits_.admit(ctx.api_key, ctx.model, limits, tokens, now);
  ctx.rate = a.headers;
  if (a.admitted) {
    ctx.admitted = true;
    ctx.admitted_at = now;
    ctx.tokens_charged = tokens;
    ctx.charge_at_admission = tokens;
    return std::nullopt;
  }
  ctx.fault = FaultKind::none;  // a refused request is not also a fault
  ctx.rate_limit_type = error_type(a.dimension);
  std::string message;
  if (a.never_fits) {
    message = "Request too large for " + ctx.model + " in organization " + options_.organization + " on " +
              describe(a.dimension) + ": Limit " + std::to_string(a.limit) + ", Requested " +
              std::to_string(a.requested) +
              ". The input or output tokens must be reduced in order to run successfully. Visit "
              "https://platform.openai.com/account/rate-limits to learn more.";
  } else {
    message = "Rate limit reached for " + ctx.model + " in organization " + options_.organization + " on " +
              describe(a.dimension) + ": Limit " + std::to_string(a.limit) + ", Used " + std::to_string(a.used) +
              ", Requested " + std::to_string(a.requested) + ". Please try again in " +
              format_duration(a.retry_after) +
              ". Visit https://platform.openai.com/account/rate-limits to learn more.";
  }
  const Dialect dialect = ctx.spec->dialect;
  Reply reply;
  reply.status = 429;
  reply.body = error_body(message, error_type(a.dimension), nullptr, "rate_limit_exceeded").dump();
  if (dialect == Dialect::azure) {
    const bool requests = a.dimension == LimitDimension::requests_per_minute || a.dimension == LimitDimension::requests_per_day;
    const std::string operation = ctx.path == kEmbeddingsPath ? "Embeddings_Create" : ctx.transcription ? "Transcriptions_Create" : "ChatCompletions_Create";
    const auto secs = std::chrono::ceil<std::chrono::seconds>(a.retry_after).count();
    const std::string azure_message =
        "Requests to the " + operation + " Operation under Azure OpenAI API version " + api_version(ctx) +
        " have exceeded " + (requests ? "call" : "token") + " rate limit of your current OpenAI S0 pricing tier. " +
        "Please retry after " + std::to_string(std::max<long long>(secs, 1)) +
        " seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default "
        "rate limit.";
    reply.body = ojson{{"error", {{"code", "429"}, {"message", azure_message}}}}.dump();
  }
  if (!a.never_fits && dialect != Dialect::none) {
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(a.retry_after).count();
    const auto secs = std::chrono::ceil<std::chrono::seconds>(a.retry_after).count();
    reply.headers.emplace_back("retry-after", std::to_string(std::max<long long>(secs, 1)));
    reply.headers.emplace_back("retry-after-ms", std::to_string(std::max<long long>(ms, 1)));
  }
  ctx.error_type = error_type(a.dimension);
  ctx.error_code = "rate_limit_exceeded";
  finish(ctx, reply);
  return reply;
}

std::optional<Reply> Simulator::check_head(const RequestHead& head, std::optional<std::uint64_t> content_length) {
  const Route route = resolve(head.target);
  const std::string_view path = route.path;
  if (is_known_path(path) && method_ok(head.method, path) && path.rfind("/_sim/", 0) != 0) {
    Context ctx(head, next_request_id());
    ctx.transcription = is_upload(head);
    if (auto refused = authorize(ctx)) {
      refused->close = content_length.value_or(0) > 0;  // do not read a body we refuse
      return refused;
    }
    if (content_length && *content_length > body_limit(head)) return too_large(head, 0, *content_length);
  }
  return std::nullopt;
}

Reply Simulator::too_large(const RequestHead& head, std::uint64_t bytes_read, std::uint64_t declared) {
  Context ctx(head, next_request_id());
  ctx.upload_bytes = bytes_read;
  ctx.transcription = is_upload(head);
  const std::string message = "Maximum content size limit (" + std::to_string(options_.max_body_bytes) +
                              ") exceeded (" + std::to_string(std::max({bytes_read, declared, options_.max_body_bytes + 1})) +
                              " bytes read)";
  Reply reply = error(ctx, 413, message, "server_error", nullptr, nullptr);
  reply.close = true;
  return reply;
}

Reply Simulator::bad_http() {
  Reply reply;
  reply.status = 400;
  reply.body = error_body("Bad request", "invalid_request_error", nullptr, nullptr).dump();
  reply.close = true;
  return reply;
}

Reply Simulator::handle(const RequestHead& head, std::string_view body) {
  Context ctx(head, next_request_id());
  const auto digest = sha256(body);
  ctx.body_sha256 = to_hex(digest.data(), digest.size());
  ctx.seed = digest_seed(digest);
  ctx.upload_bytes = body.size();
  return route(ctx, body);
}

Reply Simulator::route(Context& ctx, std::string_view body) {
  const std::string_view path = ctx.path;
  if (path == "/_sim/health") {
    Reply reply;
    reply.body = R"({"ok":true})";
    return reply;
  }
  if (path == "/_sim/stats") {
    if (ledger_) ledger_->flush();
    Reply reply;
    reply.body = stats_json().dump();
    return reply;
  }
  if (path == "/_sim/flush") {
    if (ledger_) ledger_->flush();
    Reply reply;
    reply.body = R"({"flushed":true})";
    return reply;
  }
  if (!is_known_path(path) || !method_ok(ctx.head.method, path)) {
    return error(ctx, 404, "Invalid URL (" + std::string(ctx.head.method) + " " + std::string(path) + ")",
                 "invalid_request_error", nullptr, nullptr);
  }
  if (auto refused = authorize(ctx)) return *refused;
  if (ctx.route.azure && !ctx.route.deployment.empty() && ctx.route.api_version.empty()) {
    return *azure_error(ctx, 404, "404", "Resource not found");  // the deployment form needs ?api-version=
  }
  if (path == kModelsPath || path.rfind("/v1/models/", 0) == 0) return models(ctx);
  if (BatchApi::is_api_path(path)) return files_and_batches(ctx, body);
  if (path == kTranscriptionsPath) {
    return error(ctx, 400, "Invalid Content-Type header (" + std::string(ctx.head.content_type) +
                 "), expected multipart/form-data. (HINT: If you're using curl, you can pass -H 'Content-Type: "
                 "multipart/form-data')", "invalid_request_error", nullptr, nullptr);
  }
  if (body.size() > options_.max_body_bytes) return too_large(ctx.head, body.size());
  json request = json::parse(body, nullptr, false);
  if (request.is_discarded() || !request.is_object()) {
    return error(ctx, 400, kBadJson, "invalid_request_error", nullptr, nullptr);
  }
  const auto model = request.find("model");
  if (!ctx.route.deployment.empty()) {
    ctx.model = ctx.route.deployment;  // Azure: the deployment names the model; the body's is ignored
  } else if (path == kModerationsPath && (model == request.end() || model->is_null())) {
    ctx.model = std::string(kDefaultModerationModel);  // the one endpoint whose model is optional
  } else if (model == request.end() || !model->is_string() || model->get_ref<const std::string&>().empty()) {
    return error(ctx, 400, "you must provide a model parameter", "invalid_request_error", nullptr, nullptr);
  } else {
    ctx.model = model->get<std::string>();
  }
  if (path == kChatPath) return chat(ctx, request);
  if (path == kCompletionsPath) return completions(ctx, request);
  if (path == kResponsesPath) return responses(ctx, request);
  if (path == kModerationsPath) return moderations(ctx, request);
  return embeddings(ctx, request);
}

// The request's model, served and of this kind; else the refusal (404 model_not_found).
std::optional<Reply> Simulator::require_model(Context& ctx, ModelKind kind) {
  ctx.spec = model_spec(ctx.model);
  if (auto refused = check_served(ctx)) return refused;
  if (ctx.spec == nullptr || ctx.spec->kind != kind) {
    ctx.spec = nullptr;
    return error(ctx, 404, "The model `" + ctx.model + "` does not exist or you do not have access to it.",
                 "invalid_request_error", nullptr, "model_not_found");
  }
  return std::nullopt;
}

// An answer on its way: its latency, the fault drawn for the request, then finish().
Reply Simulator::deliver(Context& ctx, Reply reply, std::int64_t completion_tokens) {
  reply.delay = latency(completion_tokens);
  reply.fault = ctx.fault;
  if (ctx.fault == FaultKind::truncated) reply.body.resize(reply.body.size() / 2);
  if (ctx.fault == FaultKind::slow_first_byte) reply.delay += options_.slow_first_byte;
  finish(ctx, reply);
  return reply;
}

Reply Simulator::moderations(Context& ctx, const json& request) {
  const auto input = request.find("input");
  if (input == request.end() || input->is_null()) {
    return error(ctx, 400, "Missing required parameter: 'input'.", "invalid_request_error", "input",
                 "missing_required_parameter");
  }
  // A string, an array of strings, or multimodal items ({"type":"text","text"} / image_url).
  std::vector<std::string> items;
  if (input->is_string()) {
    items.push_back(input->get<std::string>());
  } else if (input->is_array() && !input->empty()) {
    for (const auto& item : *input) {
      if (item.is_string()) {
        items.push_back(item.get<std::string>());
      } else if (item.is_object() && item.contains("text") && item["text"].is_string()) {
        items.push_back(item["text"].get<std::string>());
      } else if (item.is_object() && item.value("type", "") == "image_url") {
        items.push_back(item.dump());
      } else {
        items.clear();
        break;
      }
    }
  }
  if (items.empty()) {
    return error(ctx, 400, "Invalid type for 'input': expected a string, an array of strings, or an array of input items.",
                 "invalid_request_error", "input", "invalid_type");
  }
  std::int64_t tokens = 0;
  for (const auto& text : items) tokens += estimate_text_tokens(text);
  if (auto refused = require_model(ctx, ModelKind::moderation)) return *refused;
  if (auto refused = gate(ctx, tokens, false)) return *refused;
  static constexpr const char* kCategories[] = {
      "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
      "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence",
      "violence/graphic"};
  ojson results = ojson::array();
  for (const auto& text : items) {
    // Seeded by the input itself: the same text gets the same verdict; about 1 in 10 flagged.
    const std::uint64_t seed = digest_seed(sha256(text));
    const bool flagged = seed % 10 == 0;
    ojson categories = ojson::object(), scores = ojson::object(), applied = ojson::object();
    for (std::size_t i = 0; i < std::size(kCategories); ++i) {
      const bool hit = flagged && i == seed / 10 % std::size(kCategories);
      categories[kCategories[i]] = hit;
      scores[kCategories[i]] = hit ? 0.9 : unit_interval(mix64(seed ^ i)) * 0.01;
      applied[kCategories[i]] = ojson::array({"text"});
    }
    results.push_back({{"flagged", flagged}, {"categories", categories}, {"category_scores", scores},
                       {"category_applied_input_types", applied}});
  }
  Reply reply;
  reply.body = ojson{{"id", "modr-" + std::string(std::string_view(ctx.request_id).substr(4))}, {"model", ctx.model},
                     {"results", results}}
                   .dump();
  spend(*ctx.spec, tokens, 0);
  return deliver(ctx, std::move(reply), 0);
}

namespace {

// A 200 chat answer in another endpoint's shape; anything else (errors, a truncated body) as it is.
template <typename Reshape>
void reshape_chat_reply(Reply& reply, Reshape&& reshape) {
  if (reply.status != 200) return;
  const json chat_body = json::parse(reply.body, nullptr, false);
  if (chat_body.is_discarded() || !chat_body.is_object() || !chat_body.contains("choices")) return;
  reply.body = reshape(chat_body).dump();
}

}  // namespace

Reply Simulator::completions(Context& ctx, const json& request) {
  const auto prompt = request.find("prompt");
  if (prompt == request.end() || prompt->is_null()) {
    return error(ctx, 400, "Missing required parameter: 'prompt'.", "invalid_request_error", "prompt",
                 "missing_required_parameter");
  }
  json chat_request{{"model", ctx.model},
                    {"messages", json::array({{{"role", "user"}, {"content", prompt->is_string() ? prompt->get<std::string>() : prompt->dump()}}})},
                    {"max_tokens", 16}};  // the legacy endpoint's default
  for (const char* key : {"max_tokens", "n"}) {
    if (const auto it = request.find(key); it != request.end() && !it->is_null()) chat_request[key] = *it;
  }
  Reply reply = chat(ctx, chat_request);
  reshape_chat_reply(reply, [&](const json& c) {
    ojson choices = ojson::array();
    for (const auto& ch : c["choices"]) {
      choices.push_back({{"text", ch["message"]["content"]}, {"index", ch["index"]}, {"logprobs", nullptr},
                         {"finish_reason", ch["finish_reason"]}});
    }
    return ojson{{"id", "cmpl-" + c["id"].get<std::string>().substr(std::string_view("chatcmpl-").size())},
                 {"object", "text_completion"},
                 {"created", c["created"]},
                 {"model", c["model"]},
                 {"choices", choices},
                 {"usage", c["usage"]}};
  });
  return reply;
}

Reply Simulator::responses(Context& ctx, const json& request) {
  const auto input = request.find("input");
  if (input == request.end() || input->is_null()) {
    return error(ctx, 400, "Missing required parameter: 'input'.", "invalid_request_error", "input",
                 "missing_required_parameter");
  }
  json messages = json::array();
  if (const auto it = request.find("instructions"); it != request.end() && it->is_string()) {
    messages.push_back({{"role", "system"}, {"content", *it}});
  }
  if (input->is_string()) {
    messages.push_back({{"role", "user"}, {"content", *input}});
  } else if (input->is_array()) {
    for (const auto& item : *input) {
      if (!item.is_object()) continue;
      json content = item.value("content", json(""));
      if (content.is_array()) {  // [{"type":"input_text","text":...}, ...]
        std::string text;
        for (const auto& part : content) {
          if (part.is_object() && part.contains("text") && part["text"].is_string()) text += part["text"].get<std::string>();
        }
        content = text;
      }
      messages.push_back({{"role", item.value("role", "user")}, {"content", content}});
    }
  }
  if (messages.empty()) {
    return error(ctx, 400, "Invalid type for 'input': expected a string or an array of input items.",
                 "invalid_request_error", "input", "invalid_type");
  }
  json chat_request{{"model", ctx.model}, {"messages", messages}};
  if (const auto it = request.find("max_output_tokens"); it != request.end() && !it->is_null()) chat_request["max_tokens"] = *it;
  // Structured outputs: text.format {"type":"json_schema","name","schema","strict"}.
  if (const auto text = request.find("text"); text != request.end() && text->is_object() && text->contains("format")) {
    const json& format = (*text)["format"];
    if (format.is_object() && format.value("type", "") == "json_schema") {
      json js{{"name", format.value("name", "answer")}, {"schema", format.value("schema", json::object())}};
      if (format.contains("strict")) js["strict"] = format["strict"];
      chat_request["response_format"] = {{"type", "json_schema"}, {"json_schema", js}};
    } else if (format.is_object() && format.value("type", "") == "json_object") {
      chat_request["response_format"] = {{"type", "json_object"}};
    }
  }
  Reply reply = chat(ctx, chat_request);
  reshape_chat_reply(reply, [&](const json& c) {
    const std::string id = c["id"].get<std::string>().substr(std::string_view("chatcmpl-").size());
    const json& choice = c["choices"][0];
    const bool incomplete = choice["finish_reason"] == "length";
    const json& u = c["usage"];
    return ojson{{"id", "resp_" + id},
                 {"object", "response"},
                 {"created_at", c["created"]},
                 {"status", incomplete ? "incomplete" : "completed"},
                 {"incomplete_details", incomplete ? ojson{{"reason", "max_output_tokens"}} : ojson(nullptr)},
                 {"error", nullptr},
                 {"model", c["model"]},
                 {"output",
                  ojson::array({{{"type", "message"},
                                 {"id", "msg_" + id},
                                 {"status", incomplete ? "incomplete" : "completed"},
                                 {"role", "assistant"},
                                 {"content", ojson::array({{{"type", "output_text"},
                                                            {"text", choice["message"]["content"]},
                                                            {"annotations", ojson::array()}}})}}})},
                 {"usage",
                  {{"input_tokens", u["prompt_tokens"]},
                   {"input_tokens_details", {{"cached_tokens", 0}}},
                   {"output_tokens", u["completion_tokens"]},
                   {"output_tokens_details", {{"reasoning_tokens", 0}}},
                   {"total_tokens", u["total_tokens"]}}}};
  });
  return reply;
}

Reply Simulator::files_and_batches(Context& ctx, std::string_view body) {
  if (BatchApi::is_upload(ctx.head.method, ctx.path)) {
    return error(ctx, 400, "Invalid Content-Type header (" + std::string(ctx.head.content_type) +
                 "), expected multipart/form-data.", "invalid_request_error", nullptr, nullptr);
  }
  return api_reply(ctx, batch_api_->handle(ctx.head.method, ctx.head.target, body, ctx.api_key));
}

Reply Simulator::api_reply(Context& ctx, ApiReply&& api) {
  Reply reply;
  reply.status = api.status;
  reply.body = std::move(api.body);
  reply.body_file = std::move(api.body_file);
  reply.content_type = std::move(api.content_type);
  ctx.error_type = std::move(api.error_type);
  ctx.error_code = std::move(api.error_code);
  ctx.model = std::move(api.model);
  finish(ctx, reply);
  return reply;
}

// One line of a batch, answered by the real-time code: its ledger line names the batch and
// has the custom_id as client_request_id.
LineAnswer Simulator::batch_line(std::string_view url, std::string_view body, const std::string& api_key,
                                 std::string_view custom_id, std::string_view batch_id) {
  const std::string authorization = "Bearer " + api_key;
  RequestHead head;
  head.method = "POST";
  head.target = url;
  head.authorization = authorization;
  head.content_type = "application/json";
  head.client_request_id = custom_id;
  Context ctx(head, next_request_id());
  ctx.batch_id = batch_id;
  const auto digest = sha256(body);
  ctx.body_sha256 = to_hex(digest.data(), digest.size());
  ctx.seed = digest_seed(digest);
  ctx.upload_bytes = body.size();
  Reply reply = route(ctx, body);
  return LineAnswer{reply.status, ctx.request_id, std::move(reply.body)};
}

std::uint64_t Simulator::body_limit(const RequestHead& head) const noexcept {
  if (BatchApi::is_upload(head.method, path_of(head.target))) {
    return std::max(options_.max_body_bytes, options_.batch.max_file_bytes);
  }
  return options_.max_body_bytes;
}

Reply Simulator::models(Context& ctx) {
  const std::string prefix = "/v1/models/";
  ojson data = ojson::array();
  for (const auto& [name, spec] : options_.models) {
    data.push_back({{"id", name}, {"object", "model"}, {"created", 1686935002}, {"owned_by", "system"}});
  }
  Reply reply;
  if (ctx.path.size() > prefix.size()) {
    const std::string name(ctx.path.substr(prefix.size()));
    ctx.model = name;
    if (model_spec(name) == nullptr) {
      return error(ctx, 404, "The model '" + name + "' does not exist", "invalid_request_error", "model",
                   "model_not_found");
    }
    reply.body = ojson{{"id", name}, {"object", "model"}, {"created", 1686935002}, {"owned_by", "system"}}.dump();
  } else {
    reply.body = ojson{{"object", "list"}, {"data", data}}.dump();
  }
  finish(ctx, reply);
  return reply;
}

Reply Simulator::chat(Context& ctx, const json& request) {
  const auto messages = request.find("messages");
  if (messages == request.end()) {
    return error(ctx, 400, "Missing required parameter: 'messages'.", "invalid_request_error", "messages",
                 "missing_required_parameter");
  }
  if (!messages->is_array() || messages->empty()) {
    return error(ctx, 400,
                 messages->is_array() ? "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead."
                                      : "Invalid type for 'messages': expected an array of objects.",
                 "invalid_request_error", "messages", messages->is_array() ? "empty_array" : "invalid_type");
  }
  for (std::size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    if (!m.is_object() || !m.contains("role") || !m.at("role").is_string()) {
      const std::string param = "messages[" + std::to_string(i) + "].role";
      return error(ctx, 400, "Missing required parameter: '" + param + "'.", "invalid_request_error",
                   param.c_str(), "missing_required_parameter");
    }
  }
  ctx.spec = model_spec(ctx.model);
  if (auto refused = check_served(ctx)) return *refused;
  if (ctx.spec == nullptr || ctx.spec->kind != ModelKind::chat) {
    const ModelSpec* spec = ctx.spec;
    ctx.spec = nullptr;
    if (spec != nullptr) {
      return error(ctx, 404,
                   "This is not a chat model and thus not supported in the v1/chat/completions endpoint. Did you "
                   "mean to use v1/completions?",
                   "invalid_request_error", "model", nullptr);
    }
    return error(ctx, 404, "The model `" + ctx.model + "` does not exist or you do not have access to it.",
                 "invalid_request_error", nullptr, "model_not_found");
  }
  std::int64_t n = 1;
  if (const auto it = request.find("n"); it != request.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < 1 || it->get<std::int64_t>() > 128) {
      return error(ctx, 400, "Invalid 'n': integer below minimum value. Expected a value >= 1 and <= 128.",
                   "invalid_request_error", "n", "integer_below_min_value");
    }
    n = it->get<std::int64_t>();
  }
  std::optional<std::int64_t> max_tokens;
  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    if (const auto it = request.find(key); it != request.end() && !it->is_null()) {
      if (!it->is_number_integer() || it->get<std::int64_t>() < 1) {
        const std::string msg = std::string("Invalid '") + key + "': integer below minimum value. Expected a value >= 1.";
        return error(ctx, 400, msg, "invalid_request_error", key, "integer_below_min_value");
      }
      if (!max_tokens) max_tokens = it->get<std::int64_t>();
    }
  }
  const json* schema = nullptr;
  if (const auto fmt = request.find("response_format"); fmt != request.end() && fmt->is_object()) {
    const std::string type = fmt->value("type", "");
    if (type == "json_schema") {
      const auto js = fmt->find("json_schema");
      if (js == fmt->end() || !js->is_object() || !js->contains("schema")) {
        return error(ctx, 400, "Missing required parameter: 'response_format.json_schema'.",
                     "invalid_request_error", "response_format.json_schema", "missing_required_parameter");
      }
      schema = &js->at("schema");
      if (const auto strict = js->find("strict"); strict != js->end() && *strict == true) {
        const std::string name = js->contains("name") && js->at("name").is_string() ? js->at("name").get<std::string>() : "";
        if (auto problem = strict_schema_error(*schema, name); !problem.empty()) {
          return error(ctx, 400, problem, "invalid_request_error", "response_format", "invalid_json_schema");
        }
      }
    } else if (type != "text" && type != "json_object") {
      return error(ctx, 400, "Invalid value: '" + type + "'. Supported values are: 'json_object', 'json_schema', and 'text'.",
                   "invalid_request_error", "response_format.type", "invalid_value");
    }
  }
  const bool stream = request.contains("stream") && request["stream"].is_boolean() && request["stream"].get<bool>();
  const std::int64_t prompt_tokens = estimate_chat_prompt_tokens(request, prompt_encoding(options_, ctx.model));
  const std::int64_t charge = admission_charge(ctx.spec->charge, prompt_tokens, max_tokens, n);
  if (auto refused = gate(ctx, charge, false)) return *refused;

  // Built by hand (not through a JSON DOM): this is the simulator's hot path.
  std::string choices;
  std::vector<std::pair<std::string, const char*>> answers;  // for streaming
  std::int64_t completion_tokens = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint64_t seed = mix64(ctx.seed ^ static_cast<std::uint64_t>(i));
    std::string content;
    const char* finish_reason = "stop";
    if (schema != nullptr) {
      content = draw_invalid_content() ? invalid_schema_content(*schema, seed) : schema_instance(*schema, seed).dump();
    } else if (request.contains("response_format") && request["response_format"].value("type", "") == "json_object") {
      content = ojson{{"answer", completion_text(seed, 4)}}.dump();
    } else {
      std::int64_t want = natural_completion_tokens(seed);
      if (max_tokens && *max_tokens < want) {
        want = *max_tokens;
        finish_reason = "length";
      }
      content = completion_text(seed, want);
    }
    completion_tokens += estimate_text_tokens(content);
    if (stream) {
      answers.emplace_back(std::move(content), finish_reason);
      continue;
    }
    if (i > 0) choices += ',';
    choices += R"({"index":)";
    choices += std::to_string(i);
    choices += R"(,"message":{"role":"assistant","content":)";
    choices += json(content).dump();
    choices += R"(,"refusal":null},"logprobs":null,"finish_reason":")";
    choices += finish_reason;
    choices += R"("})";
  }
  spend(*ctx.spec, prompt_tokens, completion_tokens);
  if (ctx.spec->charge.refund_usage && ctx.batch_id.empty()) {
    // The charge becomes the real usage once the answer is ready (here: at once; the
    // latency only delays its delivery).
    const std::int64_t usage = prompt_tokens + completion_tokens;
    limits_.settle(ctx.api_key, ctx.model, ctx.spec->limits, ctx.admitted_at, usage - charge, clock_.now());
    ctx.tokens_charged = usage;
  }
  const auto created = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count();
  if (stream) {
    Reply reply;
    reply.content_type = "text/event-stream; charset=utf-8";
    reply.body = stream_events(std::string_view(ctx.request_id).substr(4), created, ctx.model, answers,
                               prompt_tokens, completion_tokens,
                             request.contains("stream_options") && request["stream_options"].is_object() &&
                                 request["stream_options"].value("include_usage", false));
    return deliver(ctx, std::move(reply), completion_tokens);
  }
  std::string body;
  body.reserve(320 + choices.size());
  body += R"({"id":"chatcmpl-)";
  body += std::string_view(ctx.request_id).substr(4);
  body += R"(","object":"chat.completion","created":)";
  body += std::to_string(created);
  body += R"(,"model":)";
  body += json(ctx.model).dump();
  body += R"(,"choices":[)";
  body += choices;
  body += R"(],"usage":{"prompt_tokens":)";
  body += std::to_string(prompt_tokens);
  body += R"(,"completion_tokens":)";
  body += std::to_string(completion_tokens);
  body += R"(,"total_tokens":)";
  body += std::to_string(prompt_tokens + completion_tokens);
  body += R"(},"service_tier":"default","system_fingerprint":"fp_floodgate"})";
  Reply reply;
  reply.body = std::move(body);
  return deliver(ctx, std::move(reply), completion_tokens);
}

Reply Simulator::embeddings(Context& ctx, const json& request) {
  const auto input = request.find("input");
  if (input == request.end() || input->is_null()) {
    return error(ctx, 400, "Missing required parameter: 'input'.", "invalid_request_error", "input",
                 "missing_required_parameter");
  }
  const std::int64_t tokens = estimate_embedding_input_tokens(*input, prompt_encoding(options_, ctx.model));
  if (tokens < 0) {
    return error(ctx, 400, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
                 "invalid_request_error", nullptr, nullptr);
  }
  if (auto refused = require_model(ctx, ModelKind::embedding)) return *refused;
  int dim = ctx.spec->embedding_dim;
  if (const auto d = request.find("dimensions"); d != request.end() && !d->is_null()) {
    if (!d->is_number_integer() || d->get<int>() < 1 || d->get<int>() > dim) {
      return error(ctx, 400, "Invalid 'dimensions': must be between 1 and " + std::to_string(dim) + ".",
                   "invalid_request_error", "dimensions", "invalid_value");
    }
    dim = d->get<int>();
  }
  const std::string encoding = request.value("encoding_format", "float");
  if (encoding != "float" && encoding != "base64") {
    return error(ctx, 400, "Invalid value: '" + encoding + "'. Supported values are: 'float' and 'base64'.",
                 "invalid_request_error", "encoding_format", "invalid_value");
  }
  if (auto refused = gate(ctx, tokens, false)) return *refused;

  // One vector per input item (a string or a token array), seeded by the item itself.
  std::vector<std::string> items;
  if (input->is_string()) {
    items.push_back(input->get<std::string>());
  } else if (!input->empty() && (*input)[0].is_number_integer()) {
    items.push_back(input->dump());
  } else {
    for (const auto& item : *input) items.push_back(item.is_string() ? item.get<std::string>() : item.dump());
  }
  std::string body = R"({"object":"list","data":[)";
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto vec = embedding_vector(digest_seed(sha256(items[i])) ^ static_cast<std::uint64_t>(dim), dim);
    if (i > 0) body += ',';
    body += R"({"object":"embedding","index":)" + std::to_string(i) + R"(,"embedding":)";
    if (encoding == "base64") {
      body += '"';
      body += base64_encode(std::string_view(reinterpret_cast<const char*>(vec.data()), vec.size() * sizeof(float)));
      body += '"';
    } else {
      body += json(vec).dump();
    }
    body += '}';
  }
  body += R"(],"model":)" + json(ctx.model).dump() + R"(,"usage":{"prompt_tokens":)" + std::to_string(tokens) +
          R"(,"total_tokens":)" + std::to_string(tokens) + "}}";
  spend(*ctx.spec, tokens, 0);
  Reply reply;
  reply.body = std::move(body);
  return deliver(ctx, std::move(reply), 0);
}

std::unique_ptr<Upload> Simulator::begin_upload(const RequestHead& head, Reply& refusal) {
  const auto boundary = MultipartParser::boundary_from_content_type(head.content_type);
  if (!boundary) {
    Context ctx(head, next_request_id());
    ctx.transcription = true;
    if (auto refused = authorize(ctx)) {
      refusal = *refused;
      return nullptr;
    }
    refusal = error(ctx, 400, "Invalid Content-Type header (" + std::string(head.content_type) +
                    "), expected multipart/form-data. (HINT: If you're using curl, you can pass -H "
                    "'Content-Type: multipart/form-data')", "invalid_request_error", nullptr, nullptr);
    return nullptr;
  }
  auto upload = std::make_unique<Upload>(*boundary);
  if (BatchApi::is_upload(head.method, path_of(head.target))) upload->spool_ = batch_api_->spool();
  return upload;
}

Reply Simulator::finish_upload(const RequestHead& head, Upload& upload) {
  Context ctx(head, next_request_id());
  ctx.transcription = true;
  const auto body_digest = upload.body_hash_.finish();
  ctx.body_sha256 = to_hex(body_digest.data(), body_digest.size());
  ctx.upload_bytes = upload.body_bytes_;
  if (auto refused = authorize(ctx)) return *refused;
  if (!upload.parser_.finish()) {
    return error(ctx, 400, "Could not parse multipart form: " + upload.parser_.error(), "invalid_request_error",
                 nullptr, nullptr);
  }
  if (upload.spool_) {
    ctx.transcription = false;
    return api_reply(ctx, batch_api_->finish_upload(upload.fields_, upload.file_seen_, upload.filename_, upload.spool_.get()));
  }
  std::string response_format = "json";
  if (!ctx.route.deployment.empty()) ctx.model = ctx.route.deployment;
  for (const auto& [name, value] : upload.fields_) {
    if (name == "model" && ctx.route.deployment.empty()) ctx.model = value;
    if (name == "response_format") response_format = value;
  }
  if (!upload.file_seen_) {
    return error(ctx, 400, "Missing required parameter: 'file'.", "invalid_request_error", "file",
                 "missing_required_parameter");
  }
  if (ctx.model.empty()) {
    return error(ctx, 400, "Missing required parameter: 'model'.", "invalid_request_error", "model",
                 "missing_required_parameter");
  }
  if (!audio_ext_ok(lower_ext(upload.filename_))) {
    return error(ctx, 400, kAudioFormats, "invalid_request_error", nullptr, nullptr);
  }
  static constexpr const char* kFormats[] = {"json", "text", "srt", "verbose_json", "vtt"};
  if (std::none_of(std::begin(kFormats), std::end(kFormats), [&](const char* f) { return response_format == f; })) {
    return error(ctx, 400, "Invalid value: '" + response_format +
                 "'. Supported values are: 'json', 'text', 'srt', 'verbose_json', and 'vtt'.",
                 "invalid_request_error", "response_format", "invalid_value");
  }
  ctx.spec = model_spec(ctx.model);
  if (auto refused = check_served(ctx)) return *refused;
  if (ctx.spec == nullptr || ctx.spec->kind != ModelKind::transcription) {
    ctx.spec = nullptr;
    return error(ctx, 404, "The model `" + ctx.model + "` does not exist or you do not have access to it.",
                 "invalid_request_error", nullptr, "model_not_found");
  }
  if (auto refused = gate(ctx, 0, true)) return *refused;

  const auto file_digest = upload.file_hash_.finish();
  const double duration = upload.audio_.duration_seconds();
  const auto words = transcript_words(digest_seed(file_digest), duration);
  // Segments of up to 10 words, spread evenly over the duration.
  struct Segment {
    double start, end;
    std::string text;
  };
  std::vector<Segment> segments;
  std::string text;
  const std::size_t per = 10;
  const std::size_t count = (words.size() + per - 1) / per;
  for (std::size_t s = 0; s < count; ++s) {
    std::string seg;
    for (std::size_t w = s * per; w < std::min(words.size(), (s + 1) * per); ++w) {
      seg += (seg.empty() ? "" : " ") + words[w];
    }
    seg[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(seg[0])));
    seg += '.';
    const double start = duration * static_cast<double>(s) / static_cast<double>(count);
    const double end = duration * static_cast<double>(s + 1) / static_cast<double>(count);
    text += (text.empty() ? "" : " ") + seg;
    segments.push_back({std::floor(start * 100) / 100, std::floor(end * 100) / 100, seg});
  }
  Reply reply;
  if (response_format == "json") {
    reply.body = ojson{{"text", text}}.dump();
  } else if (response_format == "text") {
    reply.content_type = "text/plain; charset=utf-8";
    reply.body = text + "\n";
  } else if (response_format == "verbose_json") {
    ojson segs = ojson::array();
    for (std::size_t i = 0; i < segments.size(); ++i) {
      segs.push_back({{"id", i},
                      {"seek", 0},
                      {"start", segments[i].start},
                      {"end", segments[i].end},
                      {"text", " " + segments[i].text},
                      {"tokens", json::array()},
                      {"temperature", 0.0},
                      {"avg_logprob", -0.25},
                      {"compression_ratio", 1.2},
                      {"no_speech_prob", 0.01}});
    }
    reply.body = ojson{{"task", "transcribe"},
                      {"language", "english"},
                      {"duration", std::floor(duration * 100) / 100},
                      {"text", text},
                      {"segments", segs}}.dump();
  } else {
    const bool vtt = response_format == "vtt";
    reply.content_type = vtt ? "text/vtt; charset=utf-8" : "text/plain; charset=utf-8";
    std::string out = vtt ? "WEBVTT\n\n" : "";
    for (std::size_t i = 0; i < segments.size(); ++i) {
      if (!vtt) out += std::to_string(i + 1) + "\n";
      out += timestamp(segments[i].start, vtt ? '.' : ',') + " --> " + timestamp(segments[i].end, vtt ? '.' : ',') +
             "\n" + segments[i].text + "\n\n";
    }
    reply.body = std::move(out);
  }
  spend(*ctx.spec, static_cast<std::int64_t>(std::ceil(duration)), 0);
  return deliver(ctx, std::move(reply), 0);
}

json Simulator::stats_json() {
  json j = stats_.to_json();
  const std::lock_guard lock(quota_mutex_);
  j["spent_tokens"] = spent_tokens_;
  j["spent_usd"] = spent_usd_;
  return j;
}

void Simulator::flush_ledger() {
  if (ledger_) ledger_->flush();
}

}  // namespace floodgate::sim
