#include "floodgate/gateway/usage.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "floodgate/core/error.hpp"

using floodgate::gateway::CallRecord;
using floodgate::gateway::KeyTotals;
using floodgate::gateway::UsageStore;

namespace {

// A folder of its own under /tmp, removed at the end of the test.
class Folder {
 public:
  Folder() {
    char tmpl[] = "/tmp/fg_usage_XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~Folder() {
    std::error_code ignored;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ignored);
    std::filesystem::remove_all(path_, ignored);
  }
  Folder(const Folder&) = delete;
  Folder& operator=(const Folder&) = delete;
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

CallRecord call(const std::string& key_id, int status, std::int64_t in, std::int64_t out, double usd) {
  CallRecord c;
  c.unix_ms = 1'767'225'600'000;
  c.key_id = key_id;
  c.key_name = key_id.substr(0, key_id.find('#'));
  c.lane = "interactive";
  c.route = "chat_completions";
  c.model = "gpt-4o-mini";
  c.status = status;
  c.input_tokens = in;
  c.output_tokens = out;
  c.cost_usd = usd;
  c.queued_ms = 3;
  c.upstream_ms = 40;
  return c;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST(UsageStore, TotalsPerKeyAreKeptInMemoryAndLoadedAgainFromTheFile) {
  Folder dir;
  const std::string db = dir.file("state/usage.sqlite");  // its folder is created
  {
    auto store = UsageStore::open(db);
    store->record(call("web#11111111", 200, 10, 5, 0.5));
    store->record(call("web#11111111", 429, 0, 0, 0));
    store->record(call("nightly#22222222", 200, 7, 1, 0.25));
    const auto t = store->totals();
    ASSERT_EQ(t.size(), 2u);
    EXPECT_EQ(t.at("web#11111111").requests, 2u);
    EXPECT_EQ(t.at("web#11111111").by_status, (std::map<int, std::uint64_t>{{200, 1}, {429, 1}}));
    EXPECT_EQ(t.at("web#11111111").input_tokens, 10);
    EXPECT_EQ(t.at("web#11111111").output_tokens, 5);
    EXPECT_DOUBLE_EQ(t.at("web#11111111").cost_usd, 0.5);
    store->flush();
    EXPECT_EQ(store->rows_written(), 3u);
    store->close();
  }
  auto again = UsageStore::open(db);
  const auto t = again->totals();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t.at("web#11111111").key_name, "web");
  EXPECT_EQ(t.at("web#11111111").requests, 2u);
  EXPECT_EQ(t.at("web#11111111").by_status, (std::map<int, std::uint64_t>{{200, 1}, {429, 1}}));
  EXPECT_DOUBLE_EQ(t.at("web#11111111").cost_usd, 0.5);
  EXPECT_EQ(t.at("nightly#22222222").input_tokens, 7);
  EXPECT_DOUBLE_EQ(t.at("nightly#22222222").cost_usd, 0.25);
}

TEST(UsageStore, ManyCallsFromManyThreadsAreAllWritten) {
  Folder dir;
  auto store = UsageStore::open(dir.file("usage.sqlite"));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store] {
      for (int i = 0; i < 500; ++i) store->record(call("web#11111111", 200, 1, 1, 0.001));
    });
  }
  for (auto& t : threads) t.join();
  store->close();
  EXPECT_EQ(store->rows_written(), 2000u);
  EXPECT_EQ(UsageStore::open(dir.file("usage.sqlite"))->totals().at("web#11111111").requests, 2000u);
}

TEST(UsageStore, ABudgetRefusesOnceSpentPlusInFlightReachesIt) {
  Folder dir;
  auto store = UsageStore::open(dir.file("usage.sqlite"));
  // $1 budget (amounts exact in binary, so the bound is tested on both sides).
  EXPECT_TRUE(store->reserve("k#1", "k", 1.0, 0.25));
  EXPECT_TRUE(store->reserve("k#1", "k", 1.0, 0.5));
  EXPECT_TRUE(store->reserve("k#1", "k", 1.0, 0.5)) << "0.75 reserved is under 1: admitted (it may go over by its own cost)";
  EXPECT_FALSE(store->reserve("k#1", "k", 1.0, 0.0)) << "1.25 reserved reaches the budget";
  EXPECT_EQ(store->totals_of("k#1")->reserved_usd, 1.25);
  // The first settles at 0.125: spent 0.125 + reserved 1.0: still refused; the second at 0.125 too.
  store->record(call("k#1", 200, 1, 1, 0.125));
  store->release("k#1", 0.25);
  EXPECT_FALSE(store->reserve("k#1", "k", 1.0, 0.0));
  store->record(call("k#1", 200, 1, 1, 0.125));
  store->release("k#1", 0.5);
  EXPECT_TRUE(store->reserve("k#1", "k", 1.0, 0.0)) << "0.25 spent + 0.5 reserved";
  store->release("k#1", 0.0);
  store->release("k#1", 0.5);
  EXPECT_EQ(store->totals_of("k#1")->reserved_usd, 0.0) << "nothing in flight";
  store->record(call("k#1", 200, 1, 1, 0.5));
  EXPECT_TRUE(store->reserve("k#1", "k", 1.0, 0.0)) << "0.75 spent";
  store->release("k#1", 0.0);
  store->record(call("k#1", 200, 1, 1, 0.25));
  EXPECT_FALSE(store->reserve("k#1", "k", 1.0, 0.0)) << "1.0 spent";
  // Another key has its own.
  EXPECT_TRUE(store->reserve("other#2", "other", 1.0, 0.5));
}

TEST(UsageStore, ABudgetSpentStaysSpentAfterARestart) {
  Folder dir;
  {
    auto store = UsageStore::open(dir.file("usage.sqlite"));
    store->record(call("k#1", 200, 100, 100, 2.0));
  }  // the destructor closes: every row written
  auto store = UsageStore::open(dir.file("usage.sqlite"));
  EXPECT_FALSE(store->reserve("k#1", "k", 2.0, 0.0));
  EXPECT_TRUE(store->reserve("k#1", "k", 2.5, 0.0));
}

TEST(UsageStore, APlaceItCannotCreateFailsAtOpenNamingTheFile) {
  Folder dir;
  std::ofstream(dir.file("plain")) << "a file, not a folder";
  try {
    (void)UsageStore::open(dir.file("plain/usage.sqlite"));
    FAIL() << "opened a database under a file";
  } catch (const floodgate::Error& e) {
    EXPECT_NE(std::string(e.what()).find("usage database " + dir.file("plain/usage.sqlite")), std::string::npos) << e.what();
  }
}

TEST(UsageStore, AFolderItCannotWriteFailsAtOpenNamingTheFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "root writes anywhere";
  Folder dir;
  std::filesystem::create_directory(dir.file("ro"));
  std::filesystem::permissions(dir.file("ro"), std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  try {
    (void)UsageStore::open(dir.file("ro/usage.sqlite"));
    FAIL() << "opened a database in a read-only folder";
  } catch (const floodgate::Error& e) {
    EXPECT_NE(std::string(e.what()).find("usage database " + dir.file("ro/usage.sqlite")), std::string::npos) << e.what();
  }
  // A read-only file in a writable folder too.
  { (void)UsageStore::open(dir.file("usage.sqlite")); }
  std::filesystem::permissions(dir.file("usage.sqlite"), std::filesystem::perms::owner_read);
  EXPECT_THROW((void)UsageStore::open(dir.file("usage.sqlite")), floodgate::Error);
}

TEST(UsageStore, TheRowsAreInTheFileOnceClosed) {
  Folder dir;
  {
    auto store = UsageStore::open(dir.file("usage.sqlite"));
    store->record(call("web#11111111", 200, 12, 34, 0.125));
  }
  const std::string bytes = slurp(dir.file("usage.sqlite"));
  EXPECT_NE(bytes.find("web#11111111"), std::string::npos);
  EXPECT_NE(bytes.find("gpt-4o-mini"), std::string::npos);
}

TEST(Usage, CostIsThePriceTablesWithCachedInputAtItsPrice) {
  floodgate::cost::PriceTable prices;
  prices.set("m", floodgate::cost::ModelPrice{1.0, 0.5, 4.0, 0, 0.5});
  // 1000 in (200 cached), 500 out: (800 x 1 + 200 x 0.5 + 500 x 4) / 1e6
  EXPECT_DOUBLE_EQ(floodgate::gateway::call_cost_usd(prices, "m", {1000, 500, 200}), 2.9e-3);
  EXPECT_DOUBLE_EQ(floodgate::gateway::call_cost_usd(prices, "m-2025-01-01", {1000, 0, 0}), 1e-3) << "a snapshot's price";
  EXPECT_EQ(floodgate::gateway::call_cost_usd(prices, "unpriced", {1000, 500, 0}), 0.0);
  EXPECT_EQ(floodgate::gateway::call_cost_usd(prices, "", {1000, 500, 0}), 0.0);
  EXPECT_DOUBLE_EQ(floodgate::gateway::call_cost_usd(floodgate::cost::PriceTable::builtin(), "gpt-4o-mini", {1'000'000, 1'000'000, 0}),
                   0.15 + 0.60);
}

TEST(Usage, ModelIsReadFromTheBodyWithoutParsingIt) {
  using floodgate::gateway::model_of;
  EXPECT_EQ(model_of(R"({"model":"gpt-4o-mini","messages":[]})"), "gpt-4o-mini");
  EXPECT_EQ(model_of("{\n  \"messages\": [{\"role\": \"user\", \"content\": \"model\"}],\n  \"model\" : \"gpt-4.1\"\n}"), "gpt-4.1");
  EXPECT_EQ(model_of(R"({"input":"a \"model\": \"x\"","model":"text-embedding-3-small"})"), "text-embedding-3-small");
  EXPECT_EQ(model_of(R"({"messages":[]})"), "");
  EXPECT_EQ(model_of(R"({"model":)"), "");
  EXPECT_EQ(model_of(R"({"model":5})"), "");
}

TEST(Usage, TheUsageAnswerShowsBudgetsAndWhatIsLeft) {
  KeyTotals t;
  t.key_name = "web";
  t.requests = 3;
  t.by_status = {{200, 2}, {429, 1}};
  t.input_tokens = 30;
  t.output_tokens = 9;
  t.cost_usd = 1.5;
  KeyTotals ops;
  ops.key_name = "ops";
  const auto j = nlohmann::json::parse(floodgate::gateway::render_usage({{"web#1", t, 1.0}, {"ops#2", ops, std::nullopt}}));
  EXPECT_EQ(j["object"], "floodgate.usage");
  ASSERT_EQ(j["keys"].size(), 2u);
  EXPECT_EQ(j["keys"][0]["key"], "web#1");
  EXPECT_EQ(j["keys"][0]["by_status"], nlohmann::json::parse(R"({"200":2,"429":1})"));
  EXPECT_EQ(j["keys"][0]["input_tokens"], 30);
  EXPECT_EQ(j["keys"][0]["budget_usd"], 1.0);
  EXPECT_EQ(j["keys"][0]["budget_left_usd"], 0.0) << "never below 0";
  EXPECT_TRUE(j["keys"][1]["budget_usd"].is_null());
  EXPECT_EQ(j["keys"][1]["name"], "ops");
  EXPECT_EQ(j["keys"][1]["requests"], 0);
}
