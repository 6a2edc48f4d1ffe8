// `floodgate sim`: the OpenAI-compatible simulator. Flags → SimOptions → run_server.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "model_tokens.hpp"
#include "floodgate/core/duration.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/sim/options.hpp"
#include "floodgate/sim/server.hpp"

namespace floodgate::cli {
namespace {

struct SimFlags {
  sim::SimOptions options;
  std::string config;
  std::string tier;
  std::int64_t rpm = -1, tpm = -1, rpd = -1, tpd = -1;
  std::vector<std::string> extra_models;
  std::string latency = "none";
  std::string token_charge = "exact";
  std::string faults = "500,502,503,reset,stall,truncated,slow-first-byte";
  std::string stall = "30s";
  std::string slow_first_byte = "2s";
  std::int64_t quota_tokens = -1;
  double quota_usd = -1;
  // Per-model rules; set only when given, so that --config keeps its per-model values.
  std::string charge;
  std::int64_t default_allowance = -1;
  bool refund_usage = false;
  std::string window;
  std::string quantum;
  std::string dialect;
  std::vector<std::string> batch_queue_limits;
};

Duration duration_flag(const std::string& text, const char* flag) {
  const auto d = parse_duration(text);
  if (!d) throw Error(std::string("invalid duration '") + text + "' for " + flag + " (e.g. 250ms, 2s, 1m30s)");
  return *d;
}

int run(SimFlags& f) {
  sim::SimOptions& o = f.options;
  o.models = sim::default_models();
  if (!f.tier.empty()) sim::apply_tier(o.models, f.tier);
  if (!f.config.empty()) sim::apply_config_file(o, f.config);
  for (const auto& name : f.extra_models) {
    if (!o.models.count(name)) o.models[name] = sim::ModelSpec{};
  }
  for (auto& [name, spec] : o.models) {
    if (f.rpm >= 0) spec.limits.requests_per_minute = f.rpm;
    if (f.tpm >= 0) spec.limits.tokens_per_minute = f.tpm;
    if (f.rpd >= 0) spec.limits.requests_per_day = f.rpd;
    if (f.tpd >= 0) spec.limits.tokens_per_day = f.tpd;
  }
  std::optional<sim::WindowMode> window;
  if (!f.window.empty()) window = sim::parse_window_mode(f.window);
  std::optional<Duration> quantum;
  if (!f.quantum.empty()) quantum = duration_flag(f.quantum, "--quantum");
  if (quantum && *quantum <= Duration::zero()) throw Error("--quantum must be above zero");
  std::optional<sim::Dialect> dialect;
  if (!f.dialect.empty()) {
    dialect = sim::parse_dialect(f.dialect);
    o.dialect = *dialect;
  }
  for (auto& [name, spec] : o.models) {
    if (!f.charge.empty()) sim::parse_charge_rule(f.charge, spec.charge);
    if (f.default_allowance >= 0) spec.charge.default_allowance = f.default_allowance;
    if (f.refund_usage) spec.charge.refund_usage = true;
    if (window) spec.limits.window = *window;
    if (quantum) spec.limits.quantum = *quantum;
    if (dialect) spec.dialect = *dialect;
  }
  if (f.quota_tokens >= 0) o.quota_tokens = f.quota_tokens;
  if (f.quota_usd >= 0) o.quota_usd = f.quota_usd;
  o.latency = sim::parse_latency(f.latency);
  o.token_charge = sim::parse_token_charge(f.token_charge);
  o.faults = sim::parse_fault_list(f.faults);
  o.stall = duration_flag(f.stall, "--stall-seconds");
  o.slow_first_byte = duration_flag(f.slow_first_byte, "--slow-first-byte");
  if (o.fault_rate < 0 || o.fault_rate > 1) throw Error("--fault-rate must be between 0 and 1");
  parse_model_tokens(f.batch_queue_limits, "--batch-queue-limit", o.batch.queue_limits, o.batch.queue_limit_all);
  if (o.batch.speed <= 0) throw Error("--batch-speed must be above 0");
  if (o.batch.line_failure_rate < 0 || o.batch.expire_rate < 0 || o.batch.zero_status_rate < 0 || o.batch.lost_rate < 0 ||
      o.batch.line_failure_rate + o.batch.expire_rate + o.batch.zero_status_rate + o.batch.lost_rate > 1) {
    throw Error("--batch-line-failure-rate, --batch-expire-rate, --batch-zero-status-rate and --batch-lost-rate must be "
                "between 0 and 1 together");
  }
  if (o.invalid_content_rate < 0 || o.invalid_content_rate > 1) {
    throw Error("--invalid-content-rate must be between 0 and 1");
  }
  return sim::run_server(o, [](const std::string& base_url) {
    std::printf("%s\n", base_url.c_str());
    std::fflush(stdout);
  });
}

}  // namespace

void register_sim(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<SimFlags>();
  CLI::App* cmd = app.add_subcommand(
      "sim",
      "Run an OpenAI-compatible API simulator (chat, embeddings, transcriptions, models) with real rate limits,\n"
      "429 bodies and headers, quota, latency and seeded fault injection; for tests, benchmarks and offline\n"
      "dry runs. Prints its base URL (http://HOST:PORT/v1) as the first line of stdout. Stop with SIGINT/SIGTERM.\n"
      "See docs/sim.md.");
  SimFlags& f = *flags;
  sim::SimOptions& o = f.options;
  cmd->add_option("--host", o.host, "Address to bind")->capture_default_str();
  cmd->add_option("--port", o.port, "TCP port; 0 picks a free one (printed on the first line)")->capture_default_str();
  cmd->add_option("--threads", o.threads, "Server threads; 0 = hardware concurrency")->capture_default_str();
  cmd->add_option("--api-key", o.api_keys,
                  "Accepted API key (repeatable); without any, every non-empty Bearer key is accepted");
  cmd->add_option("--org", o.organization, "Organization id named in 429 messages")->capture_default_str();

  auto* limits = "Rate limits (per API key and model; 0 = unlimited; flags override --config and --tier)";
  cmd->add_option("--rpm", f.rpm, "Requests per minute for every model")->group(limits);
  cmd->add_option("--tpm", f.tpm, "Tokens per minute for every model")->group(limits);
  cmd->add_option("--rpd", f.rpd, "Requests per day for every model")->group(limits);
  cmd->add_option("--tpd", f.tpd, "Tokens per day for every model")->group(limits);
  cmd->add_option("--tier", f.tier, "Published usage-tier preset: free, 1, 2, 3, 4 or 5 (numbers in docs/sim.md)")
      ->group(limits)
      ->check(CLI::IsMember({"free", "1", "2", "3", "4", "5"}));
  cmd->add_option("--config", f.config, "JSON file with per-model limits, prices and extra models (docs/sim.md)")
      ->group(limits)
      ->check(CLI::ExistingFile);
  cmd->add_option("--model", f.extra_models, "Also accept this chat model name (repeatable)")->group(limits);
  cmd->add_option("--window", f.window,
                  "How limits are counted over time: bucket (starts full, refills continuously; default), rolling "
                  "(strict 60 s / 24 h window of admitted charges) or quantized (rolling, and each per-minute "
                  "limit also over every --quantum, e.g. 60,000/min as 1,000/s)")
      ->group(limits)
      ->check(CLI::IsMember({"bucket", "rolling", "quantized"}));
  cmd->add_option("--quantum", f.quantum, "The shorter period of --window quantized (default 1s)")->group(limits);
  cmd->add_option("--charge", f.charge,
                  "Admission token charge of chat requests: input+allowance (OpenAI; default), "
                  "max(input,allowance), flat:N (N per request, Azure-like) or context[:N] (N, default 128000, "
                  "per request without max_tokens, like older Azure)")
      ->group(limits);
  cmd->add_option("--default-max-tokens", f.default_allowance,
                  "The allowance per choice when a chat request sets no max_tokens/max_completion_tokens "
                  "(default 16, as observed on OpenAI)")
      ->group(limits);
  cmd->add_flag("--refund-usage", f.refund_usage,
                "Correct each chat charge to the real usage (prompt + completion) once answered; default off "
                "(OpenAI shows no visible correction)")
      ->group(limits);
  cmd->add_option("--dialect", f.dialect,
                  "Wire dialect of every model: openai (default), azure (api-key auth, /openai/deployments/... "
                  "URLs, remaining headers only), groq (per-day requests headers) or none (no rate-limit headers)")
      ->group(limits)
      ->check(CLI::IsMember({"openai", "azure", "groq", "none"}));
  cmd->add_option("--token-charge", f.token_charge,
                  "How prompt tokens are counted: exact (the model's tokenizer, OpenAI's chat accounting) or "
                  "bytes (ceil(bytes/4) per string, a server whose count differs from the client's)")
      ->group(limits)
      ->check(CLI::IsMember({"exact", "bytes"}))
      ->capture_default_str();
  cmd->add_option("--quota-tokens", f.quota_tokens,
                  "Total tokens the account may spend; then every request gets 429 insufficient_quota")
      ->group(limits);
  cmd->add_option("--quota-usd", f.quota_usd,
                  "Dollars the account may spend (built-in per-model prices); then 429 insufficient_quota")
      ->group(limits);

  auto* answers = "Answers";
  cmd->add_option("--embedding-dim", o.embedding_dim_override,
                  "Dimension of every embedding model (0 = per model: 1536, or 3072 for -3-large)")
      ->group(answers)
      ->capture_default_str();
  cmd->add_option("--latency", f.latency,
                  "Latency model: none, fixed:50ms, random:10ms-200ms (seeded) or per-token:2ms (× completion tokens)")
      ->group(answers)
      ->capture_default_str();
  cmd->add_option("--invalid-content-rate", o.invalid_content_rate,
                  "Fraction of json_schema answers made invalid against the schema (seeded)")
      ->group(answers)
      ->capture_default_str();

  auto* faults = "Fault injection (seeded, reproducible)";
  cmd->add_option("--seed", o.seed, "Seed of every random choice (faults, latency, invalid content)")
      ->group(faults)
      ->capture_default_str();
  cmd->add_option("--fault-rate", o.fault_rate, "Fraction of requests that get a fault")->group(faults)->capture_default_str();
  cmd->add_option("--faults", f.faults, "Fault kinds to draw from: 500,502,503,reset,stall,truncated,slow-first-byte,endless-body (endless-body only when named)")
      ->group(faults)
      ->capture_default_str();
  cmd->add_option("--stall-seconds", f.stall, "How long a stalled connection hangs before closing (e.g. 30s, 500ms)")
      ->group(faults)
      ->capture_default_str();
  cmd->add_option("--slow-first-byte", f.slow_first_byte, "Extra wait before the first byte of a slow-first-byte fault")
      ->group(faults)
      ->capture_default_str();

  auto* batch = "Batch API (Files and Batches endpoints; docs/sim.md)";
  cmd->add_option("--batch-speed", o.batch.speed,
                  "Divides every batch duration (validating 2s, 10ms per line, finalizing 1s at speed 1)")
      ->group(batch)
      ->capture_default_str();
  cmd->add_option("--batch-line-failure-rate", o.batch.line_failure_rate,
                  "Fraction of batch lines answered 500 server_error (in the error file; seeded)")
      ->group(batch)
      ->capture_default_str();
  cmd->add_option("--batch-expire-rate", o.batch.expire_rate,
                  "Fraction of batch lines never run: the batch ends expired, they get batch_expired (seeded)")
      ->group(batch)
      ->capture_default_str();
  cmd->add_option("--batch-zero-status-rate", o.batch.zero_status_rate,
                  "Fraction of batch lines in the output file with status_code 0 and no answer, counted completed (seeded)")
      ->group(batch)
      ->capture_default_str();
  cmd->add_option("--batch-lost-rate", o.batch.lost_rate,
                  "Fraction of batch lines in neither the output nor the error file, counted completed (seeded)")
      ->group(batch)
      ->capture_default_str();
  cmd->add_option("--batch-queue-limit", f.batch_queue_limits,
                  "Enqueued-token limit: TOKENS for every model or MODEL=TOKENS (repeatable); a batch that would "
                  "pass it fails with token_limit_exceeded")
      ->group(batch);
  cmd->add_option("--batch-dir", o.batch.dir, "Keep uploaded and output files here (default: a temporary folder, removed at exit)")
      ->group(batch);

  auto* observe = "Observation";
  cmd->add_option("--ledger", o.ledger_path, "Write one JSONL line per request to this file (never the API key)")
      ->group(observe);
  cmd->add_option("--max-body-bytes", o.max_body_bytes, "Largest request body; larger gets 413 (real API: 25 MiB)")
      ->group(observe)
      ->capture_default_str();

  cmd->callback([flags, &exit_code] { exit_code = run(*flags); });
}

}  // namespace floodgate::cli
