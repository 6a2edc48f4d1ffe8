// How many admissions per second the limiter decides: it sits on the engine's hot path
// (once per request, plus reconcile and observe per response), so it must cost well under
// a microsecond next to a 10,000 requests/s target.
#include <benchmark/benchmark.h>

#include "floodgate/limit/circuit_breaker.hpp"
#include "floodgate/limit/limiter_set.hpp"
#include "floodgate/limit/rate_limit_headers.hpp"

using namespace std::chrono_literals;
using namespace floodgate::limit;
using floodgate::TimePoint;

namespace {

// Admit, reconcile and observe one request, time advancing at the pace (always admitted).
void BM_AcquireReconcileObserve(benchmark::State& state) {
  RateLimiter limiter(Limits{600000, 60000000, 100000000, 1000000000}, true);
  TimePoint now = TimePoint{} + 1000h;
  RateLimitHeaders h;
  h.remaining_requests = 1000000;
  h.remaining_tokens = 100000000;
  h.reset_requests = 6ms;
  for (auto _ : state) {
    const Decision d = limiter.try_acquire(Cost{1, 100}, now);
    benchmark::DoNotOptimize(d);
    if (d.admitted()) limiter.reconcile(d.grant, Cost{1, 80}, now);
    limiter.observe(h, now);
    now += 100us;  // 10,000 requests/s
  }
  state.counters["decisions"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AcquireReconcileObserve);

// A blocked head asking again and again (the scheduler's worst case).
void BM_AcquireBlocked(benchmark::State& state) {
  RateLimiter limiter(Limits{60, 0, 0, 0}, false);
  TimePoint now = TimePoint{} + 1000h;
  (void)limiter.try_acquire(Cost{1, 0}, now);
  for (auto _ : state) {
    benchmark::DoNotOptimize(limiter.try_acquire(Cost{1, 0}, now));
  }
  state.counters["decisions"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AcquireBlocked);

void BM_ParseHeaders(benchmark::State& state) {
  // A real chat completion response's headers: 8 rate-limit ones among 18.
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"date", "Sun, 22 Nov 2026 17:00:00 GMT"},    {"content-type", "application/json"},
      {"transfer-encoding", "chunked"},             {"connection", "keep-alive"},
      {"access-control-expose-headers", "X-Request-ID"}, {"openai-organization", "org-abc"},
      {"openai-processing-ms", "412"},              {"openai-version", "2020-10-01"},
      {"strict-transport-security", "max-age=31536000; includeSubDomains; preload"},
      {"x-request-id", "req_123"},
      {"x-ratelimit-limit-requests", "5000"},        {"x-ratelimit-limit-tokens", "4000000"},
      {"x-ratelimit-remaining-requests", "4999"},    {"x-ratelimit-remaining-tokens", "3999850"},
      {"x-ratelimit-reset-requests", "12ms"},        {"x-ratelimit-reset-tokens", "2m59.56s"},
      {"server", "cloudflare"},                     {"cf-ray", "8e1f2a3b4c5d6e7f-AMS"}};
  const auto wall = std::chrono::system_clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(parse_rate_limit_headers(headers, wall));
  state.counters["parses"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ParseHeaders);

}  // namespace

BENCHMARK_MAIN();
