// LimiterSet: one RateLimiter per model, created on first use.
#include "floodgate/limit/limiter_set.hpp"

namespace floodgate::limit {

LimiterSet::LimiterSet(LimitsConfig config, LimiterOptions options) : config_(std::move(config)), options_(options) {}

RateLimiter& LimiterSet::for_model(std::string_view model) {
  auto it = limiters_.find(model);
  if (it == limiters_.end()) {
    LimiterOptions options = options_;
    // A server that settles at usage gives the unused part back: so does the limiter.
    if (config_.charge_for(model).refunds_unused) options.refund = LimiterOptions::Refund::unused;
    // A charge model given (--charge, the limits file) is known: never learned below it.
    if (config_.charge || config_.model_charges.contains(model)) options.learn_charge_down = false;
    // A server that sends no rate-limit headers: nothing to learn, no probe to wait for.
    const bool learn = config_.learn_from_headers && config_.provider_for(model) != Provider::none;
    it = limiters_.emplace(std::string(model), std::make_unique<RateLimiter>(config_.for_model(model), learn, options)).first;
  }
  return *it->second;
}

}  // namespace floodgate::limit
