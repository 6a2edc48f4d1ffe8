#pragma once
// LimiterSet: one RateLimiter per model, created on first use with the limits the
// LimitsConfig gives that model (its overrides completed by the defaults; learned from
// headers in auto mode). The engine keeps one set per job and calls
// `set.for_model(request.model).try_acquire(...)`. Not thread-safe, like RateLimiter.

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "floodgate/limit/limits.hpp"
#include "floodgate/limit/rate_limiter.hpp"

namespace floodgate::limit {

class LimiterSet {
 public:
  explicit LimiterSet(LimitsConfig config = {}, LimiterOptions options = {});

  // The model's limiter (references stay valid for the set's lifetime).
  [[nodiscard]] RateLimiter& for_model(std::string_view model);
  [[nodiscard]] const LimitsConfig& config() const noexcept { return config_; }

  // Visits every limiter created so far, in model-name order: f(const std::string&, RateLimiter&).
  template <class F>
  void for_each(F&& f) {
    for (auto& [name, limiter] : limiters_) f(name, *limiter);
  }

 private:
  LimitsConfig config_;
  LimiterOptions options_;
  std::map<std::string, std::unique_ptr<RateLimiter>, std::less<>> limiters_;
};

}  // namespace floodgate::limit
