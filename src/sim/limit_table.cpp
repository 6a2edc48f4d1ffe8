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
template <typename Dim>
double refill(Dim& b, const DimSpec& spec, TimePoint now) {
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

nanoseconds period_of(double period_ns) {
  return nanoseconds{static_cast<nanoseconds::rep>(period_ns)};
}

// Drops the charges that left the window (now - period, now].
template <typename Window>
void expire(Window& w, nanoseconds period, TimePoint now) {
  while (!w.entries.empty() && w.entries.front().at <= now - period) {
    w.used -= w.entries.front().cost;
    w.entries.pop_front();
  }
  if (w.entries.empty()) w.used = 0;  // no drift from repeated subtraction
}

// How long until `cost` fits a rolling window of `limit` (0: now). `empty_fits`: any
// cost fits an empty window (the quantum window, whose share may be below one charge).
template <typename Window>
nanoseconds rolling_wait(const Window& w, double limit, double cost, nanoseconds period, TimePoint now,
                         bool empty_fits) {
  const auto fits = [&](double used) { return used + cost <= limit + 1e-9 || (empty_fits && used <= 1e-9); };
  double used = w.used;
  if (fits(used)) return nanoseconds{0};
  for (const auto& e : w.entries) {
    used -= e.cost;
    if (fits(used)) return std::max(nanoseconds{1}, e.at + period - now);
  }
  return std::max(nanoseconds{1}, period);  // not reached for a cost within the limit
}

// The per-quantum share of a per-minute limit.
double quantum_limit(std::int64_t limit, nanoseconds quantum) {
  const double share = std::floor(static_cast<double>(limit) * static_cast<double>(quantum.count()) / kMinuteNs);
  return std::max(1.0, share);
}

struct Figures {
  std::int64_t limit;
  std::int64_t remaining;
  nanoseconds reset;
};

template <typename Dim>
Figures figures_of(const Dim& d, const DimSpec& spec, WindowMode mode, TimePoint now) {
  if (mode == WindowMode::bucket) {
    const double avail = d.available;
    return {spec.limit, static_cast<std::int64_t>(std::floor(avail)), time_to(static_cast<double>(spec.limit) - avail, spec)};
  }
  const double remaining = static_cast<double>(spec.limit) - d.window.used;
  const nanoseconds reset = d.window.entries.empty()
                                ? nanoseconds{0}
                                : std::max(nanoseconds{0}, d.window.entries.back().at + period_of(spec.period_ns) - now);
  return {spec.limit, static_cast<std::int64_t>(std::floor(std::max(0.0, remaining) + 1e-9)), reset};
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
RateHeaders headers_of(const State& state, const ModelLimits& limits, TimePoint now) {
  RateHeaders h;
  if (const DimSpec rpm = spec_of(limits, 0); rpm.limit > 0) {
    const Figures f = figures_of(state.dims[0], rpm, limits.window, now);
    h.limit_requests = f.limit;
    h.remaining_requests = f.remaining;
    h.reset_requests = f.reset;
  }
  if (const DimSpec tpm = spec_of(limits, 1); tpm.limit > 0) {
    const Figures f = figures_of(state.dims[1], tpm, limits.window, now);
    h.limit_tokens = f.limit;
    h.remaining_tokens = f.remaining;
    h.reset_tokens = f.reset;
  }
  if (const DimSpec rpd = spec_of(limits, 2); rpd.limit > 0) {
    const Figures f = figures_of(state.dims[2], rpd, limits.window, now);
    h.limit_requests_day = f.limit;
    h.remaining_requests_day = f.remaining;
    h.reset_requests_day = f.reset;
  }
  return h;
}

// Brings dimension `i` up to `now`; returns what it can still take (bucket: available;
// rolling: limit - used).
template <typename Dim>
double bring_up(Dim& d, const DimSpec& spec, const ModelLimits& limits, int i, TimePoint now) {
  if (limits.window == WindowMode::bucket) return refill(d, spec, now);
  expire(d.window, period_of(spec.period_ns), now);
  if (limits.window == WindowMode::quantized && i < 2) expire(d.quantum, limits.quantum, now);
  return static_cast<double>(spec.limit) - d.window.used;
}

// The wait before `cost` fits dimension `i` (0: fits now).
template <typename Dim>
nanoseconds wait_for(const Dim& d, const DimSpec& spec, const ModelLimits& limits, int i, double cost, TimePoint now) {
  if (limits.window == WindowMode::bucket) {
    return d.available + 1e-9 < cost ? time_to(cost - d.available, spec) : nanoseconds{0};
  }
  nanoseconds wait = rolling_wait(d.window, static_cast<double>(spec.limit), cost, period_of(spec.period_ns), now, false);
  if (limits.window == WindowMode::quantized && i < 2) {
    wait = std::max(wait, rolling_wait(d.quantum, quantum_limit(spec.limit, limits.quantum), cost, limits.quantum, now, true));
  }
  return wait;
}

template <typename Window>
void record(Window& w, TimePoint now, double cost) {
  if (!w.entries.empty() && w.entries.back().at >= now) {
    w.entries.back().cost += cost;  // same instant (or a clock step back): one entry
  } else {
    w.entries.push_back({now, cost});
  }
  w.used += cost;
}

template <typename Dim>
void charge(Dim& d, const ModelLimits& limits, int i, TimePoint now, double cost) {
  if (limits.window == WindowMode::bucket) {
    d.available -= cost;
    return;
  }
  record(d.window, now, cost);
  if (limits.window == WindowMode::quantized && i < 2) record(d.quantum, now, cost);
}

// Corrects the charge admitted at `at` in a token dimension by `delta` (negative: refund).
// A charge already out of the window needs no correction.
template <typename Dim>
void correct(Dim& d, const DimSpec& spec, const ModelLimits& limits, int i, TimePoint at, double delta) {
  if (limits.window == WindowMode::bucket) {
    d.available = std::min(static_cast<double>(spec.limit), d.available - delta);
    return;
  }
  const auto fix = [at, delta](auto& w) {
    for (auto it = w.entries.rbegin(); it != w.entries.rend(); ++it) {
      if (it->at < at) return;
      if (it->at == at) {
        const double applied = std::max(-it->cost, delta);
        it->cost += applied;
        w.used = std::max(0.0, w.used + applied);
        return;
      }
    }
  };
  fix(d.window);
  if (limits.window == WindowMode::quantized && i < 2) fix(d.quantum);
}

}  // namespace

Admission LimitTable::admit(std::string_view api_key, std::string_view model, const ModelLimits& limits,
                            std::int64_t tokens, TimePoint now) {
  Admission result;
  const std::lock_guard lock(mutex_);
  State& state = state_for(api_key, model);
  const double cost[4] = {1, static_cast<double>(tokens), 1, static_cast<double>(tokens)};
  nanoseconds worst{-1};
  for (int i = 0; i < 4; ++i) {
    const DimSpec spec = spec_of(limits, i);
    if (spec.limit <= 0) continue;
    Dim& d = state.dims[i];
    const double available = bring_up(d, spec, limits, i, now);
    const auto dim = static_cast<LimitDimension>(i);
    if (cost[i] > static_cast<double>(spec.limit)) {
      // Can never fit: report at once, this wins over any wait.
      result.admitted = false;
      result.never_fits = true;
      result.dimension = dim;
      result.limit = spec.limit;
      result.requested = static_cast<std::int64_t>(cost[i]);
      result.used = spec.limit - static_cast<std::int64_t>(std::floor(available));
      result.retry_after = nanoseconds{0};
      worst = nanoseconds::max();
      continue;
    }
    const nanoseconds wait = wait_for(d, spec, limits, i, cost[i], now);
    if (wait > nanoseconds{0} && wait > worst) {
      worst = wait;
      result.admitted = false;
      result.dimension = dim;
      result.limit = spec.limit;
      result.requested = static_cast<std::int64_t>(cost[i]);
      result.used = spec.limit - static_cast<std::int64_t>(std::floor(available + 1e-9));
      result.retry_after = std::max(wait, nanoseconds{std::chrono::milliseconds(1)});
    }
  }
  if (result.admitted) {
    for (int i = 0; i < 4; ++i) {
      if (spec_of(limits, i).limit > 0) charge(state.dims[i], limits, i, now, cost[i]);
    }
  }
  result.headers = headers_of(state, limits, now);
  return result;
}

void LimitTable::settle(std::string_view api_key, std::string_view model, const ModelLimits& limits,
                        TimePoint admitted_at, std::int64_t delta_tokens, TimePoint now) {
  if (delta_tokens == 0) return;
  const std::lock_guard lock(mutex_);
  State& state = state_for(api_key, model);
  for (const int i : {1, 3}) {
    const DimSpec spec = spec_of(limits, i);
    if (spec.limit <= 0) continue;
    bring_up(state.dims[i], spec, limits, i, now);
    correct(state.dims[i], spec, limits, i, admitted_at, static_cast<double>(delta_tokens));
  }
}

RateHeaders LimitTable::peek(std::string_view api_key, std::string_view model, const ModelLimits& limits,
                             TimePoint now) {
  const std::lock_guard lock(mutex_);
  State& state = state_for(api_key, model);
  for (int i = 0; i < 3; ++i) {
    const DimSpec spec = spec_of(limits, i);
    if (spec.limit > 0) bring_up(state.dims[i], spec, limits, i, now);
  }
  return headers_of(state, limits, now);
}

}  // namespace floodgate::sim
