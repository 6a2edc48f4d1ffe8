// How far floodgate's exact prompt estimate is from what the simulator charges.
// The simulator (src/sim, an independent judge) charges prompt tokens with its own chat
// accounting formula (docs/sim.md): by default (--token-charge exact) counted with the
// model's BPE encoder, or (--token-charge bytes) ceil(bytes / 4) per text plus 4 per
// message; it reserves max_tokens x n on top. floodgate's estimate counts the prompt
// exactly with BPE (docs/tokens.md). For every request of the given Batch-API JSONL files
// (and one chat request per line of a text file passed with --lines), prints per file:
// requests, the sum of the prompt counts (floodgate, sim exact, sim bytes), the mean and
// the largest |difference| per request against the sim's default (exact) charge, and the
// largest difference as a share of the request's completion allowance.
// Usage: estimate_vs_sim [--lines TEXT] [FILE.jsonl...]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "floodgate/tokens/encoding.hpp"
#include "floodgate/tokens/estimate.hpp"
#include "floodgate/tokens/model_map.hpp"
#include "sim/token_estimate.hpp"

namespace {

using floodgate::Endpoint;
using Json = nlohmann::json;

struct Stats {
  std::size_t requests = 0;
  double ours = 0, sim = 0, sim_bytes = 0, sum_abs = 0, max_abs = 0, max_share_of_allowance = 0;
};

void add(Stats& s, const Json& body, Endpoint endpoint) {
  const std::string text = body.dump();
  const auto est = floodgate::tokens::estimate_request(endpoint, text);
  const auto& encoding = floodgate::tokens::Encoding::get(
      floodgate::tokens::builtin_encoding_for_model(body.value("model", std::string()))
          .value_or(floodgate::tokens::EncodingId::o200k_base));
  const auto charge = [&](const floodgate::tokens::Encoding* enc) {
    return endpoint == Endpoint::embeddings
               ? static_cast<double>(floodgate::sim::estimate_embedding_input_tokens(body.at("input"), enc))
               : static_cast<double>(floodgate::sim::estimate_chat_prompt_tokens(body, enc));
  };
  const double sim = charge(&encoding);
  s.sim_bytes += charge(nullptr);
  const double diff = std::fabs(static_cast<double>(est.prompt_tokens) - sim);
  ++s.requests;
  s.ours += static_cast<double>(est.prompt_tokens);
  s.sim += sim;
  s.sum_abs += diff;
  s.max_abs = std::max(s.max_abs, diff);
  if (est.completion_allowance_tokens > 0) {
    s.max_share_of_allowance = std::max(s.max_share_of_allowance, diff / static_cast<double>(est.completion_allowance_tokens));
  }
}

void print(const std::string& name, const Stats& s) {
  std::printf("%-28s requests %5zu  prompt tokens: floodgate %9.0f  sim exact %9.0f (%+.2f%%)  sim bytes %9.0f (%+.1f%%)"
              "  |diff| mean %.2f max %.0f  max |diff|/allowance %.3f\n",
              name.c_str(), s.requests, s.ours, s.sim, 100.0 * (s.sim - s.ours) / std::max(1.0, s.ours), s.sim_bytes,
              100.0 * (s.sim_bytes - s.ours) / std::max(1.0, s.ours),
              s.sum_abs / std::max<double>(1, static_cast<double>(s.requests)), s.max_abs, s.max_share_of_allowance);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    Stats s;
    if (arg == "--lines" && i + 1 < argc) {
      std::ifstream in(argv[++i]);
      std::string line;
      while (std::getline(in, line)) {
        if (line.empty()) continue;
        add(s, Json{{"model", "gpt-4o-mini"}, {"max_tokens", 256},
                    {"messages", {{{"role", "system"}, {"content", "Translate to English."}}, {{"role", "user"}, {"content", line}}}}},
            Endpoint::chat_completions);
      }
      print(std::string("lines of ") + argv[i], s);
      continue;
    }
    std::ifstream in(arg);
    std::string line;
    while (std::getline(in, line)) {
      const auto doc = Json::parse(line, nullptr, false);
      if (doc.is_discarded() || !doc.contains("body")) continue;
      const auto endpoint = floodgate::endpoint_from_path(doc.value("url", std::string()));
      if (!endpoint || (*endpoint != Endpoint::chat_completions && *endpoint != Endpoint::embeddings)) continue;
      add(s, doc.at("body"), *endpoint);
    }
    print(arg, s);
  }
  return 0;
}
