// Fuzz target: the simulator's JSON request path (chat completions and embeddings) never
// crashes on any body, always answers with a status it documents and, for errors, a JSON
// error body. The first byte picks the endpoint.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "floodgate/core/clock.hpp"
#include "sim/simulator.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static floodgate::ManualClock clock;
  static floodgate::sim::Simulator* sim = [] {
    floodgate::sim::SimOptions o;
    o.models = floodgate::sim::default_models();
    for (auto& [name, spec] : o.models) {
      spec.limits.requests_per_minute = 1'000'000;
      spec.limits.tokens_per_minute = 1'000'000'000;
    }
    o.embedding_dim_override = 8;
    return new floodgate::sim::Simulator(o, clock);
  }();
  if (size == 0) return 0;
  static constexpr const char* kPaths[] = {"/v1/chat/completions", "/v1/embeddings", "/v1/models", "/v1/x"};
  const std::string_view path = kPaths[data[0] % 4];
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  floodgate::sim::RequestHead head{path == "/v1/models" ? "GET" : "POST", path, "Bearer sk-fuzz", "application/json", "", ""};
  const floodgate::sim::Reply reply = sim->handle(head, body);
  switch (reply.status) {
    case 200: case 400: case 404: case 413: case 429: break;
    default: std::abort();
  }
  if (reply.status != 200) {
    const auto j = nlohmann::json::parse(reply.body, nullptr, false);
    if (j.is_discarded() || !j.contains("error")) std::abort();
  }
  clock.advance(std::chrono::milliseconds(1));
  return 0;
}
