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

namespace floodgate::sim {

// Limits of one model for one API key. 0 means "no limit" in that dimension.
struct ModelLimits {
  std::int64_t requests_per_minute = 0;
  std::int64_t tokens_per_minute = 0;
  std::int64_t requests_per_day = 0;
  std::int64_t tokens_per_day = 0;
};

enum class ModelKind { chat, embedding, transcription };

struct ModelSpec {
  ModelKind kind = ModelKind::chat;
  ModelLimits limits;
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

enum class FaultKind { none, http_500, http_502, http_503, reset, stall, truncated, slow_first_byte };

[[nodiscard]] const char* to_string(FaultKind kind) noexcept;
// Parses "500,502,503,reset,stall,truncated,slow-first-byte"; throws floodgate::Error.
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

  std::optional<std::int64_t> quota_tokens;  // total tokens (prompt + completion) that may be spent
  std::optional<double> quota_usd;            // dollars that may be spent (per-model prices)

  int embedding_dim_override = 0;      // >0: every embedding model has this dimension
  std::int64_t default_max_tokens = 0; // charged per choice when a chat request sets no max_tokens
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
};

// The built-in model catalogue (chat, embedding and transcription models) with no limits.
std::map<std::string, ModelSpec> default_models();

// Published usage-tier presets: "free", "1" .. "5". Throws floodgate::Error for others.
void apply_tier(std::map<std::string, ModelSpec>& models, const std::string& tier);

// Applies a JSON config file (format in docs/sim.md). Throws floodgate::Error.
void apply_config_file(SimOptions& options, const std::string& path);

}  // namespace floodgate::sim
