#pragma once
// How a budget admits work: reserve the worst case, then settle on the actual usage.
//
// A request is admitted only if, with its worst-case cost and tokens reserved on top of what
// is already spent and reserved, every limit still holds (--max-cost, --max-tokens, and
// --daily-budget which also counts what earlier runs spent today). Since the actual cost of a
// call never exceeds its worst case, the money spent never exceeds a limit.
//
// When a request does not fit:
//   - while other admitted requests are still in flight, the answer is `wait`: their
//     settlements usually give back part of what they reserved, so try again after one settles;
//   - when nothing is in flight, the answer is `exhausted` and stays so (admission has stopped,
//     the run ends with exit code 4 and can be resumed with a larger budget).
// Hence at the stop, spent + worst_case(next) > limit: the run ends within one request's
// worst-case cost of the limit, never above it.
//
// Thread-safe: every member takes an internal mutex.

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace floodgate::cost {

struct BudgetLimits {
  std::optional<double> max_cost_usd;          // this run
  std::optional<std::uint64_t> max_tokens;     // this run, prompt + completion
  std::optional<double> daily_budget_usd;      // today (UTC), this run plus earlier runs
  [[nodiscard]] bool any() const noexcept { return max_cost_usd || max_tokens || daily_budget_usd; }
};

// What one request may cost (a reservation) or did cost (a settlement).
struct Charge {
  double cost_usd = 0;
  std::uint64_t tokens = 0;
};

enum class Admission { admitted, wait, exhausted };

class Budget {
 public:
  explicit Budget(BudgetLimits limits, double spent_today_before_usd = 0);

  // Reserves `worst_case` when it fits. See the header comment for wait / exhausted.
  [[nodiscard]] Admission try_admit(const Charge& worst_case);
  // An admitted request finished: its reservation becomes its actual charge.
  void settle(const Charge& reserved, const Charge& actual);
  // An admitted request was never sent: give its reservation back.
  void release(const Charge& reserved);

  [[nodiscard]] bool exhausted() const;
  [[nodiscard]] double spent_usd() const;
  [[nodiscard]] std::uint64_t spent_tokens() const;
  [[nodiscard]] double reserved_usd() const;
  [[nodiscard]] std::size_t in_flight() const;
  // Which limit stopped admission, e.g. "--max-cost 1.50 reached (spent $1.4920)"; empty before.
  [[nodiscard]] std::string reason() const;
  [[nodiscard]] const BudgetLimits& limits() const noexcept { return limits_; }

 private:
  [[nodiscard]] std::string first_violated_locked(const Charge& extra) const;

  BudgetLimits limits_;
  double spent_today_before_usd_;
  mutable std::mutex mutex_;
  double spent_usd_ = 0;
  std::uint64_t spent_tokens_ = 0;
  double reserved_usd_ = 0;
  std::uint64_t reserved_tokens_ = 0;
  std::size_t in_flight_ = 0;
  bool exhausted_ = false;
  std::string reason_;
};

}  // namespace floodgate::cost
