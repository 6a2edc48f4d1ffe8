// Integration: `floodgate sim` as a child process, driven over HTTP on 127.0.0.1.
#include <gtest/gtest.h>

#include <string>

#include "support/sim_process.hpp"

namespace floodgate::test {
namespace {

const std::string kChat =
    R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}],"max_tokens":20})";

TEST(SimHttp, PrintsBaseUrlAndAnswersChat) {
  SimProcess sim;
  EXPECT_EQ(sim.base_url(), "http://127.0.0.1:" + std::to_string(sim.port()) + "/v1");
  const HttpResult r = sim.post("/v1/chat/completions", kChat);
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  const auto body = r.json();
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["usage"]["prompt_tokens"].get<int>() + body["usage"]["completion_tokens"].get<int>(),
            body["usage"]["total_tokens"].get<int>());
  EXPECT_TRUE(r.headers.count("x-request-id"));
  EXPECT_TRUE(r.headers.count("x-ratelimit-remaining-tokens"));
}

TEST(SimHttp, StatsAndLedgerSeeEveryRequest) {
  SimProcess sim;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(sim.post("/v1/chat/completions", kChat, {"x-client-request-id: id-" + std::to_string(i)}).status, 200);
  }
  const auto stats = sim.stats();
  EXPECT_EQ(stats["requests"], 3);
  EXPECT_EQ(stats["by_status"]["200"], 3);
  const auto ledger = sim.ledger();
  ASSERT_EQ(ledger.size(), 3u);
  EXPECT_EQ(ledger[2]["client_request_id"], "id-2");
  EXPECT_EQ(ledger[0]["path"], "/v1/chat/completions");
  EXPECT_EQ(ledger[0]["tokens_charged"], 10 + 20);
}

}  // namespace
}  // namespace floodgate::test
