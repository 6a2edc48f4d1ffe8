// engine::Client against `floodgate sim` on port 0, through libcurl: requests submitted from
// several threads come back once each on the completion queue's eventfd, a cancel aborts a
// transfer the simulator holds, and a key the server refuses stops the Client with words.
// No sleeping: the test waits on the completion fd (bounded), or polls the simulator's stats.
#include <poll.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "floodgate/engine/client.hpp"
#include "support/sim_process.hpp"

namespace floodgate::engine {
namespace {

using namespace std::chrono_literals;
using test::SimProcess;

ClientOptions options_for(const SimProcess& sim, const std::string& key) {
  ClientOptions o;
  o.engine.base_url = sim.base_url();
  o.engine.credentials.api_key = key;
  o.engine.max_in_flight = 16;
  return o;
}

Submission request(const std::string& id, bool embedding) {
  Submission s;
  s.id = id;
  if (embedding) {
    s.endpoint = Endpoint::embeddings;
    s.body = R"({"model":"text-embedding-3-small","input":")" + id + R"("})";
  } else {
    s.body = R"({"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":")" + id + R"("}]})";
  }
  return s;
}

// Completions until `n` are in (or 60 s pass without one), by id.
std::map<std::string, Completion> collect(Client& client, std::size_t n) {
  std::map<std::string, Completion> by_id;
  std::vector<Completion> batch;
  while (by_id.size() < n && client.wait(60s)) {
    batch.clear();
    client.poll(batch);
    for (Completion& c : batch) {
      const std::string id = c.outcome.custom_id;
      EXPECT_TRUE(by_id.emplace(id, std::move(c)).second) << id << " completed twice";
    }
  }
  return by_id;
}

TEST(ClientWithSimulator, RequestsFromThreadsComeBackOnceEachOnTheFd) {
  SimProcess sim({"--rpm", "1000000", "--tpm", "1000000000"});
  Client client(options_for(sim, sim.api_key()));
  std::vector<std::thread> threads;
  std::atomic<int> refused{0};
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        if (!client.submit(request("t" + std::to_string(t) + "-" + std::to_string(i), i % 2 == 1))) ++refused;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(refused.load(), 0);
  const auto done = collect(client, 300);
  ASSERT_EQ(done.size(), 300u);
  for (const auto& [id, c] : done) {
    EXPECT_TRUE(c.outcome.ok()) << id << ": " << c.outcome.error_message;
    EXPECT_EQ(c.outcome.status_code, 200) << id;
    EXPECT_GT(c.outcome.usage.prompt_tokens, 0u) << id;
  }
  const RunSummary s = client.close();
  EXPECT_EQ(s.succeeded, 300u);
  EXPECT_EQ(s.attempts, 300u);
  EXPECT_EQ(sim.ledger().size(), 300u);  // each request reached the server once
}

TEST(ClientWithSimulator, CancelAbortsATransferTheServerHolds) {
  // Every answer takes 20 s: the request is in flight when it is cancelled.
  SimProcess sim({"--rpm", "1000000", "--tpm", "1000000000", "--latency", "fixed:20s"});
  Client client(options_for(sim, sim.api_key()));
  ASSERT_TRUE(client.submit(request("slow", false)));
  ASSERT_TRUE(sim.wait_for_requests(1));  // the simulator holds it (its 20 s wait)
  const auto asked = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.cancel("slow"));
  const auto done = collect(client, 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 15s);  // not the answer's 20 s
  EXPECT_EQ(done.at("slow").outcome.error, ErrorKind::cancelled);
  EXPECT_EQ(done.at("slow").outcome.attempts, 1u);
  const RunSummary s = client.close();
  EXPECT_EQ(s.succeeded, 0u);
  EXPECT_EQ(s.attempts, 1u);
}

TEST(ClientWithSimulator, AKeyTheServerRefusesStopsTheClientSayingWhy) {
  SimProcess sim({"--rpm", "1000000", "--tpm", "1000000000"});
  Client client(options_for(sim, "sk-not-the-right-one"));
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(client.submit(request("r" + std::to_string(i), false)));
  const auto done = collect(client, 8);
  ASSERT_EQ(done.size(), 8u);
  for (const auto& [id, c] : done) {
    EXPECT_TRUE(c.outcome.error == ErrorKind::auth || c.outcome.error == ErrorKind::cancelled) << id << ": " << to_string(c.outcome.error);
    EXPECT_EQ(c.outcome.error_message.find("sk-not-the-right-one"), std::string::npos) << "the key in a completion";
  }
  // The engine stopped (every answer the same refusal, exit 9 for a file job): the Client
  // takes no more, and says why.
  const RunSummary s = client.close();
  EXPECT_EQ(s.exit_code, 9) << s.stop_reason;
  const Submitted late = client.submit(request("late", false));
  EXPECT_EQ(late.refusal, Refusal::closed);
  EXPECT_NE(late.reason.find("rejected"), std::string::npos) << late.reason;
  EXPECT_NE(late.reason.find("401"), std::string::npos) << late.reason;
  EXPECT_EQ(late.reason.find("sk-not-the-right-one"), std::string::npos);
}

}  // namespace
}  // namespace floodgate::engine
