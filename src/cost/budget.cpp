#include "floodgate/cost/budget.hpp"

#include <cstdio>

namespace floodgate::cost {
namespace {
std::string money(double usd) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "$%.4f", usd);
  return buf;
}
}  // namespace

Budget::Budget(BudgetLimits limits, double spent_today_before_usd)
    : limits_(limits), spent_today_before_usd_(spent_today_before_usd) {}

std::string Budget::first_violated_locked(const Charge& extra) const {
  const double cost = spent_usd_ + reserved_usd_ + extra.cost_usd;
  if (limits_.max_cost_usd && cost > *limits_.max_cost_usd) {
    return "--max-cost " + money(*limits_.max_cost_usd) + " reached (spent " + money(spent_usd_) + ")";
  }
  if (limits_.max_tokens && spent_tokens_ + reserved_tokens_ + extra.tokens > *limits_.max_tokens) {
    return "--max-tokens " + std::to_string(*limits_.max_tokens) + " reached (spent " +
           std::to_string(spent_tokens_) + " tokens)";
  }
  if (limits_.daily_budget_usd && spent_today_before_usd_ + cost > *limits_.daily_budget_usd) {
    return "--daily-budget " + money(*limits_.daily_budget_usd) + " reached (spent today " +
           money(spent_today_before_usd_ + spent_usd_) + ")";
  }
  return {};
}

Admission Budget::try_admit(const Charge& worst_case) {
  const std::lock_guard lock(mutex_);
  if (exhausted_) return Admission::exhausted;
  std::string violated = first_violated_locked(worst_case);
  if (violated.empty()) {
    reserved_usd_ += worst_case.cost_usd;
    reserved_tokens_ += worst_case.tokens;
    ++in_flight_;
    return Admission::admitted;
  }
  if (in_flight_ > 0) return Admission::wait;
  exhausted_ = true;
  reason_ = std::move(violated);
  return Admission::exhausted;
}

void Budget::settle(const Charge& reserved, const Charge& actual) {
  const std::lock_guard lock(mutex_);
  reserved_usd_ = reserved_usd_ > reserved.cost_usd ? reserved_usd_ - reserved.cost_usd : 0;
  reserved_tokens_ = reserved_tokens_ > reserved.tokens ? reserved_tokens_ - reserved.tokens : 0;
  spent_usd_ += actual.cost_usd;
  spent_tokens_ += actual.tokens;
  if (in_flight_ > 0) --in_flight_;
}

void Budget::release(const Charge& reserved) { settle(reserved, Charge{}); }

bool Budget::exhausted() const {
  const std::lock_guard lock(mutex_);
  return exhausted_;
}
double Budget::spent_usd() const {
  const std::lock_guard lock(mutex_);
  return spent_usd_;
}
std::uint64_t Budget::spent_tokens() const {
  const std::lock_guard lock(mutex_);
  return spent_tokens_;
}
double Budget::reserved_usd() const {
  const std::lock_guard lock(mutex_);
  return reserved_usd_;
}
std::size_t Budget::in_flight() const {
  const std::lock_guard lock(mutex_);
  return in_flight_;
}
std::string Budget::reason() const {
  const std::lock_guard lock(mutex_);
  return reason_;
}

}  // namespace floodgate::cost
