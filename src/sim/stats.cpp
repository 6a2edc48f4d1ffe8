#include "sim/stats.hpp"

#include <algorithm>
#include <chrono>

#include <nlohmann/json.hpp>

namespace floodgate::sim {

void Stats::Window::add(TimePoint now, std::int64_t tokens_charged) {
  const std::int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  while (!buckets.empty() && buckets.front().ms <= ms - 60'000) {
    requests -= buckets.front().requests;
    tokens -= buckets.front().tokens;
    buckets.pop_front();
  }
  if (!buckets.empty() && buckets.back().ms >= ms) {  // same millisecond (or a clock step back)
    ++buckets.back().requests;
    buckets.back().tokens += tokens_charged;
  } else {
    buckets.push_back({ms, 1, tokens_charged});
  }
  ++requests;
  tokens += tokens_charged;
  max_requests = std::max(max_requests, requests);
  max_tokens = std::max(max_tokens, tokens);
}

void Stats::connection_opened() noexcept {
  const std::lock_guard lock(mutex_);
  ++connections_;
}

void Stats::request_started() noexcept {
  const std::lock_guard lock(mutex_);
  ++in_flight_;
  peak_in_flight_ = std::max(peak_in_flight_, in_flight_);
}

void Stats::request_finished() noexcept {
  const std::lock_guard lock(mutex_);
  --in_flight_;
}

void Stats::record(const Outcome& outcome, TimePoint now) {
  const std::lock_guard lock(mutex_);
  ++requests_;
  ++by_status_[outcome.status];
  upload_bytes_ += static_cast<std::int64_t>(outcome.upload_bytes);
  if (outcome.insufficient_quota) ++insufficient_quota_;
  if (!outcome.rate_limit_type.empty()) {
    auto it = rate_limited_by_type_.find(outcome.rate_limit_type);
    if (it == rate_limited_by_type_.end()) it = rate_limited_by_type_.emplace(std::string(outcome.rate_limit_type), 0).first;
    ++it->second;
  }
  if (outcome.fault != FaultKind::none) ++faults_[to_string(outcome.fault)];
  PerModel* model = nullptr;
  if (!outcome.model.empty()) {
    auto it = models_.find(outcome.model);
    if (it == models_.end()) it = models_.emplace(std::string(outcome.model), PerModel{}).first;
    model = &it->second;
    ++model->requests;
    if (!outcome.rate_limit_type.empty()) ++model->rate_limited;
  }
  if (outcome.admitted) {
    ++admitted_;
    tokens_charged_ += outcome.tokens_charged;
    window_.add(now, outcome.tokens_charged);
    if (model != nullptr) {
      ++model->admitted;
      model->tokens_charged += outcome.tokens_charged;
      model->window.add(now, outcome.tokens_charged);
    }
  }
}

nlohmann::json Stats::to_json() {
  const std::lock_guard lock(mutex_);
  nlohmann::json j;
  j["requests"] = requests_;
  j["admitted"] = admitted_;
  j["tokens_charged"] = tokens_charged_;
  j["upload_bytes"] = upload_bytes_;
  j["connections"] = connections_;
  j["in_flight"] = in_flight_;
  j["peak_concurrency"] = peak_in_flight_;
  j["insufficient_quota"] = insufficient_quota_;
  nlohmann::json status = nlohmann::json::object();
  for (const auto& [code, n] : by_status_) status[std::to_string(code)] = n;
  j["by_status"] = status;
  nlohmann::json limited = {{"requests", 0}, {"tokens", 0}};
  for (const auto& [type, n] : rate_limited_by_type_) limited[type] = n;
  j["rate_limited"] = limited;
  nlohmann::json faults = nlohmann::json::object();
  for (const auto& [kind, n] : faults_) faults[kind] = n;
  j["faults"] = faults;
  j["max_requests_60s"] = window_.max_requests;
  j["max_tokens_60s"] = window_.max_tokens;
  nlohmann::json models = nlohmann::json::object();
  for (const auto& [name, m] : models_) {
    models[name] = {{"requests", m.requests},
                    {"admitted", m.admitted},
                    {"tokens_charged", m.tokens_charged},
                    {"rate_limited", m.rate_limited},
                    {"max_requests_60s", m.window.max_requests},
                    {"max_tokens_60s", m.window.max_tokens}};
  }
  j["models"] = models;
  return j;
}

}  // namespace floodgate::sim
