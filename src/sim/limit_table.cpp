#include "sim/limit_table.hpp"

#include <algorithm>
#include <cmath>

namespace floodgate::sim {
namespace {

using std::chrono::nanoseconds;

constexpr double kMinuteNs = 60e9;
constexpr double kDayNs = 86400e9;

struct DimSpec {
  std::int64_t limit;
  double period_ns;
};

DimSpec spec_of(const ModelLimits& limits, int index) {
  switch (index) {
    case 0: return {limits.requests_per_minute, kMinuteNs};
    case 1: return {limits.tokens_per_minute, kMinuteNs};
    case 2: return {limits.requests_per_day, kDayNs};
    default: return {limits.tokens_per_day, kDayNs};
  }
}

// Brings a bucket up to `now` and returns its available permits.
template <typename Bucket>
double refill(Bucket& b, const DimSpec& spec, TimePoint now) {
  const auto cap = static_cast<double>(spec.limit);
  if (b.available < 0) {
    b.available = cap;
    b.last = now;
    return cap;
  }
  if (now > b.last) {
    const double elapsed_ns = static_cast<double>((now - b.last).count());
    b.available = std::min(cap, b.available + elapsed_ns * cap / spec.period_ns);
    b.last = now;
  }
  b.available = std::min(b.available, cap);  // a lowered limit takes effect at once
  return b.available;
}

nanoseconds time_to(double missing, const DimSpec& spec) {
  if (missing <= 0) return nanoseconds{0};
  const double ns = std::ceil(missing * spec.period_ns / static_cast<double>(spec.limit));
  return nanoseconds{static_cast<nanoseconds::rep>(ns)};
}

}  // namespace

const char* describe(LimitDimension dim) noexcept {
  switch (dim) {
    case LimitDimension::requests_per_minute: return "requests per min (RPM)";
    case LimitDimension::tokens_per_minute: return "tokens per min (TPM)";
    case LimitDimension::requests_per_day: return "requests per day (RPD)";
    case LimitDimension::tokens_per_day: return "tokens per day (TPD)";
  }
  return "";
}

const char* error_type(LimitDimension dim) noexcept {
  return (dim == LimitDimension::requests_per_minute || dim == LimitDimension::requests_per_day) ? "requests"
                                                                                                  : "tokens";
}

LimitTable::State& LimitTable::state_for(std::string_view api_key, std::string_view model) {
  std::string id;
  id.reserve(api_key.size() + model.size() + 1);
  id.append(api_key).push_back('\0');
  id.append(model);
  return states_[id];
}

namespace {

template <typename State>
RateHeaders headers_of(State& state, const ModelLimits& limits) {
  RateHeaders h;
  const DimSpec rpm = spec_of(limits, 0);
  if (rpm.limit > 0) {
    const double avail = state.dims[0].available;
    h.limit_requests = rpm.limit;
    h.remaining_requests = static_cast<std::int64_t>(std::floor(avail));
    h.reset_requests = time_to(static_cast<double>(rpm.limit) - avail, rpm);
  }
  const DimSpec tpm = spec_of(limits, 1);
  if (tpm.limit > 0) {
    const double avail = state.dims[1].available;
    h.limit_tokens = tpm.limit;
    h.remaining_tokens = static_cast<std::int64_t>(std::floor(avail));
    h.reset_tokens = time_to(static_cast<double>(tpm.limit) - avail, tpm);
  }
  return h;
}

}  // namespace

Admission LimitTable::admit(std::string_view api_key, std::string_view model, const ModelLimits& limits,
                            std::int64_t tokens, TimePoint now) {
  Admission result;
  const std::lock_guard lock(mutex_);
  State& state = state_for(api_key, model);
  double available[4] = {0, 0, 0, 0};
  const double cost[4] = {1, static_cast<double>(tokens), 1, static_cast<double>(tokens)};
  nanoseconds worst{-1};
  for (int i = 0; i < 4; ++i) {
    const DimSpec spec = spec_of(limits, i);
    if (spec.limit <= 0) continue;
    available[i] = refill(state.dims[i], spec, now);
    const auto dim = static_cast<LimitDimension>(i);
    if (cost[i] > static_cast<double>(spec.limit)) {
      // Can never fit: report at once, this wins over any wait.
      result.admitted = false;
      result.never_fits = true;
      result.dimension = dim;
      result.limit = spec.limit;
      result.requested = static_cast<std::int64_t>(cost[i]);
      result.used = spec.limit - static_cast<std::int64_t>(std::floor(available[i]));
      result.retry_after = nanoseconds{0};
      worst = nanoseconds::max();
      continue;
    }
    if (available[i] + 1e-9 < cost[i]) {
      const nanoseconds wait = time_to(cost[i] - available[i], spec);
      if (wait > worst) {
        worst = wait;
        result.admitted = false;
        result.dimension = dim;
        result.limit = spec.limit;
        result.requested = static_cast<std::int64_t>(cost[i]);
        result.used = spec.limit - static_cast<std::int64_t>(std::floor(available[i]));
        result.retry_after = std::max(wait, nanoseconds{std::chrono::milliseconds(1)});
      }
    }
  }
  if (result.admitted) {
    for (int i = 0; i < 4; ++i) {
      const DimSpec spec = spec_of(limits, i);
      if (spec.limit > 0) state.dims[i].available -= cost[i];
    }
  }
  result.headers = headers_of(state, limits);
  return result;
}

RateHeaders LimitTable::peek(std::string_view api_key, std::string_view model, const ModelLimits& limits,
                             TimePoint now) {
  const std::lock_guard lock(mutex_);
  State& state = state_for(api_key, model);
  for (int i = 0; i < 2; ++i) {
    const DimSpec spec = spec_of(limits, i);
    if (spec.limit > 0) refill(state.dims[i], spec, now);
  }
  return headers_of(state, limits);
}

}  // namespace floodgate::sim
