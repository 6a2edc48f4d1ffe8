#pragma once
// Everything `floodgate sim` can be told, as plain data. The CLI fills it from flags, a
// JSON config file and a --tier preset (in that order of precedence: flags win); the
// server and the request handler only read it. docs/sim.md documents every field.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "floodgate/sim/batch_options.hpp"

namespace floodgate::sim {

// How the limits are counted over time (docs/sim.md, "Rate limits: the model"):
//   bucket:    a bucket of `limit` permits that starts full and refills continuously;
//   rolling:   a strict rolling window (60 s, 24 h for per-day limits) of admitted charges;
//   quantized: rolling, and each per-minute limit also holds over every `quantum`
//              (limit × quantum / 60 s, e.g. 60,000/min as 1,000/s).
enum class WindowMode { bucket, rolling, quantized };

[[nodiscard]] const char* to_string(WindowMode mode) noexcept;
// Parses "bucket", "rolling" or "quantized"; throws floodgate::Error.
WindowMode parse_window_mode(const std::string& text);

// Limits of one model for one API key. 0 means "no limit" in that dimension.
struct ModelLimits {
  std::int64_t requests_per_minute = 0;
  std::int64_t tokens_per_minute = 0;
  std::int64_t requests_per_day = 0;
  std::int64_t tokens_per_day = 0;
  WindowMode window = WindowMode::bucket;
  std::chrono::nanoseconds quantum{std::chrono::seconds(1)};  // quantized only
};

// The tokens a chat request is charged against TPM/TPD when it is admitted
// (docs/sim.md, "Token charge"). `allowance` = (max_completion_tokens | max_tokens |
// default_allowance) × n.
//   input_plus_allowance: input estimate + allowance (OpenAI);
//   max_input_allowance:  max(input estimate, allowance);
//   flat:                 `flat_tokens` per request, whatever it asks (Azure-like);
//   context:              `context_tokens` per request when it sets no max_tokens (the
//                         whole context reserved, older Azure), else input + allowance.
enum class ChargeRule { input_plus_allowance, max_input_allowance, flat, context };

struct ChargeModel {
  ChargeRule rule = ChargeRule::input_plus_allowance;
  std::int64_t flat_tokens = 16;
  std::int64_t context_tokens = 128'000;
  std::int64_t default_allowance = 16;  // per choice when max_tokens is absent (OpenAI: ~16)
  bool refund_usage = false;            // after the answer, the charge becomes the real usage
};

// Parses "input+allowance", "max(input,allowance)", "flat:N", "context" or "context:N"
// into `charge` (other fields kept); throws floodgate::Error.
void parse_charge_rule(const std::string& text, ChargeModel& charge);
[[nodiscard]] std::string to_string(const ChargeModel& charge);

// The wire dialect of a model (docs/sim.md, "Dialects"):
//   openai: Bearer auth, /v1/... URLs, x-ratelimit-{limit,remaining,reset}-{requests,tokens};
//   azure:  api-key auth, /openai/deployments/{model}/...?api-version= or /openai/v1/...,
//           x-ratelimit-remaining-{requests,tokens} only, Azure's error shapes;
//   groq:   as openai, but the requests headers are the per-day figures;
//   none:   no rate-limit headers at all (vLLM-like), 429s without retry-after.
enum class Dialect { openai, azure, groq, none };

[[nodiscard]] const char* to_string(Dialect dialect) noexcept;
// Parses "openai", "azure", "groq" or "none"; throws floodgate::Error.
Dialect parse_dialect(const std::string& text);

enum class ModelKind { chat, embedding, transcription, moderation };

struct ModelSpec {
  ModelKind kind = ModelKind::chat;
  ModelLimits limits;
  ChargeModel charge;
  Dialect dialect = Dialect::openai;
  int embedding_dim = 1536;         // embeddings only
  double usd_per_1m_input = 0.15;   // for --quota-usd
  double usd_per_1m_output = 0.60;
};

enum class LatencyKind { none, fixed, random, per_token };

struct LatencyModel {
  LatencyKind kind = LatencyKind::none;
  std::chrono::nanoseconds fixed{0};    // fixed: this; random: lower bound; per_token: per token
  std::chrono::nanoseconds upper{0};    // random: upper bound
};

// Parses "fixed:50ms", "random:10ms-200ms", "per-token:2ms" or "none"; throws floodgate::Error.
LatencyModel parse_latency(const std::string& spec);

enum class FaultKind { none, http_500, http_502, http_503, reset, stall, truncated, slow_first_byte, endless_body };

[[nodiscard]] const char* to_string(FaultKind kind) noexcept;
// Parses "500,502,503,reset,stall,truncated,slow-first-byte,endless-body"; throws floodgate::Error.
std::vector<FaultKind> parse_fault_list(const std::string& list);

// How the simulator counts prompt tokens (docs/sim.md, "Token charge"):
//   exact: the model's BPE encoding (floodgate::tokens) under OpenAI's documented chat
//          accounting, implemented in src/sim/token_estimate.cpp (the judge's own formula);
//   bytes: ceil(bytes / 4) per string, to test a client against a server whose count
//          differs from its own estimate.
enum class TokenCharge { exact, bytes };

[[nodiscard]] const char* to_string(TokenCharge charge) noexcept;
// Parses "exact" or "bytes"; throws floodgate::Error.
TokenCharge parse_token_charge(const std::string& text);

struct SimOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  unsigned threads = 0;  // 0 = hardware concurrency

  std::vector<std::string> api_keys;    // empty: any non-empty bearer key is accepted
  std::string organization = "org-floodgatesim";

  std::map<std::string, ModelSpec> models;  // known models; others get 404 model_not_found
  Dialect dialect = Dialect::openai;         // of replies that name no model (401, 404, ...)

  std::optional<std::int64_t> quota_tokens;  // total tokens (prompt + completion) that may be spent
  std::optional<double> quota_usd;            // dollars that may be spent (per-model prices)

  int embedding_dim_override = 0;      // >0: every embedding model has this dimension
  TokenCharge token_charge = TokenCharge::exact;  // how prompt tokens are counted

  LatencyModel latency;
  std::uint64_t seed = 42;
  double fault_rate = 0.0;
  std::vector<FaultKind> faults;
  std::chrono::nanoseconds stall{std::chrono::seconds(30)};
  std::chrono::nanoseconds slow_first_byte{std::chrono::seconds(2)};
  double invalid_content_rate = 0.0;

  std::string ledger_path;                      // empty: no ledger
  std::uint64_t max_body_bytes = 26'214'400;    // 25 MiB, like the real API
  BatchSimOptions batch;                        // the Files and Batches API (src/sim/batches.cpp)
};

// The built-in model catalogue (chat, embedding and transcription models) with no limits.
std::map<std::string, ModelSpec> default_models();

// Published usage-tier presets: "free", "1" .. "5". Throws floodgate::Error for others.
void apply_tier(std::map<std::string, ModelSpec>& models, const std::string& tier);

// Applies a JSON config file (format in docs/sim.md). Throws floodgate::Error.
void apply_config_file(SimOptions& options, const std::string& path);

}  // namespace floodgate::sim
