#pragma once
// BudgetGate: the Budget (budget.hpp) applied to requests. Before each send it prices the
// request's worst case from the price table and the engine's estimate
// (Request::estimated_tokens = prompt tokens + completion allowance):
//   worst = (estimated - allowance) * input + allowance * output      [USD per 1M tokens]
// and reserves it; after the attempt it settles with the actual usage, priced the same way
// as the results table prices it, and adds the actual cost to today's row of the daily
// ledger (when --daily-budget is set). Attempts are matched by custom_id (one attempt of a
// request is in flight at a time). A model without a price costs 0 (only --max-tokens can
// limit it); unpriced_models() lists those seen so the CLI can warn.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "floodgate/core/outcome.hpp"
#include "floodgate/core/request.hpp"
#include "floodgate/cost/budget.hpp"
#include "floodgate/cost/daily_ledger.hpp"
#include "floodgate/cost/prices.hpp"

namespace floodgate::cost {

// The worst case of one request (see above). `default_completion_tokens` is the allowance
// of a body without max_tokens / max_completion_tokens.
[[nodiscard]] Charge worst_case_charge(const PriceTable& prices, const Request& request,
                                       std::uint64_t default_completion_tokens, Tier tier = Tier::standard);
// The actual charge of a finished attempt.
[[nodiscard]] Charge actual_charge(const PriceTable& prices, std::string_view model, const Usage& usage,
                                   Tier tier = Tier::standard);
// A result row's cost_usd: nullopt when the row has no usage or the model no price.
[[nodiscard]] std::optional<double> row_cost_usd(const PriceTable& prices, std::string_view model, const Usage& usage,
                                                 Tier tier = Tier::standard);

class BudgetGate {
 public:
  // `ledger` may be null (no --daily-budget). The day is taken at construction (UTC).
  BudgetGate(BudgetLimits limits, const PriceTable& prices, std::uint64_t default_completion_tokens,
             std::shared_ptr<DailyLedger> ledger = nullptr,
             std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

  [[nodiscard]] Admission admit(const Request& request);
  void settle(const Request& request, const Usage& usage);
  // The request was admitted but not sent after all.
  void release(const Request& request);

  [[nodiscard]] const Budget& budget() const noexcept { return budget_; }
  [[nodiscard]] std::set<std::string> unpriced_models() const;

 private:
  Budget budget_;
  const PriceTable& prices_;
  std::uint64_t default_completion_tokens_;
  std::shared_ptr<DailyLedger> ledger_;
  std::string day_;
  mutable std::mutex mutex_;
  std::map<std::string, Charge, std::less<>> reserved_;  // by custom_id
  std::set<std::string> unpriced_;

  // Removes and returns the reservation held for `custom_id`, if any.
  std::optional<Charge> take_reserved(const std::string& custom_id);
};

}  // namespace floodgate::cost
