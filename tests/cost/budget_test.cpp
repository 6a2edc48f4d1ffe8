#include "floodgate/cost/budget.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <random>

#include "floodgate/cost/daily_ledger.hpp"

namespace floodgate::cost {
namespace {

TEST(Budget, NoLimitsAdmitsEverything) {
  Budget b(BudgetLimits{});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(b.try_admit({1e6, 1'000'000}), Admission::admitted);
  EXPECT_FALSE(b.exhausted());
}

TEST(Budget, BothSidesOfTheCostBoundary) {
  Budget b(BudgetLimits{.max_cost_usd = 1.0, .max_tokens = {}, .daily_budget_usd = {}});
  EXPECT_EQ(b.try_admit({0.5, 0}), Admission::admitted);
  EXPECT_EQ(b.try_admit({0.5, 0}), Admission::admitted);  // exactly the limit fits
  EXPECT_EQ(b.try_admit({0.000001, 0}), Admission::wait);  // over it while others are in flight
  b.settle({0.5, 0}, {0.5, 0});
  b.settle({0.5, 0}, {0.5, 0});
  EXPECT_EQ(b.try_admit({0.000001, 0}), Admission::exhausted);
  EXPECT_TRUE(b.exhausted());
  EXPECT_EQ(b.try_admit({0, 0}), Admission::exhausted);  // latched
  EXPECT_NE(b.reason().find("--max-cost"), std::string::npos) << b.reason();
}

TEST(Budget, SettlementRefundsTheUnusedReservation) {
  Budget b(BudgetLimits{.max_cost_usd = 1.0, .max_tokens = {}, .daily_budget_usd = {}});
  ASSERT_EQ(b.try_admit({0.8, 0}), Admission::admitted);
  EXPECT_EQ(b.try_admit({0.3, 0}), Admission::wait);
  b.settle({0.8, 0}, {0.1, 0});
  EXPECT_NEAR(b.spent_usd(), 0.1, 1e-12);
  EXPECT_NEAR(b.reserved_usd(), 0.0, 1e-12);
  EXPECT_EQ(b.try_admit({0.3, 0}), Admission::admitted);
  b.release({0.3, 0});
  EXPECT_EQ(b.in_flight(), 0u);
  EXPECT_NEAR(b.spent_usd(), 0.1, 1e-12);
}

TEST(Budget, TokenLimit) {
  Budget b(BudgetLimits{.max_cost_usd = {}, .max_tokens = 1000, .daily_budget_usd = {}});
  EXPECT_EQ(b.try_admit({0, 600}), Admission::admitted);
  b.settle({0, 600}, {0, 550});
  EXPECT_EQ(b.try_admit({0, 450}), Admission::admitted);
  b.settle({0, 450}, {0, 450});
  EXPECT_EQ(b.spent_tokens(), 1000u);
  EXPECT_EQ(b.try_admit({0, 1}), Admission::exhausted);
  EXPECT_NE(b.reason().find("--max-tokens 1000"), std::string::npos) << b.reason();
}

TEST(Budget, DailyBudgetCountsEarlierRuns) {
  Budget b(BudgetLimits{.max_cost_usd = {}, .max_tokens = {}, .daily_budget_usd = 5.0}, 4.5);
  EXPECT_EQ(b.try_admit({0.4, 0}), Admission::admitted);
  b.settle({0.4, 0}, {0.4, 0});
  EXPECT_EQ(b.try_admit({0.2, 0}), Admission::exhausted);
  EXPECT_NE(b.reason().find("--daily-budget"), std::string::npos);
}

// Random workloads: the run never spends above the limit and stops within one worst case of it.
TEST(Budget, PropertySpentStaysWithinOneWorstCaseBelowTheLimit) {
  std::mt19937 rng(42);
  for (int trial = 0; trial < 200; ++trial) {
    const double limit = std::uniform_real_distribution<double>(0.01, 2.0)(rng);
    Budget b(BudgetLimits{.max_cost_usd = limit, .max_tokens = {}, .daily_budget_usd = {}});
    std::vector<Charge> in_flight;
    double largest_worst = 0;
    for (int step = 0; step < 10'000 && !b.exhausted(); ++step) {
      const Charge worst{std::uniform_real_distribution<double>(0.0001, 0.1)(rng), 0};
      largest_worst = std::max(largest_worst, worst.cost_usd);
      const auto a = b.try_admit(worst);
      if (a == Admission::admitted) in_flight.push_back(worst);
      if ((a != Admission::admitted || in_flight.size() > 8) && !in_flight.empty()) {
        const Charge r = in_flight.front();
        in_flight.erase(in_flight.begin());
        const double frac = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
        b.settle(r, {r.cost_usd * frac, 0});
      }
      ASSERT_LE(b.spent_usd() + b.reserved_usd(), limit + 1e-12);
    }
    ASSERT_TRUE(b.exhausted()) << trial;
    EXPECT_LE(b.spent_usd(), limit + 1e-12);
    EXPECT_GT(b.spent_usd(), limit - largest_worst) << trial;
  }
}

TEST(DailyLedger, AddsPerDayAndPersistsAcrossOpenings) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("floodgate_ledger_" + std::to_string(std::random_device{}()) + ".sqlite");
  {
    DailyLedger l(path.string());
    EXPECT_DOUBLE_EQ(l.spent_usd("2026-11-22"), 0.0);
    l.add("2026-11-22", 1.25, 100);
    l.add("2026-11-22", 0.25, 50);
    l.add("2026-11-23", 9, 1);
  }
  {
    DailyLedger l(path.string());
    EXPECT_DOUBLE_EQ(l.spent_usd("2026-11-22"), 1.5);
    EXPECT_EQ(l.spent_tokens("2026-11-22"), 150u);
    EXPECT_DOUBLE_EQ(l.spent_usd("2026-11-23"), 9.0);
  }
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + "-wal");
  std::filesystem::remove(path.string() + "-shm");
}

TEST(DailyLedger, UtcDay) {
  using namespace std::chrono;
  const sys_seconds t = sys_days{year{2026} / 11 / 22} + hours{23} + minutes{59} + seconds{59};
  EXPECT_EQ(utc_day(t), "2026-11-22");
  EXPECT_EQ(utc_day(t + seconds{1}), "2026-11-23");
}

}  // namespace
}  // namespace floodgate::cost

#include "floodgate/cost/budget_gate.hpp"

namespace floodgate::cost {
namespace {

Request chat_request(const std::string& id, const std::string& model, std::uint64_t estimated, int max_tokens) {
  Request r;
  r.custom_id = id;
  r.model = model;
  r.body = "{\"model\":\"" + model + "\",\"max_tokens\":" + std::to_string(max_tokens) + "}";
  r.estimated_tokens = estimated;
  return r;
}

TEST(BudgetGate, WorstCaseSplitsTheEstimateIntoPromptAndAllowance) {
  PriceTable t;
  t.set("m", ModelPrice{.input_usd_per_million = 1.0, .cached_input_usd_per_million = 0.5,
                        .output_usd_per_million = 4.0, .usd_per_minute = 0, .batch_discount = 0.5});
  const Charge w = worst_case_charge(t, chat_request("a", "m", 1100, 100), 4096);
  EXPECT_EQ(w.tokens, 1100u);
  EXPECT_NEAR(w.cost_usd, (1000 * 1.0 + 100 * 4.0) / 1e6, 1e-15);
  const Charge unpriced = worst_case_charge(t, chat_request("b", "other", 1100, 100), 4096);
  EXPECT_EQ(unpriced.cost_usd, 0.0);
  EXPECT_EQ(unpriced.tokens, 1100u);
}

TEST(BudgetGate, ReservesSettlesAndWritesTheLedger) {
  PriceTable t;
  t.set("m", ModelPrice{.input_usd_per_million = 1e6, .cached_input_usd_per_million = 1e6,
                        .output_usd_per_million = 1e6, .usd_per_minute = 0, .batch_discount = 0});  // $1 a token
  const auto path = std::filesystem::temp_directory_path() /
                    ("floodgate_gate_" + std::to_string(std::random_device{}()) + ".sqlite");
  auto ledger = std::make_shared<DailyLedger>(path.string());
  const auto now = std::chrono::system_clock::now();
  ledger->add(utc_day(now), 2.0, 2);  // an earlier run today
  BudgetGate gate(BudgetLimits{.max_cost_usd = 10.0, .max_tokens = {}, .daily_budget_usd = 9.0}, t, 16, ledger, now);
  const Request a = chat_request("a", "m", 5, 2);  // worst $5
  EXPECT_EQ(gate.admit(a), Admission::admitted);
  EXPECT_EQ(gate.admit(chat_request("b", "m", 5, 2)), Admission::wait);  // 2 + 5 + 5 > 9
  Usage u;
  u.prompt_tokens = 3;
  u.completion_tokens = 1;
  u.total_tokens = 4;
  gate.settle(a, u);
  EXPECT_NEAR(gate.budget().spent_usd(), 4.0, 1e-9);
  EXPECT_NEAR(ledger->spent_usd(utc_day(now)), 6.0, 1e-9);
  EXPECT_EQ(gate.admit(chat_request("c", "m", 4, 1)), Admission::exhausted);  // 2 + 4 + 4 > 9
  // Admitting the same request again (its first admission never sent) does not reserve twice.
  BudgetGate again(BudgetLimits{.max_cost_usd = 10.0, .max_tokens = {}, .daily_budget_usd = {}}, t, 16);
  EXPECT_EQ(again.admit(chat_request("x", "m", 6, 2)), Admission::admitted);
  EXPECT_EQ(again.admit(chat_request("x", "m", 6, 2)), Admission::admitted);
  EXPECT_NEAR(again.budget().reserved_usd(), 6.0, 1e-9);
  EXPECT_EQ(again.budget().in_flight(), 1u);
  EXPECT_TRUE(gate.unpriced_models().empty());
  (void)gate.admit(chat_request("d", "nope", 1, 1));
  EXPECT_EQ(gate.unpriced_models(), (std::set<std::string>{"nope"}));
  ledger.reset();
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + "-wal");
  std::filesystem::remove(path.string() + "-shm");
}

}  // namespace
}  // namespace floodgate::cost
