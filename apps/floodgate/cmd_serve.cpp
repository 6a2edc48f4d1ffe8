// `floodgate serve`: the OpenAI-compatible gateway (issue 16, groundwork). Flags and the
// environment -> ServeOptions -> run_gateway.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <mutex>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "engine_flags.hpp"
#include "floodgate/core/duration.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/core/text.hpp"
#include "floodgate/engine/engine.hpp"
#include "floodgate/cost/prices.hpp"
#include "floodgate/gateway/server.hpp"
#include "floodgate/gateway/usage.hpp"

namespace floodgate::cli {
namespace {

struct ServeFlags {
  gateway::ServeOptions options;
  std::string upstream;
  std::string upstream_key_file;
  std::string keys;
  std::size_t interactive_queue = 256;
  std::string interactive_wait = "30s";
  std::size_t batch_queue = 10'000;
  std::string batch_wait = "10m";
  double batch_min_share = 0.1;
  std::string grace = "30s";
  std::string stop_recheck = "60s";
  std::string upstream_timeout = "10m";
  std::string access_log;
  bool quiet = false;
  bool no_engine = false;
  EngineFlags engine = [] {  // the upstream's limits and the retries (engine_flags.hpp)
    EngineFlags e;
    e.burst = "1s";  // even pacing: a batch flood must not spend the minute's quota ahead of interactive calls
    return e;
  }();
  std::string usage_db;  // empty: default_usage_db()
  std::string prices;
};

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

Duration duration_of(const std::string& text, const char* flag) {
  const auto d = parse_duration(text);
  if (!d || *d <= Duration::zero()) throw Error(std::string("bad duration for ") + flag + ": \"" + text + "\" (e.g. 500ms, 30s, 10m)");
  return *d;
}

// The upstream key: the file's first line (trimmed) or $OPENAI_API_KEY. Never printed.
std::string upstream_key(const std::string& file) {
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error("cannot read --upstream-key-file " + file);
    std::string line;
    std::getline(in, line);
    const std::string key(trim(line));
    if (key.empty()) throw Error("--upstream-key-file " + file + " holds no key on its first line");
    return key;
  }
  std::string key = env("OPENAI_API_KEY");
  if (key.empty()) throw Error("no upstream key: set OPENAI_API_KEY or give --upstream-key-file FILE");
  return key;
}

// $XDG_STATE_HOME/floodgate/usage.sqlite, else ~/.local/state/floodgate/usage.sqlite: one
// place per user whatever the working folder, so a budget spent stays spent across restarts.
std::string default_usage_db() {
  const std::string state = env("XDG_STATE_HOME");
  if (!state.empty()) return state + "/floodgate/usage.sqlite";
  const std::string home = env("HOME");
  if (home.empty()) throw Error("no place for the usage database: HOME is not set; give --usage-db PATH");
  return home + "/.local/state/floodgate/usage.sqlite";
}

std::string usd(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "$%.4f", v);
  return buf;
}

// After the drain, on stderr: one line per key the store knows (this run's and earlier ones).
void print_usage_summary(const gateway::UsageStore& store, const std::optional<gateway::ClientKeys>& keys) {
  std::map<std::string, std::optional<double>> budgets;
  if (keys) {
    for (const gateway::ClientKey* k : keys->entries()) budgets[k->log_id] = k->budget_usd;
  }
  const auto totals = store.totals();
  std::fprintf(stderr, "usage per client key (%s):%s\n", store.path().c_str(), totals.empty() ? " no calls" : "");
  for (const auto& [id, t] : totals) {
    std::string line = "  " + id + ": " + std::to_string(t.requests) + (t.requests == 1 ? " request" : " requests") + " (";
    bool first = true;
    for (const auto& [status, n] : t.by_status) {
      line += (first ? "" : ", ") + std::to_string(status) + ": " + std::to_string(n);
      first = false;
    }
    line += "), tokens in " + std::to_string(t.input_tokens) + " out " + std::to_string(t.output_tokens) + ", " + usd(t.cost_usd);
    const auto b = budgets.find(id);
    if (b != budgets.end() && b->second) {
      line += " of a " + usd(*b->second) + " budget (" + usd(std::max(0.0, *b->second - t.cost_usd)) + " left)";
    }
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

int run(ServeFlags& f) {
  gateway::ServeOptions& o = f.options;
  o.upstream.base_url = !f.upstream.empty() ? f.upstream : env("OPENAI_BASE_URL");
  if (o.upstream.base_url.empty()) o.upstream.base_url = "https://api.openai.com/v1";
  if (!o.upstream.base_url.starts_with("http://") && !o.upstream.base_url.starts_with("https://")) {
    throw Error("--upstream must be an http:// or https:// URL, e.g. https://api.openai.com/v1");
  }
  o.upstream.api_key = upstream_key(f.upstream_key_file);
  o.upstream.organization = env("OPENAI_ORG_ID");
  o.upstream.project = env("OPENAI_PROJECT_ID");
  if (f.batch_min_share < 0 || f.batch_min_share > 1) throw Error("--batch-min-share must be between 0 and 1 (0.1 is 10%)");
  if (f.interactive_queue == 0 || f.batch_queue == 0) throw Error("--interactive-queue and --batch-queue must be at least 1");
  if (o.max_in_flight == 0) throw Error("--max-in-flight must be at least 1");
  o.lanes = {gateway::LaneConfig{"interactive", f.interactive_queue, duration_of(f.interactive_wait, "--interactive-wait"), 0},
             gateway::LaneConfig{"batch", f.batch_queue, duration_of(f.batch_wait, "--batch-wait"),
                                 static_cast<std::uint32_t>(f.batch_min_share * 1000 + 0.5)}};
  o.grace = duration_of(f.grace, "--grace");
  o.engine = !f.no_engine;
  const EngineFlags& e = f.engine;
  if (f.no_engine && (e.rpm > 0 || e.tpm > 0 || e.rpd > 0 || e.tpd > 0 || e.limits != "auto")) {
    throw Error("--no-engine relays every call unpaced: --rpm, --tpm, --rpd, --tpd and --limits need the engine (drop --no-engine)");
  }
  EngineFlags paced = e;
  if (paced.burst == "window") paced.burst.clear();  // the engine's default: the whole 60 s window
  o.configure_engine = [paced](engine::EngineOptions& eo) {
    apply_limit_flags(paced, eo);
    apply_retry_flags(paced, eo);
  };
  {  // a bad value (a --limits file that does not parse, --burst 5x ...) is said before listening
    engine::EngineOptions check;
    check.base_url = o.upstream.base_url;
    o.configure_engine(check);
  }
  o.stop_recheck = duration_of(f.stop_recheck, "--stop-recheck");
  o.upstream.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(duration_of(f.upstream_timeout, "--upstream-timeout"));
  if (!f.keys.empty()) o.keys = gateway::ClientKeys::load(f.keys, {"interactive", "batch"});
  std::optional<cost::PriceTable> prices;
  if (!f.prices.empty()) prices = cost::PriceTable::load(f.prices);
  o.prices = prices ? &*prices : nullptr;
  const std::string usage_db = f.usage_db.empty() ? default_usage_db() : f.usage_db;
  try {
    o.usage = gateway::UsageStore::open(usage_db);
  } catch (const Error& err) {
    throw Error(std::string(err.what()) + " (--usage-db PATH: a file in a folder the gateway may write)");
  }
  o.notice = [](std::string_view line) { std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data()); };

  std::shared_ptr<std::FILE> log;
  if (!f.quiet) {
    if (f.access_log.empty() || f.access_log == "-") {
      log = std::shared_ptr<std::FILE>(stderr, [](std::FILE*) {});
    } else {
      log = std::shared_ptr<std::FILE>(std::fopen(f.access_log.c_str(), "a"), [](std::FILE* file) {
        if (file != nullptr) std::fclose(file);
      });
      if (!log) throw Error("cannot open --access-log " + f.access_log);
    }
    o.access_log = [log](std::string_view line) {
      std::fprintf(log.get(), "%.*s\n", static_cast<int>(line.size()), line.data());
      std::fflush(log.get());
    };
  }
  const std::shared_ptr<gateway::UsageStore> usage = o.usage;
  const std::optional<gateway::ClientKeys> keys = o.keys;
  const int code = gateway::run_gateway(std::move(o), [](const std::string& base_url) {
    std::printf("%s\n", base_url.c_str());
    std::fflush(stdout);
  });
  std::string failure;
  try {
    usage->close();
  } catch (const Error& err) {
    failure = err.what();
  }
  print_usage_summary(*usage, keys);
  if (!failure.empty()) throw Error(failure);
  return code;
}

}  // namespace

void register_serve(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Run an OpenAI-compatible gateway: point any SDK at it (OPENAI_BASE_URL=http://127.0.0.1:PORT/v1) and its calls\n"
      "share one upstream key through priority lanes: interactive requests are admitted first, batch keeps a\n"
      "minimum share, each lane has a bounded queue and a wait deadline, and a request that cannot be admitted\n"
      "in time gets OpenAI's 429 with an accurate retry-after. Prints its base URL (http://HOST:PORT/v1) as the\n"
      "first line of stdout; one access-log line per request on stderr (never a key). Lanes: /v1/chat/completions\n"
      "(stream: true relayed event by event), /v1/embeddings, /v1/responses, /v1/audio/transcriptions and\n"
      "/v1/audio/translations (uploads streamed through); the rest of /v1/ (models, files, ...) is passed on as is;\n"
      "/healthz, /metrics (Prometheus). A request picks its lane with the header 'x-floodgate-lane: batch', its\n"
      "body's service_tier (flex: batch, priority: interactive) or its client key (--keys). A client that hangs up\n"
      "ends its upstream call. SIGINT/SIGTERM stop accepting and drain (--grace), then print usage per key.\n"
      "Client keys (--keys FILE, JSON): each maps to a name and a lane, and may have a budget_usd (then 429\n"
      "insufficient_quota once spent, across restarts: --usage-db) and sub-limits (requests_per_minute,\n"
      "tokens_per_minute, or share_of_requests_per_minute / share_of_tokens_per_minute of the upstream's limits:\n"
      "the key waits up to its lane's wait, then 429 with retry-after). Every call's tokens\n"
      "and cost (price table) are recorded per key: GET /v1/floodgate/usage (a key sees its own row; without\n"
      "--keys, or for a key with \"sees_all_usage\": true, every row).\n"
      "Every laned call goes upstream when floodgate's engine says (its limiter, retries: an upstream 429 or 5xx\n"
      "waits here and is retried before any byte reaches the client; an upload, sent once, is paced but not\n"
      "retried), and its answer is relayed as it arrives. After the upstream's insufficient_quota or a refusal of\n"
      "the gateway's key, laned calls get that error at once until --stop-recheck has passed. The engine\n"
      "paces each model by the limits given (--rpm, --tpm, --rpd, --tpd, --limits FILE); without them it learns\n"
      "them from the upstream's x-ratelimit-* headers (and a 429 waits here until it has).\n"
      "Example:\n"
      "  OPENAI_API_KEY=sk-... floodgate serve --port 8080 --rpm 500 --tpm 200000 &\n"
      "  curl http://127.0.0.1:8080/v1/chat/completions -H 'x-floodgate-lane: batch' \\\n"
      "       -d '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}'");
  ServeFlags& f = *flags;
  gateway::ServeOptions& o = f.options;
  cmd->add_option("--host", o.host, "Address to listen on; other than loopback only with --keys")->capture_default_str();
  cmd->add_option("--port", o.port, "TCP port; 0 picks a free one (printed on the first line)")->capture_default_str();
  cmd->add_option("--threads", o.threads, "Event-loop threads; 0 = one per core")->capture_default_str();
  cmd->add_option("--upstream", f.upstream, "The API to forward to (default: $OPENAI_BASE_URL or https://api.openai.com/v1)");
  cmd->add_option("--upstream-key-file", f.upstream_key_file,
                  "Read the upstream API key from this file's first line (default: $OPENAI_API_KEY); never logged");
  cmd->add_option("--keys", f.keys,
                  "Client keys file (JSON: key -> name, lane, sub-limits, budget; docs/gateway.md). Without it any "
                  "key is accepted, on loopback only")
      ->check(CLI::ExistingFile);
  cmd->add_option("--usage-db", f.usage_db,
                  "SQLite file of every call's usage and cost per client key (GET /v1/floodgate/usage, the budgets, "
                  "the summary at exit); kept across restarts, so a budget spent stays spent. Default: "
                  "$XDG_STATE_HOME/floodgate/usage.sqlite or ~/.local/state/floodgate/usage.sqlite");
  cmd->add_option("--prices", f.prices, "Price table for the calls' cost (the shape of data/prices.json; default: built in)")
      ->check(CLI::ExistingFile);

  auto* lanes = "Lanes";
  cmd->add_option("--interactive-queue", f.interactive_queue, "Requests the interactive lane holds waiting")
      ->group(lanes)
      ->capture_default_str();
  cmd->add_option("--interactive-wait", f.interactive_wait, "Longest wait in the interactive lane, then 429")
      ->group(lanes)
      ->capture_default_str();
  cmd->add_option("--batch-queue", f.batch_queue, "Requests the batch lane holds waiting")->group(lanes)->capture_default_str();
  cmd->add_option("--batch-wait", f.batch_wait, "Longest wait in the batch lane, then 429")->group(lanes)->capture_default_str();
  cmd->add_option("--batch-min-share", f.batch_min_share,
                  "Share of admissions the batch lane gets while it waits, however busy interactive is (0 to 1)")
      ->group(lanes)
      ->capture_default_str();
  cmd->add_flag("--no-engine", f.no_engine,
                "Send every call through the relay, unpaced and never retried (by default every laned call goes "
                "through the engine's limiter and retries)")
      ->group(lanes);
  cmd->add_option("--max-in-flight", o.max_in_flight,
                  "Calls upstream at once: the engine's cap on calls sent and not answered, and the relay's (streams, "
                  "uploads, --no-engine). The lanes hand the engine a request only as it sends one")
      ->group(lanes)
      ->capture_default_str();

  add_limit_flags(cmd, f.engine,
                  "Upstream limits (paced per model by the engine; without them: learned from the upstream's x-ratelimit-* "
                  "headers)");
  cmd->get_option("--burst")
      ->description("pace evenly, at most this far ahead of the steady pace (1s = one second's worth of the limit), so that "
                    "a batch flood cannot spend the minute's quota ahead of interactive calls; 'window' spends it as "
                    "`floodgate run` does, the whole 60 s window at once (never more in any 60 s)")
      ->capture_default_str();
  cmd->get_option("--default-completion-tokens")
      ->description("completion allowance the pacing charges for a request without max_tokens / max_completion_tokens. "
                    "Default: what the provider charges at admission (16 for OpenAI)");
  add_retry_flags(cmd, f.engine, "Retries (of the calls through the engine)");

  auto* server = "Server";
  cmd->add_option("--grace", f.grace, "After SIGINT/SIGTERM, how long to wait for requests queued or in flight")
      ->group(server)
      ->capture_default_str();
  cmd->add_option("--upstream-timeout", f.upstream_timeout,
                  "Longest upstream call, from its request to the last byte of its answer; then 502 (or the answer cut off)")
      ->group(server)
      ->capture_default_str();
  cmd->add_option("--stop-recheck", f.stop_recheck,
                  "After the upstream said insufficient_quota or refused the gateway's key, answer laned calls that "
                  "error for this long, then send the next one upstream to check again")
      ->group(server)
      ->capture_default_str();
  cmd->add_option("--max-body-bytes", o.max_body_bytes, "Largest request body; larger gets 413")
      ->group(server)
      ->capture_default_str();
  cmd->add_option("--access-log", f.access_log, "Write the access log to this file (appended) instead of stderr")
      ->group(server);
  cmd->add_flag("--quiet", f.quiet, "No access log")->group(server);

  cmd->callback([flags, &exit_code] { exit_code = run(*flags); });
}

}  // namespace floodgate::cli
