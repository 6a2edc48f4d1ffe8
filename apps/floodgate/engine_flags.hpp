#pragma once
// The engine flags shared by every command that drives the engine (`run`, `transcribe`,
// `batch`; `serve` takes the limit and retry ones):
// credentials and base URL (flags over OPENAI_* environment variables), limits, admission,
// retries, breaker, timeouts, token estimate and logging. add_engine_flags() declares them
// on a subcommand; apply_engine_flags() fills EngineOptions from them (throws
// floodgate::Error with one clear sentence for a bad value).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "floodgate/engine/engine.hpp"

namespace floodgate::cli {

struct EngineFlags {
  std::string api_key;
  std::string base_url;
  std::string org;
  std::string project;
  double rpm = 0, tpm = 0, rpd = 0, tpd = 0;
  std::string limits = "auto";
  std::string provider;      // openai|azure|groq|none; empty: from the limits file or the base URL
  std::string api_version;   // Azure
  std::string charge;        // a charge rule; empty: the provider's
  std::string burst;         // empty: whole-window pacing (falls back to 1 s even pacing)
  std::size_t max_in_flight = 64;
  int max_attempts = 6;
  std::string max_wait;
  std::string max_server_wait = "15m";
  std::string max_pause = "24h";
  std::string unreachable_after = "10s";
  std::string outage_limit = "10m";
  std::optional<std::uint64_t> default_completion_tokens;  // nullopt: the charge model's (pacing), 4,096 (budgets)
  std::string estimate = "exact";
  std::string connect_timeout = "10s";
  std::string timeout = "10m";
  std::string idle_timeout = "2m";
  std::string max_response_size;  // empty: per endpoint (engine::default_response_cap)
  int breaker_threshold = 3;
  std::string breaker_max_open = "60s";
  bool quiet = false;
  std::string log_format = "text";
  bool fsync = false;
  bool ignore_pause = false;
  bool no_http2 = false;
  bool trace_http = false;
};

// The endpoint an --endpoint value names ("/v1/chat/completions"); throws floodgate::Error
// (exit 2) naming the value and examples when it names none.
[[nodiscard]] Endpoint endpoint_flag(const std::string& value);

void add_engine_flags(CLI::App* cmd, EngineFlags& flags);
void apply_engine_flags(const EngineFlags& flags, engine::EngineOptions& options);

// The parts of them a command whose engine gets its URL, key and timeouts elsewhere takes
// too (`serve`): the limits and their pacing (--rpm, --tpm, --rpd, --tpd, --limits, --charge,
// --burst, --default-completion-tokens, --estimate), and the retries (--max-attempts and the
// breaker's). add_engine_flags() declares them among its own; `group` (non-empty) is the
// heading they go under in --help. apply_limit_flags() resolves the provider dialect as
// apply_engine_flags() does, from options.base_url when no --provider or file names one: set
// the base URL first.
void add_limit_flags(CLI::App* cmd, EngineFlags& flags, const std::string& group = {});
void add_retry_flags(CLI::App* cmd, EngineFlags& flags, const std::string& group = {});
void apply_limit_flags(const EngineFlags& flags, engine::EngineOptions& options);
void apply_retry_flags(const EngineFlags& flags, engine::EngineOptions& options);
// The completion allowance budgets assume for a request without max_tokens.
[[nodiscard]] std::uint64_t worst_case_completion_tokens(const EngineFlags& flags);

}  // namespace floodgate::cli
