#include "engine_flags.hpp"
#include "engine_words.hpp"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "floodgate/core/duration.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/core/provider.hpp"
#include "floodgate/http/dialect.hpp"
#include "floodgate/limit/charge_model.hpp"
#include "floodgate/tokens/estimate.hpp"
#include "floodgate/tokens/model_map.hpp"

namespace floodgate::cli {
namespace {

std::string env_or(const char* name, const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

Duration duration_flag(const std::string& text, const char* flag) {
  auto d = parse_duration(text);
  if (!d) throw Error(std::string("bad duration for ") + flag + ": \"" + text + "\" (e.g. 500ms, 10s, 2m, 1h30m)");
  return *d;
}

// "1048576", "512K", "64M", "64MiB", "1G": bytes (K/M/G are powers of 1,024).
std::size_t size_flag(const std::string& text, const char* flag) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::string unit = text.substr(digits);
  if (!unit.empty() && unit.back() == 'B') unit.pop_back();
  if (unit.size() == 2 && unit[1] == 'i') unit.pop_back();
  const int shift = unit.empty() ? 0 : unit == "K" ? 10 : unit == "M" ? 20 : unit == "G" ? 30 : -1;
  if (digits == 0 || digits > 12 || shift < 0) {
    throw Error(std::string("bad size for ") + flag + ": \"" + text + "\" (e.g. 1048576, 512K, 64M, 1G)");
  }
  const std::size_t n = std::stoull(text.substr(0, digits)) << shift;
  if (n == 0) throw Error(std::string(flag) + " must be more than 0 bytes");
  return n;
}

std::chrono::milliseconds ms(Duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d); }

// Puts the options added while it lives into `group` (CLI11's option defaults); an empty
// group leaves them where they would be.
class InGroup {
 public:
  InGroup(CLI::App* cmd, const std::string& group) : cmd_(cmd), previous_(cmd->option_defaults()->get_group()) {
    if (!group.empty()) cmd_->option_defaults()->group(group);
  }
  ~InGroup() { cmd_->option_defaults()->group(previous_); }
  InGroup(const InGroup&) = delete;
  InGroup& operator=(const InGroup&) = delete;

 private:
  CLI::App* cmd_;
  std::string previous_;
};

}  // namespace

void add_limit_flags(CLI::App* cmd, EngineFlags& f, const std::string& group) {
  const InGroup in_group(cmd, group);
  cmd->add_option("--rpm", f.rpm, "requests per minute, for every model (0 = learn/unlimited)");
  cmd->add_option("--tpm", f.tpm, "model tokens per minute, for every model");
  cmd->add_option("--rpd", f.rpd, "requests per day, for every model");
  cmd->add_option("--tpd", f.tpd, "model tokens per day, for every model");
  cmd->add_option("--limits", f.limits,
                  "auto (learn from x-ratelimit-* headers) or a JSON file: "
                  "{\"default\":{\"rpm\":500},\"models\":{\"gpt-4o-mini\":{\"rpm\":5000,\"tpm\":4000000}}}")
      ->capture_default_str();
  cmd->add_option("--charge", f.charge,
                  "what the provider counts against tokens/min at admission: openai (= input+16: input + (max_completion_tokens | "
                  "max_tokens | 16) x n), input+N, max(input,N), flat:N, context:N; append ,refund for a server that gives unused "
                  "tokens back on completion. Default: the provider's (openai), corrected from the server's remaining "
                  "headers both ways; a given rule is only corrected upwards");
  cmd->add_option("--burst", f.burst,
                  "pace evenly, at most this far ahead of the steady pace (1s = one second's worth of the limit). Default: use "
                  "the whole 60 s window (the minute's quota at once, never more in any 60 s), falling back to even pacing "
                  "with a 250ms tolerance (after the 429's retry-after) for a model whose server answers 429 although its remaining "
                  "said there was room");
  cmd->add_option("--default-completion-tokens", f.default_completion_tokens,
                  "completion allowance for requests without max_tokens / max_completion_tokens, for pacing and budgets alike. "
                  "Default: what the provider charges at admission for pacing (16 for OpenAI), 4096 for budgets and --max-cost");
  cmd->add_option("--estimate", f.estimate, "token estimate before sending: exact (BPE) or bytes (conservative, bytes/3)")
      ->capture_default_str();
}

void add_retry_flags(CLI::App* cmd, EngineFlags& f, const std::string& group) {
  const InGroup in_group(cmd, group);
  cmd->add_option("--max-attempts", f.max_attempts, "attempts per request, the first included")->capture_default_str();
  cmd->add_option("--breaker-threshold", f.breaker_threshold, "consecutive 429s that pause all sending")->capture_default_str();
  cmd->add_option("--breaker-max-open", f.breaker_max_open, "longest pause of the circuit breaker")->capture_default_str();
}

void add_engine_flags(CLI::App* cmd, EngineFlags& f) {
  cmd->add_option("--api-key", f.api_key, "API key (default: $OPENAI_API_KEY); never logged");
  cmd->add_option("--base-url", f.base_url, "API base URL (default: $OPENAI_BASE_URL or https://api.openai.com/v1)");
  cmd->add_option("--org", f.org, "OpenAI-Organization header (default: $OPENAI_ORG_ID)");
  cmd->add_option("--project", f.project, "OpenAI-Project header (default: $OPENAI_PROJECT_ID)");

  add_limit_flags(cmd, f);
  cmd->add_option("--provider", f.provider,
                  "API dialect: openai, azure (api-key header, deployment URLs, limits learned from remaining), groq (its "
                  "requests headers count per day), none (no rate-limit headers: run by concurrency). Default: from --limits "
                  "FILE, else guessed from the base URL (openai when it names no known provider)");
  cmd->add_option("--api-version", f.api_version,
                  std::string("Azure api-version (default: the base URL's ?api-version=, else ") + std::string(http::kDefaultAzureApiVersion) + ")");
  cmd->add_option("--max-in-flight", f.max_in_flight, "most requests in flight at once")->capture_default_str();
  cmd->add_option("--max-wait", f.max_wait, "fail a request that waits longer than this for admission (e.g. 10m)");
  cmd->add_option("--unreachable-after", f.unreachable_after,
                  "stop (exit 7, resumable) when the API has never answered and connecting (or an answer within --timeout) has failed for this long (0 = never)")
      ->capture_default_str();
  cmd->add_option("--outage-limit", f.outage_limit,
                  "after the first answer, a server that stops answering pauses sending and is probed until it is back; "
                  "an outage longer than this stops the run (exit 8, resumable; 0 = wait for ever)")
      ->capture_default_str();
  cmd->add_option("--max-server-wait", f.max_server_wait,
                  "a retry-after longer than this pauses the model and ends the run (exit 6, resumable)")
      ->capture_default_str();
  cmd->add_option("--max-pause", f.max_pause,
                  "cap on such a pause (a retry-after of years is a server bug): the model is paused this long at most, then a re-run asks again")
      ->capture_default_str();
  add_retry_flags(cmd, f);
  cmd->add_option("--connect-timeout", f.connect_timeout, "connect timeout")->capture_default_str();
  cmd->add_option("--timeout", f.timeout, "total timeout of one attempt")->capture_default_str();
  cmd->add_option("--idle-timeout", f.idle_timeout, "abort an attempt that receives nothing for this long")->capture_default_str();
  cmd->add_option("--max-response-size", f.max_response_size,
                  "largest response body read, e.g. 64M (default 32M, 128M for embeddings); a larger one fails the attempt as bad_response");
  cmd->add_flag("--fsync", f.fsync, "fdatasync the output at every checkpoint (survive power loss, slower)");
  cmd->add_flag("--ignore-pause", f.ignore_pause,
                "send to models an earlier run paused (a daily limit's retry-after, kept in the journal) even before the pause ends");
  cmd->add_flag("--no-http2", f.no_http2, "use HTTP/1.1 only");
  cmd->add_flag("--trace-http", f.trace_http, "print each exchange's headers to stderr (Authorization redacted)");
  cmd->add_flag("-q,--quiet", f.quiet, "no progress line, notices or cost line: only warnings and errors, and the summary when the exit code is not 0");
  cmd->add_option("--log-format", f.log_format, "text or json (progress, messages and summary)")->capture_default_str();
}

void apply_limit_flags(const EngineFlags& f, engine::EngineOptions& o) {
  // Limits: a file, or auto (learned from headers); flags give every model's defaults.
  if (f.limits != "auto") {
    o.limits = limit::load_limits_config(f.limits);
  }
  // The dialect: --provider, else the file's, else what the base URL names, else openai.
  if (!f.provider.empty()) {
    const auto p = provider_from_name(f.provider);
    if (!p) throw Error("--provider must be openai, azure, groq or none (got \"" + f.provider + "\")");
    o.limits.provider = p;
  } else if (!o.limits.provider) {
    o.limits.provider = guess_provider(o.base_url).value_or(Provider::openai);
  }
  if (!f.charge.empty()) o.limits.charge = limit::parse_charge_model(f.charge);
  if (f.default_completion_tokens) {
    // An override of the allowance the charge assumes when max_tokens is absent.
    limit::ChargeModel c = o.limits.charge.value_or(limit::default_charge_model(*o.limits.provider));
    c.default_allowance_tokens = *f.default_completion_tokens;
    o.limits.charge = c;
  }
  o.worst_case_completion_tokens = worst_case_completion_tokens(f);
  limit::Limits flags_limits;
  flags_limits.requests_per_minute = f.rpm;
  flags_limits.tokens_per_minute = f.tpm;
  flags_limits.requests_per_day = f.rpd;
  flags_limits.tokens_per_day = f.tpd;
  o.limits.defaults = flags_limits.or_else(o.limits.defaults);

  if (!f.burst.empty()) {
    o.limiter.pacing = limit::LimiterOptions::Pacing::even;
    o.limiter.burst = duration_flag(f.burst, "--burst");
  }
  if (f.estimate == "exact") {
    auto models = std::make_shared<tokens::ModelMap>();
    o.estimator = [models](const Request& r) -> limit::ChargeInputs {
      tokens::EstimateOptions eo;
      eo.models = models.get();
      const auto e = tokens::estimate_request(r.endpoint, r.body, eo);
      return limit::ChargeInputs{e.prompt_tokens, e.max_tokens_per_choice, e.choices, e.generates};
    };
  } else if (f.estimate == "bytes") {
    o.estimator = engine::conservative_estimator();
  } else {
    throw Error("--estimate must be exact or bytes");
  }
}

void apply_retry_flags(const EngineFlags& f, engine::EngineOptions& o) {
  o.retry.max_attempts = f.max_attempts;
  o.breaker.threshold = f.breaker_threshold;
  o.breaker.max_open = duration_flag(f.breaker_max_open, "--breaker-max-open");
}

void apply_engine_flags(const EngineFlags& f, engine::EngineOptions& o) {
  o.describe = describe_engine_event;  // the engine's events in this CLI's words
  o.option_words = flag_for_option;     // the options its messages name, as this CLI's flags
  o.base_url = env_or("OPENAI_BASE_URL", f.base_url);
  if (o.base_url.empty()) o.base_url = "https://api.openai.com/v1";
  o.credentials.api_key = env_or("OPENAI_API_KEY", f.api_key);
  o.credentials.organization = env_or("OPENAI_ORG_ID", f.org);
  o.credentials.project = env_or("OPENAI_PROJECT_ID", f.project);
  if (o.credentials.api_key.empty() && o.base_url.find("api.openai.com") != std::string::npos) {
    throw Error("no API key: set OPENAI_API_KEY or pass --api-key");
  }

  apply_limit_flags(f, o);
  o.api_version = f.api_version;
  o.max_in_flight = f.max_in_flight;
  apply_retry_flags(f, o);
  o.retry.max_server_wait = duration_flag(f.max_server_wait, "--max-server-wait");
  o.max_pause = duration_flag(f.max_pause, "--max-pause");
  if (o.max_pause < o.retry.max_server_wait) throw Error("--max-pause must be at least --max-server-wait");
  o.unreachable_after = f.unreachable_after == "0" ? Duration{0} : duration_flag(f.unreachable_after, "--unreachable-after");
  o.outage_limit = f.outage_limit == "0" ? Duration{0} : duration_flag(f.outage_limit, "--outage-limit");
  if (!f.max_wait.empty()) o.max_wait = duration_flag(f.max_wait, "--max-wait");
  o.fsync = f.fsync;
  o.ignore_pause = f.ignore_pause;

  o.transport.connect_timeout = ms(duration_flag(f.connect_timeout, "--connect-timeout"));
  o.transport.total_timeout = ms(duration_flag(f.timeout, "--timeout"));
  o.transport.idle_timeout = ms(duration_flag(f.idle_timeout, "--idle-timeout"));
  if (!f.max_response_size.empty()) o.max_response_bytes = size_flag(f.max_response_size, "--max-response-size");
  o.transport.http2 = !f.no_http2;
  o.transport.max_connections = static_cast<long>(f.max_in_flight) + 8;
  if (f.trace_http) {
    o.transport.debug_trace = [](std::string_view text) { std::fprintf(stderr, "%.*s", static_cast<int>(text.size()), text.data()); };
  }

  o.progress.quiet = f.quiet;
  if (f.log_format == "json") {
    o.progress.format = engine::LogFormat::json;
  } else if (f.log_format != "text") {
    throw Error("--log-format must be text or json");
  }

}

std::uint64_t worst_case_completion_tokens(const EngineFlags& f) { return f.default_completion_tokens.value_or(4096); }

Endpoint endpoint_flag(const std::string& value) {
  const auto e = endpoint_from_path(value);
  if (!e) throw Error("unknown --endpoint \"" + value + "\" (e.g. /v1/chat/completions, /v1/embeddings)");
  return *e;
}

}  // namespace floodgate::cli
