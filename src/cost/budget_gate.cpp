#include "floodgate/cost/budget_gate.hpp"

#include "floodgate/cost/usage.hpp"

namespace floodgate::cost {

Charge worst_case_charge(const PriceTable& prices, const Request& request, std::uint64_t default_completion_tokens,
                         Tier tier) {
  const std::uint64_t allowance =
      request.endpoint == Endpoint::embeddings || request.endpoint == Endpoint::moderations
          ? 0
          : completion_allowance(request.body, default_completion_tokens);
  std::uint64_t total = request.estimated_tokens;
  if (total < allowance) total = allowance;  // an estimate that forgot the allowance
  const std::uint64_t prompt = total - allowance;
  Charge c;
  c.tokens = total;
  if (const ModelPrice* p = prices.find(request.model)) c.cost_usd = worst_case_cost_usd(*p, prompt, allowance, tier);
  return c;
}

Charge actual_charge(const PriceTable& prices, std::string_view model, const Usage& usage, Tier tier) {
  Charge c;
  c.tokens = usage.total_tokens != 0 ? usage.total_tokens : usage.prompt_tokens + usage.completion_tokens;
  if (const ModelPrice* p = prices.find(model)) c.cost_usd = cost_usd(*p, usage, tier);
  return c;
}

std::optional<double> row_cost_usd(const PriceTable& prices, std::string_view model, const Usage& usage, Tier tier) {
  if (usage.total_tokens == 0 && usage.prompt_tokens == 0) return std::nullopt;
  const ModelPrice* p = prices.find(model);
  if (p == nullptr) return std::nullopt;
  return cost_usd(*p, usage, tier);
}

BudgetGate::BudgetGate(BudgetLimits limits, const PriceTable& prices, std::uint64_t default_completion_tokens,
                       std::shared_ptr<DailyLedger> ledger, std::chrono::system_clock::time_point now)
    : budget_(limits, ledger && limits.daily_budget_usd ? ledger->spent_usd(utc_day(now)) : 0.0),
      prices_(prices),
      default_completion_tokens_(default_completion_tokens),
      ledger_(std::move(ledger)),
      day_(utc_day(now)) {}

Admission BudgetGate::admit(const Request& request) {
  // One attempt of a request is in flight at a time: a reservation still held for this id
  // belongs to an admission that was never sent (e.g. the breaker closed): give it back.
  release(request);
  const Charge worst = worst_case_charge(prices_, request, default_completion_tokens_);
  {
    const std::lock_guard lock(mutex_);
    if (prices_.find(request.model) == nullptr) unpriced_.insert(request.model);
  }
  const Admission a = budget_.try_admit(worst);
  if (a == Admission::admitted) {
    const std::lock_guard lock(mutex_);
    reserved_[request.custom_id] = worst;
  }
  return a;
}

std::optional<Charge> BudgetGate::take_reserved(const std::string& custom_id) {
  const std::lock_guard lock(mutex_);
  const auto it = reserved_.find(custom_id);
  if (it == reserved_.end()) return std::nullopt;
  const Charge reserved = it->second;
  reserved_.erase(it);
  return reserved;
}

void BudgetGate::settle(const Request& request, const Usage& usage) {
  const auto reserved = take_reserved(request.custom_id);
  if (!reserved) return;
  const Charge actual = actual_charge(prices_, request.model, usage);
  budget_.settle(*reserved, actual);
  if (ledger_ && (actual.cost_usd > 0 || actual.tokens > 0)) ledger_->add(day_, actual.cost_usd, actual.tokens);
}

void BudgetGate::release(const Request& request) {
  if (const auto reserved = take_reserved(request.custom_id)) budget_.release(*reserved);
}

std::set<std::string> BudgetGate::unpriced_models() const {
  const std::lock_guard lock(mutex_);
  return unpriced_;
}

}  // namespace floodgate::cost
