// LimiterSet: one RateLimiter per model, created on first use.
#include "floodgate/limit/limiter_set.hpp"

namespace floodgate::limit {

LimiterSet::LimiterSet(LimitsConfig config, LimiterOptions options) : config_(std::move(config)), options_(options) {}

RateLimiter& LimiterSet::for_model(std::string_view model) {
  auto it = limiters_.find(model);
  if (it == limiters_.end()) {
    it = limiters_.emplace(std::string(model),
                           std::make_unique<RateLimiter>(config_.for_model(model), config_.learn_from_headers, options_)).first;
  }
  return *it->second;
}

}  // namespace floodgate::limit
