#include "floodgate/gateway/metrics.hpp"

#include <algorithm>
#include <iterator>
#include <sstream>

namespace floodgate::gateway {
namespace {

void family(std::ostringstream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

// A label value as Prometheus' text format wants it: backslash, quote and newline escaped.
std::string label(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

// The four dimensions of a limiter: name, limit, what the window holds.
struct Dimension {
  const char* name;
  double limit;
  double used;
};

std::vector<Dimension> dimensions(const limit::LimiterSnapshot& s) {
  return {{"requests_per_minute", s.limits.requests_per_minute, s.requests_last_minute},
          {"tokens_per_minute", s.limits.tokens_per_minute, s.tokens_last_minute},
          {"requests_per_day", s.limits.requests_per_day, s.requests_last_day},
          {"tokens_per_day", s.limits.tokens_per_day, s.tokens_last_day}};
}

void render_headroom(std::ostringstream& out, const std::vector<ModelHeadroom>& models) {
  family(out, "floodgate_gateway_limit", "gauge",
         "The upstream's limit in force for the model, configured or learned from its x-ratelimit-* headers (0: none known).");
  for (const auto& m : models) {
    for (const auto& d : dimensions(m.snapshot)) {
      out << "floodgate_gateway_limit{model=\"" << label(m.model) << "\",dimension=\"" << d.name << "\"} " << d.limit << '\n';
    }
  }
  family(out, "floodgate_gateway_limit_used", "gauge",
         "What the limiter's window holds for the model (admitted and settled), as of its last admission or answer.");
  for (const auto& m : models) {
    for (const auto& d : dimensions(m.snapshot)) {
      out << "floodgate_gateway_limit_used{model=\"" << label(m.model) << "\",dimension=\"" << d.name << "\"} " << d.used << '\n';
    }
  }
  family(out, "floodgate_gateway_limit_headroom", "gauge", "What the window still holds room for: limit - used (where a limit is known).");
  for (const auto& m : models) {
    for (const auto& d : dimensions(m.snapshot)) {
      if (d.limit <= 0) continue;
      out << "floodgate_gateway_limit_headroom{model=\"" << label(m.model) << "\",dimension=\"" << d.name << "\"} "
          << std::max(0.0, d.limit - d.used) << '\n';
    }
  }
  family(out, "floodgate_gateway_limit_learned", "gauge", "1 when the limits in force are not the configured ones (learned from the upstream).");
  for (const auto& m : models) out << "floodgate_gateway_limit_learned{model=\"" << label(m.model) << "\"} " << (m.learned ? 1 : 0) << '\n';
  family(out, "floodgate_gateway_limit_learning", "gauge",
         "1 while the limits are unknown and the first answer's headers are awaited (one request at a time).");
  for (const auto& m : models) {
    out << "floodgate_gateway_limit_learning{model=\"" << label(m.model) << "\"} " << (m.snapshot.learning ? 1 : 0) << '\n';
  }
  family(out, "floodgate_gateway_limit_paused_seconds", "gauge", "What is left of a pause the upstream asked for (0: none).");
  for (const auto& m : models) {
    out << "floodgate_gateway_limit_paused_seconds{model=\"" << label(m.model) << "\"} " << seconds(m.paused_for) << '\n';
  }
  family(out, "floodgate_gateway_limit_snapshot_age_seconds", "gauge", "Since the model's last admission or answer, when these were taken.");
  for (const auto& m : models) {
    out << "floodgate_gateway_limit_snapshot_age_seconds{model=\"" << label(m.model) << "\"} " << seconds(m.age) << '\n';
  }
}

// An Admission that keeps its limiter's snapshot for other threads (LimiterBoard).
class Watched final : public limit::Admission {
 public:
  Watched(std::unique_ptr<limit::Admission> inner, std::shared_ptr<LimiterBoard::Slot> slot, std::shared_ptr<const void> owner)
      : owner_(std::move(owner)), inner_(std::move(inner)), slot_(std::move(slot)) {}

  [[nodiscard]] limit::Decision try_acquire(limit::Cost cost, TimePoint now) override {
    const limit::Decision d = inner_->try_acquire(cost, now);
    if (d.admitted()) keep(now);
    return d;
  }
  [[nodiscard]] limit::Decision peek(limit::Cost cost, TimePoint now) const override { return inner_->peek(cost, now); }
  void settle(limit::Grant& grant, const limit::Answer& answer, TimePoint now) override {
    inner_->settle(grant, answer, now);
    keep(now);
  }
  void reconcile(const limit::Grant& grant, limit::Cost actual, TimePoint now) override {
    inner_->reconcile(grant, actual, now);
    keep(now);
  }
  bool on_rate_limited(const limit::RateLimitHeaders& headers, TimePoint now, limit::Cost cost) override {
    const bool even = inner_->on_rate_limited(headers, now, cost);
    keep(now);
    return even;
  }
  void pause_until(TimePoint until) override {
    inner_->pause_until(until);
    keep(last_);
  }
  void record_admitted(limit::Cost cost, TimePoint at, TimePoint now) override {
    inner_->record_admitted(cost, at, now);
    keep(now);
  }
  [[nodiscard]] limit::Limits limits() const override { return inner_->limits(); }
  [[nodiscard]] limit::LimiterSnapshot snapshot(TimePoint now) const override { return inner_->snapshot(now); }

 private:
  void keep(TimePoint now) {
    last_ = std::max(last_, now);
    limit::LimiterSnapshot s = inner_->snapshot(last_);
    const std::lock_guard lock(slot_->mu);
    slot_->snapshot = s;
    slot_->at = last_;
    slot_->taken = true;
  }

  std::shared_ptr<const void> owner_;  // outlives inner_ (declared first)
  std::unique_ptr<limit::Admission> inner_;
  std::shared_ptr<LimiterBoard::Slot> slot_;
  TimePoint last_{};  // the latest `now` of the engine's turns
};

}  // namespace

void HttpCounts::add_own_time(std::chrono::nanoseconds own) {
  const double seconds = std::chrono::duration<double>(std::max(own, std::chrono::nanoseconds::zero())).count();
  std::size_t bucket = 0;
  while (bucket < std::size(kOwnBucketsSeconds) && seconds > kOwnBucketsSeconds[bucket]) ++bucket;
  ++own_bucket_counts[bucket];
  own_seconds_sum += seconds;
}

std::string render_metrics(const std::vector<LaneStats>& lanes, const HttpCounts& counts, const std::vector<ModelHeadroom>& models) {
  std::ostringstream out;
  out.precision(9);
  family(out, "floodgate_gateway_lane_depth", "gauge", "Requests waiting in the lane now.");
  for (const auto& l : lanes) out << "floodgate_gateway_lane_depth{lane=\"" << l.name << "\"} " << l.depth << '\n';
  family(out, "floodgate_gateway_lane_queued_total", "counter", "Requests taken into the lane's queue.");
  for (const auto& l : lanes) out << "floodgate_gateway_lane_queued_total{lane=\"" << l.name << "\"} " << l.queued_total << '\n';
  family(out, "floodgate_gateway_lane_admitted_total", "counter", "Requests the lane handed upstream.");
  for (const auto& l : lanes) out << "floodgate_gateway_lane_admitted_total{lane=\"" << l.name << "\"} " << l.admitted_total << '\n';
  family(out, "floodgate_gateway_lane_rejected_total", "counter",
         "Requests answered 429 by the lane: its queue was full or their wait reached its deadline.");
  for (const auto& l : lanes) {
    out << "floodgate_gateway_lane_rejected_total{lane=\"" << l.name << "\",reason=\"queue_full\"} " << l.rejected_queue_full << '\n';
    out << "floodgate_gateway_lane_rejected_total{lane=\"" << l.name << "\",reason=\"deadline\"} " << l.rejected_deadline << '\n';
  }
  family(out, "floodgate_gateway_lane_cancelled_total", "counter", "Requests that left the queue unanswered (client gone).");
  for (const auto& l : lanes) out << "floodgate_gateway_lane_cancelled_total{lane=\"" << l.name << "\"} " << l.cancelled_total << '\n';
  family(out, "floodgate_gateway_lane_wait_seconds", "histogram", "Wait from arrival to admission upstream.");
  for (const auto& l : lanes) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < l.wait_bucket_counts.size(); ++i) {
      cumulative += l.wait_bucket_counts[i];
      out << "floodgate_gateway_lane_wait_seconds_bucket{lane=\"" << l.name << "\",le=\"";
      if (i < std::size(kWaitBucketsSeconds)) {
        out << kWaitBucketsSeconds[i];
      } else {
        out << "+Inf";
      }
      out << "\"} " << cumulative << '\n';
    }
    out << "floodgate_gateway_lane_wait_seconds_sum{lane=\"" << l.name << "\"} " << l.wait_seconds_sum << '\n';
    out << "floodgate_gateway_lane_wait_seconds_count{lane=\"" << l.name << "\"} " << cumulative << '\n';
  }
  family(out, "floodgate_gateway_own_seconds", "histogram",
         "The gateway's own time per call it relayed: request read to answer written, less its waits (lane, engine queue) "
         "and the upstream's.");
  {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < counts.own_bucket_counts.size(); ++i) {
      cumulative += counts.own_bucket_counts[i];
      out << "floodgate_gateway_own_seconds_bucket{le=\"";
      if (i < std::size(kOwnBucketsSeconds)) {
        out << kOwnBucketsSeconds[i];
      } else {
        out << "+Inf";
      }
      out << "\"} " << cumulative << '\n';
    }
    out << "floodgate_gateway_own_seconds_sum " << counts.own_seconds_sum << '\n';
    out << "floodgate_gateway_own_seconds_count " << cumulative << '\n';
  }
  family(out, "floodgate_gateway_responses_total", "counter", "Answers to clients by route and status code.");
  for (const auto& [key, n] : counts.responses) {
    out << "floodgate_gateway_responses_total{route=\"" << key.first << "\",code=\"" << key.second << "\"} " << n << '\n';
  }
  family(out, "floodgate_gateway_upstream_responses_total", "counter", "Upstream answers by status code (0: no answer).");
  for (const auto& [code, n] : counts.upstream_responses) {
    out << "floodgate_gateway_upstream_responses_total{code=\"" << code << "\"} " << n << '\n';
  }
  family(out, "floodgate_gateway_upstream_cancelled_total", "counter",
         "Upstream calls cut off because their client hung up (the upstream connection was closed).");
  out << "floodgate_gateway_upstream_cancelled_total " << counts.upstream_cancelled << '\n';
  family(out, "floodgate_gateway_usage_tokens_total", "counter", "Tokens in the usage of the answers relayed.");
  out << "floodgate_gateway_usage_tokens_total{kind=\"input\"} " << counts.usage_input_tokens << '\n';
  out << "floodgate_gateway_usage_tokens_total{kind=\"output\"} " << counts.usage_output_tokens << '\n';
  family(out, "floodgate_gateway_upstream_in_flight", "gauge", "Requests sent upstream and not answered yet.");
  out << "floodgate_gateway_upstream_in_flight " << counts.upstream_in_flight << '\n';
  family(out, "floodgate_gateway_connections", "gauge", "Client connections open.");
  out << "floodgate_gateway_connections " << counts.connections << '\n';
  if (!models.empty()) render_headroom(out, models);
  return out.str();
}

std::unique_ptr<limit::Admission> LimiterBoard::watch(const std::string& model, std::unique_ptr<limit::Admission> inner,
                                                      std::shared_ptr<const void> owner) {
  auto slot = std::make_shared<Slot>();
  {
    const std::lock_guard lock(mu_);
    slots_[model] = slot;
  }
  return std::make_unique<Watched>(std::move(inner), std::move(slot), std::move(owner));
}

std::vector<ModelHeadroom> LimiterBoard::headroom(TimePoint now,
                                                  const std::function<limit::Limits(const std::string&)>& configured) const {
  std::vector<std::pair<std::string, std::shared_ptr<Slot>>> slots;
  {
    const std::lock_guard lock(mu_);
    slots.assign(slots_.begin(), slots_.end());
  }
  std::vector<ModelHeadroom> out;
  out.reserve(slots.size());
  for (const auto& [model, slot] : slots) {
    ModelHeadroom m;
    TimePoint at{};
    {
      const std::lock_guard lock(slot->mu);
      if (!slot->taken) continue;
      m.snapshot = slot->snapshot;
      at = slot->at;
    }
    m.model = model;
    if (now > at) m.age = now - at;
    // No pause is a time long past (TimePoint::min(), say): compared, never subtracted.
    if (m.snapshot.paused_until > now) m.paused_for = m.snapshot.paused_until - now;
    if (configured) {
      const limit::Limits given = configured(model);
      const limit::Limits& in_force = m.snapshot.limits;
      m.learned = given.requests_per_minute != in_force.requests_per_minute || given.tokens_per_minute != in_force.tokens_per_minute ||
                  given.requests_per_day != in_force.requests_per_day || given.tokens_per_day != in_force.tokens_per_day;
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::optional<limit::LimiterSnapshot> LimiterBoard::snapshot(const std::string& model) const {
  std::shared_ptr<Slot> slot;
  {
    const std::lock_guard lock(mu_);
    const auto it = slots_.find(model);
    if (it == slots_.end()) return std::nullopt;
    slot = it->second;
  }
  const std::lock_guard lock(slot->mu);
  if (!slot->taken) return std::nullopt;
  return slot->snapshot;
}

}  // namespace floodgate::gateway
