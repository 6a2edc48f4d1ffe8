// `floodgate estimate INPUT.jsonl`: what a job costs the rate limits before running it.
// Reads OpenAI Batch API input lines ({"custom_id","method","url","body"}) or bare
// request bodies, or a table (CSV/TSV, or JSONL rows with --template) turned into requests
// exactly as `run` does (--template, --system, --schema, --model), and prints the number of
// requests, their exact prompt tokens, the worst-case completion tokens, the tokens the
// provider charges against tokens/min (its charge model, the one `floodgate run` paces by),
// and the least time the server's counting allows at the given limits.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "floodgate/core/batch_io.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/core/request.hpp"
#include "floodgate/core/provider.hpp"
#include "floodgate/cost/prices.hpp"
#include "floodgate/schema/structured_output.hpp"
#include "floodgate/tables/row_request.hpp"
#include "floodgate/tables/row_source.hpp"
#include "floodgate/limit/charge_model.hpp"
#include "floodgate/tokens/estimate.hpp"

namespace floodgate::cli {
namespace {

struct EstimateFlags {
  std::string input = "-";
  std::string model;     // overrides body.model for the encoding choice
  std::string encoding;  // fixed encoding
  std::vector<std::string> model_rules;
  std::string endpoint = "/v1/chat/completions";  // for bare bodies
  std::optional<std::uint64_t> default_max_tokens;  // nullopt: the charge model's (pacing), 4,096 (worst case)
  std::string provider = "openai";
  std::string charge;
  double rpm = 0, tpm = 0, rpd = 0, tpd = 0;
  bool json = false;
  std::string prices;  // cost range: price table (default: built-in data/prices.json)
  bool batch = false;  // cost range at the Batch API discount
  // A table input, as `run` reads it.
  std::string template_path;
  std::string system_path;
  std::string schema_path;
  std::string schema_name = "answer";
  std::uint64_t max_completion_tokens = 0;
};

struct Totals {
  std::uint64_t requests = 0;
  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_tokens = 0;
  std::uint64_t charged_tokens = 0;  // the pacing charge (the provider's count at admission)
  std::uint64_t unparsed = 0;
  std::uint64_t error_rows = 0;  // table rows that cannot become a request (never sent)
};

// The fastest schedule a per-period limit counted over a rolling window allows: the
// period's quota at once, the next when the first leaves the window, ...: the last request
// can go after ceil(total / limit) - 1 periods (0 when it all fits in one).
double periods_needed(double total, double limit) { return total <= limit ? 0.0 : std::ceil(total / limit) - 1.0; }

std::string minutes_text(double minutes) {
  char buf[64];
  if (minutes < 1.0) {
    std::snprintf(buf, sizeof buf, "%.1f s", minutes * 60);
  } else if (minutes < 120) {
    std::snprintf(buf, sizeof buf, "%.1f min", minutes);
  } else if (minutes < 48 * 60) {
    std::snprintf(buf, sizeof buf, "%.2f h", minutes / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f days", minutes / 1440);
  }
  return buf;
}

int run(const EstimateFlags& f) {
  const auto default_endpoint = endpoint_from_path(f.endpoint);
  if (!default_endpoint) throw Error("unknown endpoint '" + f.endpoint + "' (e.g. /v1/chat/completions)");

  tokens::ModelMap models;
  for (const auto& r : f.model_rules) models.add_rule(r);
  tokens::EstimateOptions options;
  options.models = &models;
  options.default_completion_tokens = f.default_max_tokens.value_or(4096);
  const auto provider = provider_from_name(f.provider);
  if (!provider) throw Error("--provider must be openai, azure, groq or none");
  limit::ChargeModel charge = f.charge.empty() ? limit::default_charge_model(*provider) : limit::parse_charge_model(f.charge);
  if (f.default_max_tokens) charge.default_allowance_tokens = *f.default_max_tokens;
  if (!f.encoding.empty()) {
    const auto id = tokens::encoding_from_name(f.encoding);
    if (!id) throw Error("unknown encoding '" + f.encoding + "' (known: cl100k_base, o200k_base)");
    options.encoding = &tokens::Encoding::get(*id);
  } else if (!f.model.empty()) {
    options.encoding = &tokens::Encoding::get(models.lookup_or(f.model, options.default_encoding));
  }

  Totals all;
  std::map<std::string, Totals> by_model;
  auto add = [&](Endpoint endpoint, std::string_view body_text, const std::string& model) {
    const auto est = tokens::estimate_request(endpoint, body_text, options);
    const std::uint64_t charged = charge.charge(limit::ChargeInputs{est.prompt_tokens, est.max_tokens_per_choice, est.choices, est.generates});
    for (Totals* t : {&all, &by_model[model]}) {
      ++t->requests;
      t->prompt_tokens += est.prompt_tokens;
      t->completion_tokens += est.completion_allowance_tokens;
      t->charged_tokens += charged;
      t->unparsed += est.body_parsed ? 0 : 1;
    }
  };
  const bool table_input = tables::is_table_path(f.input) || !f.template_path.empty();
  if (table_input) {
    // The requests `run` would send for this table, built by the same code.
    if (f.template_path.empty()) throw Error("a table input (" + f.input + ") needs --template FILE");
    if (f.model.empty()) throw Error("a table input needs --model");
    tables::RowRequestOptions ro;
    ro.model = f.model;
    ro.template_text = read_text_file(f.template_path, "template");
    if (!f.system_path.empty()) ro.system_prompt = read_text_file(f.system_path, "system prompt");
    if (!f.schema_path.empty()) ro.response_format_json = schema::response_format(read_schema_file(f.schema_path), f.schema_name);
    if (f.max_completion_tokens > 0) ro.max_completion_tokens = f.max_completion_tokens;
    auto rows = tables::open_rows(f.input);
    const tables::RowRequestBuilder builder(ro, rows->columns(), rows->has_header());
    tables::Row row;
    while (rows->next(row)) {
      if (!row.error.empty()) {
        ++all.error_rows;
        continue;
      }
      const auto rr = builder.build(row);
      if (!rr.error.empty()) {
        ++all.error_rows;
        continue;
      }
      add(Endpoint::chat_completions, rr.request.body, f.model);
    }
  } else {
    std::ifstream file;
    std::istream* in = &std::cin;
    if (f.input != "-") {
      file.open(f.input, std::ios::binary);
      if (!file) throw Error("cannot open '" + f.input + "'");
      in = &file;
    }
    std::string line;
    std::uint64_t line_no = 0;
    while (std::getline(*in, line)) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto doc = nlohmann::json::parse(line, nullptr, false);
      if (doc.is_discarded() || !doc.is_object()) {
        throw Error(f.input + ":" + std::to_string(line_no) + ": not a JSON object");
      }
      Endpoint endpoint = *default_endpoint;
      std::string body_text;
      const nlohmann::json* body = &doc;
      if (doc.contains("body") && doc["body"].is_object()) {
        body = &doc["body"];
        const auto url = doc.value("url", std::string());
        const auto e = endpoint_from_path(url);
        if (!e) throw Error(f.input + ":" + std::to_string(line_no) + ": unknown url '" + url + "'");
        endpoint = *e;
        body_text = body->dump();
      } else {
        endpoint = guess_endpoint(line).value_or(*default_endpoint);  // the endpoint its fields imply, else --endpoint's
        body_text = line;
      }
      add(endpoint, body_text, f.model.empty() ? body->value("model", std::string("(none)")) : f.model);
    }
  }

  // What the server counts against the limits is the charge, not the worst case; each
  // dimension allows its quota per window, and the slowest decides.
  const double charged_tokens = static_cast<double>(all.charged_tokens);
  const double requests = static_cast<double>(all.requests);
  // The limit that sets the time is named.
  double minutes = 0;
  const char* bound_by = "";
  // The limit that binds is the one with the most periods' worth of quota to send; it is
  // named even when one window holds the whole job.
  double most_periods = 0;
  auto bound = [&](double total, double limit, double minutes_per_period, const char* name) {
    minutes = std::max(minutes, periods_needed(total, limit) * minutes_per_period);
    if (total / limit * minutes_per_period > most_periods) {
      most_periods = total / limit * minutes_per_period;
      bound_by = name;
    }
  };
  if (f.rpm > 0) bound(requests, f.rpm, 1, "rpm");
  if (f.tpm > 0) bound(charged_tokens, f.tpm, 1, "tpm");
  if (f.rpd > 0) bound(requests, f.rpd, 1440, "rpd");
  if (f.tpd > 0) bound(charged_tokens, f.tpd, 1440, "tpd");
  const bool limited = f.rpm > 0 || f.tpm > 0 || f.rpd > 0 || f.tpd > 0;

  // Cost range (docs/tables.md): at least prompt x input, at most + allowance x output.
  const cost::PriceTable prices = f.prices.empty() ? cost::PriceTable::builtin() : cost::PriceTable::load(f.prices);
  const cost::Tier tier = f.batch ? cost::Tier::batch : cost::Tier::standard;
  std::map<std::string, cost::CostRange> ranges;
  cost::CostRange total_range;
  total_range.priced = !by_model.empty();
  for (const auto& [m, t] : by_model) {
    const auto r = cost::cost_range(prices, m, t.prompt_tokens, t.completion_tokens, tier);
    ranges[m] = r;
    total_range.min_usd += r.min_usd;
    total_range.max_usd += r.max_usd;
    total_range.priced = total_range.priced && r.priced;
  }
  // The same job through `floodgate batch` (Batch API prices), shown beside the real-time cost.
  cost::CostRange batch_range;
  batch_range.priced = !by_model.empty();
  for (const auto& [m, t] : by_model) {
    const auto r = cost::cost_range(prices, m, t.prompt_tokens, t.completion_tokens, cost::Tier::batch);
    batch_range.min_usd += r.min_usd;
    batch_range.max_usd += r.max_usd;
    batch_range.priced = batch_range.priced && r.priced;
  }
  auto range_text = [](const cost::CostRange& r) {
    if (!r.priced) return std::string("unpriced");
    char buf[96];
    std::snprintf(buf, sizeof buf, "$%.4f - $%.4f", r.min_usd, r.max_usd);
    return std::string(buf);
  };

  if (f.json) {
    nlohmann::json out = {{"requests", all.requests},
                          {"prompt_tokens", all.prompt_tokens},
                          {"completion_tokens_max", all.completion_tokens},
                          {"total_tokens_max", all.prompt_tokens + all.completion_tokens},
                          {"charged_tokens", all.charged_tokens},
                          {"charge", charge.describe()}};
    if (limited) {
      out["min_seconds"] = minutes * 60;
      if (*bound_by) out["bound_by"] = bound_by;
    }
    if (all.error_rows > 0) out["error_rows"] = all.error_rows;
    out["cost_usd_min"] = total_range.min_usd;
    out["cost_usd_max"] = total_range.max_usd;
    out["prices_as_of"] = prices.as_of();
    out["batch_cost_usd_min"] = batch_range.min_usd;
    out["batch_cost_usd_max"] = batch_range.max_usd;
    nlohmann::json per = nlohmann::json::object();
    for (const auto& [m, t] : by_model) {
      per[m] = {{"requests", t.requests},
                {"prompt_tokens", t.prompt_tokens},
                {"completion_tokens_max", t.completion_tokens},
                {"charged_tokens", t.charged_tokens}};
      if (ranges[m].priced) {
        per[m]["cost_usd_min"] = ranges[m].min_usd;
        per[m]["cost_usd_max"] = ranges[m].max_usd;
      }
    }
    out["models"] = per;
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  std::printf("%-28s %10s %16s %22s\n", "model", "requests", "prompt tokens", "completion tokens (max)");
  for (const auto& [m, t] : by_model) {
    std::printf("%-28s %10llu %16llu %22llu\n", m.c_str(), static_cast<unsigned long long>(t.requests),
                static_cast<unsigned long long>(t.prompt_tokens), static_cast<unsigned long long>(t.completion_tokens));
  }
  std::printf("%-28s %10llu %16llu %22llu\n", "total", static_cast<unsigned long long>(all.requests),
              static_cast<unsigned long long>(all.prompt_tokens), static_cast<unsigned long long>(all.completion_tokens));
  std::printf("worst-case tokens: %llu (budgets and --max-cost reserve this)\n",
              static_cast<unsigned long long>(all.prompt_tokens + all.completion_tokens));
  std::printf("charged tokens: %llu (what the provider counts against tokens/min at admission, charge %s; the pace)\n",
              static_cast<unsigned long long>(all.charged_tokens), charge.describe().c_str());
  for (const auto& [m, r] : ranges) std::printf("cost %-23s %s\n", m.c_str(), range_text(r).c_str());
  std::printf("cost (USD%s, prices as of %s): %s%s\n", f.batch ? ", Batch API" : "", prices.as_of().c_str(),
              range_text(total_range).c_str(), total_range.priced ? "" : " (some models have no price; --prices FILE)");
  if (!f.batch && batch_range.priced) {
    std::printf("cost with `floodgate batch` (Batch API prices): %s\n", range_text(batch_range).c_str());
  }
  if (all.error_rows) {
    std::printf("table rows that cannot become a request (not sent, not counted): %llu\n",
                static_cast<unsigned long long>(all.error_rows));
  }
  if (all.unparsed) std::printf("bodies that were not JSON (counted as text): %llu\n", static_cast<unsigned long long>(all.unparsed));
  if (limited) {
    const std::string_view b = bound_by;
    const bool by_requests = b == "rpm" || b == "rpd";
    std::printf("minimum time at these limits: %s (set by %s: %.0f %s at %.0f/%s; %s)\n", minutes_text(minutes).c_str(),
                b == "rpm" ? "requests/min" : b == "tpm" ? "tokens/min" : b == "rpd" ? "requests/day" : "tokens/day",
                by_requests ? requests : charged_tokens, by_requests ? "requests" : "charged tokens",
                b == "rpm" ? f.rpm : b == "tpm" ? f.tpm : b == "rpd" ? f.rpd : f.tpd, b == "rpm" || b == "tpm" ? "min" : "day",
                minutes == 0 ? "one window holds it all: the time the answers take" : "each 60 s window full, plus the answers' time");
  } else {
    std::printf("minimum time: pass --rpm/--tpm (and --rpd/--tpd) to compute it\n");
  }
  return 0;
}

}  // namespace

void register_estimate(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<EstimateFlags>();
  auto* cmd = app.add_subcommand("estimate", "Count a job's requests and tokens (worst case and the provider's charge), and the least time the "
                                 "limits allow by the server's own counting");
  cmd->add_option("input", f->input,
                  "JSONL of Batch API lines or bare bodies, '-' for stdin; or a table (.csv/.tsv, or JSONL rows\n"
                  "with --template) read as `run` reads it")
      ->required();
  auto* model = cmd->add_option("--model,-m", f->model, "count every request as this model (a table's requests: their model)");
  cmd->add_option("--template", f->template_path, "prompt template of a table input, as for `run`");
  cmd->add_option("--system", f->system_path, "system prompt file of a table input, as for `run`");
  cmd->add_option("--schema", f->schema_path, "JSON Schema of a table's answers, sent as for `run` (counts its tokens)");
  cmd->add_option("--schema-name", f->schema_name, "name of the schema in response_format")->capture_default_str();
  cmd->add_option("--max-completion-tokens", f->max_completion_tokens,
                  "max_completion_tokens of a table's requests (their completion allowance)");
  cmd->add_option("--encoding,-e", f->encoding, "count with this encoding (cl100k_base, o200k_base)")->excludes(model);
  cmd->add_option("--model-encoding", f->model_rules, "extra model rule MODEL=ENCODING (prefix with a trailing *)");
  cmd->add_option("--endpoint", f->endpoint, "endpoint of bare bodies without messages/prompt/input")->capture_default_str();
  cmd->add_option("--default-max-tokens,--default-completion-tokens", f->default_max_tokens,
                  "completion allowance when a body sets no max_tokens, for the charge and the worst case alike "
                  "(default: the charge model's for the charge, 16 for OpenAI; 4096 for the worst case)");
  cmd->add_option("--provider", f->provider, "whose charge model: openai, azure, groq, none")->capture_default_str();
  cmd->add_option("--charge", f->charge, "charge rule (as for run: openai, input+N, max(input,N), flat:N, context:N)");
  cmd->add_option("--rpm", f->rpm, "requests per minute limit");
  cmd->add_option("--tpm", f->tpm, "tokens per minute limit");
  cmd->add_option("--rpd", f->rpd, "requests per day limit");
  cmd->add_option("--tpd", f->tpd, "tokens per day limit");
  cmd->add_flag("--json", f->json, "print one JSON object");
  cmd->add_option("--prices", f->prices, "price table for the cost range (default: the built-in data/prices.json)");
  cmd->add_flag("--batch", f->batch, "cost range at the Batch API discount");
  cmd->callback([f, &exit_code] { exit_code = run(*f); });
}

}  // namespace floodgate::cli
