#pragma once
// The simulator's own account of rate limits, kept per (API key, model) as the real API
// does. It is deliberately independent of the client's limiter (src/limit): a judge that
// shares the defendant's code proves nothing.
//
// Model: four dimensions (requests/min, tokens/min, requests/day, tokens/day), each counted
// as ModelLimits::window says:
//   bucket:    `limit` permits that start full and refill continuously at limit/period
//              ("remaining" creeps back up; "reset" is the time until the bucket is full);
//   rolling:   the charges admitted in the last period (60 s or 24 h) must stay within
//              the limit ("remaining" = limit - that sum; "reset" = the time until the
//              newest charge leaves the window);
//   quantized: rolling, and every per-minute limit also holds over each `quantum`
//              (limit × quantum / 60 s, at least 1; a single charge above that share
//              fits an empty quantum). Headers show the per-minute figures only.
// A request is admitted when every limited dimension holds its cost (1 request, N tokens);
// then all are charged at once. Otherwise nothing is charged and the answer names the
// dimension that needs the longest wait and that wait. A cost above a per-minute/per-day
// limit can never fit ("Request too large").

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "floodgate/core/clock.hpp"
#include "floodgate/sim/options.hpp"

namespace floodgate::sim {

enum class LimitDimension { requests_per_minute, tokens_per_minute, requests_per_day, tokens_per_day };

// "requests per min (RPM)", "tokens per day (TPD)" ... as the real messages write them.
[[nodiscard]] const char* describe(LimitDimension dim) noexcept;
// "requests" or "tokens": the `type` of the 429 error body.
[[nodiscard]] const char* error_type(LimitDimension dim) noexcept;

// Values for the x-ratelimit-* headers (minute dimensions). An unlimited dimension is
// reported with kUnlimited as limit and remaining.
struct RateHeaders {
  static constexpr std::int64_t kUnlimited = 1'000'000'000;
  std::int64_t limit_requests = kUnlimited;
  std::int64_t remaining_requests = kUnlimited;
  std::chrono::nanoseconds reset_requests{0};
  std::int64_t limit_tokens = kUnlimited;
  std::int64_t remaining_tokens = kUnlimited;
  std::chrono::nanoseconds reset_tokens{0};
  // The per-day request figures (Groq's dialect sends these as its requests headers).
  std::int64_t limit_requests_day = kUnlimited;
  std::int64_t remaining_requests_day = kUnlimited;
  std::chrono::nanoseconds reset_requests_day{0};
};

struct Admission {
  bool admitted = true;
  bool never_fits = false;             // the cost exceeds the limit itself
  LimitDimension dimension = LimitDimension::requests_per_minute;
  std::int64_t limit = 0;
  std::int64_t used = 0;               // limit - remaining, rounded up
  std::int64_t requested = 0;
  std::chrono::nanoseconds retry_after{0};
  RateHeaders headers;                 // state after the decision
};

class LimitTable {
 public:
  LimitTable() = default;
  LimitTable(const LimitTable&) = delete;
  LimitTable& operator=(const LimitTable&) = delete;

  // Admits (and charges) or refuses one request costing `tokens` tokens.
  Admission admit(std::string_view api_key, std::string_view model, const ModelLimits& limits,
                  std::int64_t tokens, TimePoint now);
  // Corrects the token charge of the request admitted at `admitted_at` by `delta_tokens`
  // (negative: a refund down to the real usage). Bucket: the tokens go back (up to the
  // limit); rolling/quantized: that admission's entry shrinks (nothing when it has left
  // the window).
  void settle(std::string_view api_key, std::string_view model, const ModelLimits& limits, TimePoint admitted_at,
              std::int64_t delta_tokens, TimePoint now);
  // The header values without charging anything.
  RateHeaders peek(std::string_view api_key, std::string_view model, const ModelLimits& limits, TimePoint now);

 private:
  // One dimension: a bucket, or a rolling window (plus its quantum window).
  struct Window {
    struct Entry {
      TimePoint at;
      double cost;
    };
    std::deque<Entry> entries;
    double used = 0;
  };
  struct Dim {
    double available = -1;  // bucket; < 0: not yet initialised (starts full)
    TimePoint last{};
    Window window;          // rolling and quantized
    Window quantum;         // quantized, per-minute dimensions
  };
  struct State {
    Dim dims[4];
  };
  State& state_for(std::string_view api_key, std::string_view model);

  std::mutex mutex_;
  std::unordered_map<std::string, State> states_;
};

}  // namespace floodgate::sim
