// Integration: the simulator's Files and Batches API (`floodgate sim --batch-*`), driven over
// HTTP: upload, create, the lifecycle, validation errors, expiry, line failures, cancel with
// partial results, the enqueued-token limit, shuffled outputs and the ledger's batch lines.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/sim_process.hpp"

namespace floodgate::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::string chat_line(const std::string& id, const std::string& text = "hello there") {
  return json{{"custom_id", id},
              {"method", "POST"},
              {"url", "/v1/chat/completions"},
              {"body", {{"model", "gpt-4o-mini"}, {"messages", {{{"role", "user"}, {"content", text}}}}, {"max_tokens", 5}}}}
             .dump();
}

std::string chat_file(int n, const std::string& prefix = "q") {
  std::string out;
  for (int i = 0; i < n; ++i) out += chat_line(prefix + std::to_string(i)) + "\n";
  return out;
}

// POST /v1/files with a hand-made multipart body: the file id, or "" (then `error` holds the reply).
std::string upload(const SimProcess& sim, const std::string& content, std::string* error = nullptr,
                   const std::string& filename = "in.jsonl", const std::string& purpose = "batch") {
  const std::string boundary = "----fgtestboundary";
  std::string body = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n" + purpose +
                     "\r\n--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + filename +
                     "\"\r\nContent-Type: application/jsonl\r\n\r\n" + content + "\r\n--" + boundary + "--\r\n";
  const HttpResult r = sim.post("/v1/files", body, {"Content-Type: multipart/form-data; boundary=" + boundary});
  if (r.status != 200) {
    if (error) *error = std::to_string(r.status) + " " + r.body;
    return {};
  }
  return r.json()["id"];
}

json create(const SimProcess& sim, const std::string& file_id, const std::string& endpoint = "/v1/chat/completions") {
  const HttpResult r = sim.post("/v1/batches", json{{"input_file_id", file_id},
                                                    {"endpoint", endpoint},
                                                    {"completion_window", "24h"},
                                                    {"metadata", {{"job", "test"}}}}.dump());
  EXPECT_EQ(r.status, 200) << r.body;
  return r.json();
}

bool terminal(const std::string& status) {
  return status == "completed" || status == "failed" || status == "expired" || status == "cancelled";
}

json wait_terminal(const SimProcess& sim, const std::string& id) {
  json b;
  for (int i = 0; i < 2000; ++i) {
    b = sim.get("/v1/batches/" + id).json();
    if (terminal(b.value("status", ""))) return b;
    std::this_thread::sleep_for(5ms);
  }
  ADD_FAILURE() << "batch never finished: " << b.dump();
  return b;
}

std::vector<json> file_lines(const SimProcess& sim, const json& id) {
  std::vector<json> out;
  if (!id.is_string()) return out;
  const HttpResult r = sim.get("/v1/files/" + id.get<std::string>() + "/content");
  EXPECT_EQ(r.status, 200) << r.body;
  std::istringstream in(r.body);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

TEST(SimBatch, UploadCreateCompleteShuffledWithLedgerLines) {
  SimProcess sim({"--batch-speed", "1000"});
  const std::string content = chat_file(40);
  const std::string file_id = upload(sim, content);
  ASSERT_FALSE(file_id.empty());
  const json meta = sim.get("/v1/files/" + file_id).json();
  EXPECT_EQ(meta["bytes"], content.size());
  EXPECT_EQ(meta["purpose"], "batch");
  EXPECT_EQ(sim.get("/v1/files/" + file_id + "/content").body, content);

  const json created = create(sim, file_id);
  EXPECT_EQ(created["status"], "validating");
  EXPECT_EQ(created["metadata"]["job"], "test");
  const json done = wait_terminal(sim, created["id"]);
  ASSERT_EQ(done["status"], "completed") << done.dump();
  EXPECT_EQ(done["request_counts"]["total"], 40);
  EXPECT_EQ(done["request_counts"]["completed"], 40);
  EXPECT_TRUE(done["error_file_id"].is_null());
  const auto out = file_lines(sim, done["output_file_id"]);
  ASSERT_EQ(out.size(), 40u);
  std::vector<std::string> order;
  std::set<std::string> ids;
  for (const auto& line : out) {
    order.push_back(line["custom_id"]);
    ids.insert(line["custom_id"].get<std::string>());
    EXPECT_EQ(line["response"]["status_code"], 200);
    EXPECT_EQ(line["response"]["body"]["object"], "chat.completion");
    EXPECT_TRUE(line["error"].is_null());
  }
  EXPECT_EQ(ids.size(), 40u);
  std::vector<std::string> sorted_order;
  for (int i = 0; i < 40; ++i) sorted_order.push_back("q" + std::to_string(i));
  EXPECT_NE(order, sorted_order) << "outputs come back in no particular order";

  // The ledger: one upload, one create, and one line per request naming the batch.
  int lines = 0, uploads = 0, creates = 0;
  for (const auto& e : sim.ledger()) {
    if (e.contains("batch_id")) {
      ++lines;
      EXPECT_EQ(e["batch_id"], created["id"]);
      EXPECT_EQ(e["status"], 200);
      EXPECT_TRUE(ids.count(e["client_request_id"].get<std::string>()));
    } else if (e["method"] == "POST" && e["path"] == "/v1/files") {
      ++uploads;
    } else if (e["method"] == "POST" && e["path"] == "/v1/batches") {
      ++creates;
    }
  }
  EXPECT_EQ(lines, 40);
  EXPECT_EQ(uploads, 1);
  EXPECT_EQ(creates, 1);
  // Listing finds it, newest first.
  const json list = sim.get("/v1/batches?limit=5").json();
  ASSERT_EQ(list["data"].size(), 1u);
  EXPECT_EQ(list["data"][0]["id"], created["id"]);
  // A finished batch cannot be cancelled.
  EXPECT_EQ(sim.post("/v1/batches/" + created["id"].get<std::string>() + "/cancel", "").status, 409);
}

TEST(SimBatch, ValidationFailureNamesEachBadLine) {
  SimProcess sim({"--batch-speed", "1000"});
  std::string content = chat_line("a") + "\n" + "not json\n" + chat_line("a") + "\n";
  json wrong_url = json::parse(chat_line("b"));
  wrong_url["url"] = "/v1/embeddings";
  content += wrong_url.dump() + "\n";
  json other_model = json::parse(chat_line("c"));
  other_model["body"]["model"] = "gpt-4o";
  content += other_model.dump() + "\n";
  const std::string file_id = upload(sim, content);
  ASSERT_FALSE(file_id.empty());
  const json done = wait_terminal(sim, create(sim, file_id)["id"]);
  ASSERT_EQ(done["status"], "failed");
  const auto& data = done["errors"]["data"];
  ASSERT_EQ(data.size(), 4u) << done.dump();
  std::map<int, std::string> by_line;
  for (const auto& e : data) by_line[e["line"].get<int>()] = e["code"];
  EXPECT_EQ(by_line[2], "invalid_json_line");
  EXPECT_EQ(by_line[3], "duplicate_custom_id");
  EXPECT_EQ(by_line[4], "mismatched_endpoint");
  EXPECT_EQ(by_line[5], "mismatched_model");
  // Nothing was answered.
  for (const auto& e : sim.ledger()) EXPECT_FALSE(e.contains("batch_id"));
}

TEST(SimBatch, RefusesBadCreateRequestsAndNonBatchUploads) {
  SimProcess sim;
  std::string error;
  EXPECT_TRUE(upload(sim, chat_file(1), &error, "in.txt").empty());
  EXPECT_NE(error.find("400"), std::string::npos);
  EXPECT_EQ(sim.post("/v1/batches", R"({"input_file_id":"file-nope","endpoint":"/v1/chat/completions","completion_window":"24h"})").status, 404);
  const std::string id = upload(sim, chat_file(1));
  EXPECT_EQ(sim.post("/v1/batches", json{{"input_file_id", id}, {"endpoint", "/v1/chat/completions"}, {"completion_window", "1h"}}.dump()).status, 400);
  EXPECT_EQ(sim.get("/v1/files/file-nope/content").status, 404);
  EXPECT_EQ(sim.get("/v1/batches", {"Authorization:"}).status, 401);
}

TEST(SimBatch, ExpiryAndLineFailuresGoToTheErrorFile) {
  SimProcess sim({"--batch-speed", "1000", "--batch-expire-rate", "0.25", "--batch-line-failure-rate", "0.25"});
  const json done = wait_terminal(sim, create(sim, upload(sim, chat_file(80)))["id"]);
  ASSERT_EQ(done["status"], "expired") << done.dump();
  const auto out = file_lines(sim, done["output_file_id"]);
  const auto err = file_lines(sim, done["error_file_id"]);
  EXPECT_EQ(out.size() + err.size(), 80u);
  int expired = 0, failed = 0;
  std::set<std::string> ids;
  for (const auto& l : out) ids.insert(l["custom_id"].get<std::string>());
  for (const auto& l : err) {
    ids.insert(l["custom_id"].get<std::string>());
    if (!l["error"].is_null() && l["error"]["code"] == "batch_expired") ++expired;
    if (!l["response"].is_null() && l["response"]["status_code"] == 500) ++failed;
  }
  EXPECT_EQ(ids.size(), 80u);
  EXPECT_GT(expired, 5);
  EXPECT_GT(failed, 5);
  EXPECT_EQ(done["request_counts"]["completed"], out.size());
  EXPECT_EQ(done["request_counts"]["failed"], err.size());
}

TEST(SimBatch, CancelKeepsThePartialResults) {
  // 5 ms per line at speed 2: 400 lines take 2 s, so the cancel lands in the middle.
  SimProcess sim({"--batch-speed", "2"});
  const json created = create(sim, upload(sim, chat_file(400)));
  const std::string id = created["id"];
  json b;
  for (int i = 0; i < 2000; ++i) {
    b = sim.get("/v1/batches/" + id).json();
    if (b["request_counts"]["completed"].get<int>() > 0) break;
    std::this_thread::sleep_for(5ms);
  }
  const HttpResult c = sim.post("/v1/batches/" + id + "/cancel", "");
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(c.json()["status"], "cancelling");
  const json done = wait_terminal(sim, id);
  ASSERT_EQ(done["status"], "cancelled");
  const auto out = file_lines(sim, done["output_file_id"]);
  EXPECT_GT(out.size(), 0u);
  EXPECT_LT(out.size(), 400u);
  EXPECT_EQ(done["request_counts"]["completed"], out.size());
}

TEST(SimBatch, EnqueuedTokenLimitFailsTheBatchThatWouldPassIt) {
  // 200 lines of about 14 prompt tokens each (~1,800 per batch); a limit of 3,000 holds one.
  SimProcess sim({"--batch-speed", "2", "--batch-queue-limit", "gpt-4o-mini=3000"});  // each batch runs 2.5 s
  const json first = create(sim, upload(sim, chat_file(200, "a")));
  const json second = create(sim, upload(sim, chat_file(200, "b")));
  const json failed = wait_terminal(sim, second["id"]);
  ASSERT_EQ(failed["status"], "failed") << failed.dump();
  EXPECT_EQ(failed["errors"]["data"][0]["code"], "token_limit_exceeded");
  EXPECT_NE(failed["errors"]["data"][0]["message"].get<std::string>().find("Enqueued token limit reached for gpt-4o-mini"),
            std::string::npos);
  EXPECT_NE(failed["errors"]["data"][0]["message"].get<std::string>().find("Limit: 3,000"), std::string::npos);
  EXPECT_EQ(wait_terminal(sim, first["id"])["status"], "completed");
  // Once the first is done, the same input is accepted.
  const json again = wait_terminal(sim, create(sim, upload(sim, chat_file(200, "b")))["id"]);
  EXPECT_EQ(again["status"], "completed");
}

TEST(SimBatch, ResponsesAndCompletionsBatchesAnswerInTheirEndpointsShapeWithTheBatchsUsage) {
  SimProcess sim({"--batch-speed", "1000"});
  for (const std::string endpoint : {"/v1/responses", "/v1/completions"}) {
    std::string content;
    for (int i = 0; i < 20; ++i) {
      const json body = endpoint == "/v1/responses"
                            ? json{{"model", "gpt-4o-mini"}, {"instructions", "Be brief."}, {"input", "item " + std::to_string(i)},
                                   {"max_output_tokens", 8}}
                            : json{{"model", "gpt-4o-mini"}, {"prompt", "item " + std::to_string(i)}, {"max_tokens", 8}};
      content += json{{"custom_id", "q" + std::to_string(i)}, {"method", "POST"}, {"url", endpoint}, {"body", body}}.dump() + "\n";
    }
    const json done = wait_terminal(sim, create(sim, upload(sim, content), endpoint)["id"]);
    ASSERT_EQ(done["status"], "completed") << done.dump();
    std::int64_t input = 0, output = 0;
    const auto out = file_lines(sim, done["output_file_id"]);
    ASSERT_EQ(out.size(), 20u);
    for (const auto& line : out) {
      const json& body = line["response"]["body"];
      if (endpoint == "/v1/responses") {
        EXPECT_EQ(body["object"], "response") << body.dump();
        EXPECT_EQ(body["output"][0]["type"], "message");
        EXPECT_EQ(body["output"][0]["content"][0]["type"], "output_text");
        EXPECT_FALSE(body["output"][0]["content"][0]["text"].get<std::string>().empty());
        input += body["usage"]["input_tokens"].get<std::int64_t>();
        output += body["usage"]["output_tokens"].get<std::int64_t>();
        EXPECT_LE(body["usage"]["output_tokens"].get<int>(), 8);
      } else {
        EXPECT_EQ(body["object"], "text_completion") << body.dump();
        EXPECT_FALSE(body["choices"][0]["text"].get<std::string>().empty());
        input += body["usage"]["prompt_tokens"].get<std::int64_t>();
        output += body["usage"]["completion_tokens"].get<std::int64_t>();
      }
    }
    // The Batch object's usage (openai-openapi: input/output tokens and their details).
    EXPECT_GT(input, 0);
    EXPECT_EQ(done["usage"]["input_tokens"], input);
    EXPECT_EQ(done["usage"]["output_tokens"], output);
    EXPECT_EQ(done["usage"]["total_tokens"], input + output);
    EXPECT_EQ(done["usage"]["input_tokens_details"]["cached_tokens"], 0);
    EXPECT_EQ(done["usage"]["output_tokens_details"]["reasoning_tokens"], 0);
  }
  // In real time too.
  const HttpResult r = sim.post("/v1/responses", json{{"model", "gpt-4o-mini"}, {"input", "hello"}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["status"], "completed");
}

TEST(SimBatch, ModerationsBatchesJudgeEveryInput) {
  SimProcess sim({"--batch-speed", "1000"});
  std::string content;
  for (int i = 0; i < 60; ++i) {
    const json body{{"model", "omni-moderation-latest"}, {"input", json::array({"text " + std::to_string(i), "more text"})}};
    content += json{{"custom_id", "m" + std::to_string(i)}, {"method", "POST"}, {"url", "/v1/moderations"}, {"body", body}}.dump() + "\n";
  }
  const json done = wait_terminal(sim, create(sim, upload(sim, content), "/v1/moderations")["id"]);
  ASSERT_EQ(done["status"], "completed") << done.dump();
  const auto out = file_lines(sim, done["output_file_id"]);
  ASSERT_EQ(out.size(), 60u);
  int flagged = 0;
  for (const auto& line : out) {
    const json& body = line["response"]["body"];
    EXPECT_EQ(body["model"], "omni-moderation-latest");
    ASSERT_EQ(body["results"].size(), 2u) << body.dump();  // one verdict per input
    for (const auto& r : body["results"]) {
      EXPECT_EQ(r["categories"].size(), 13u);
      EXPECT_EQ(r["category_scores"].size(), 13u);
      bool any = false;
      for (const auto& [name, hit] : r["categories"].items()) any = any || hit.get<bool>();
      EXPECT_EQ(r["flagged"].get<bool>(), any);
      flagged += r["flagged"].get<bool>() ? 1 : 0;
    }
  }
  EXPECT_GT(flagged, 0);  // seeded: about one input in ten
  EXPECT_LT(flagged, 60);
  // The model is optional in real time.
  const HttpResult r = sim.post("/v1/moderations", json{{"input", "hello"}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["model"], "omni-moderation-latest");
}

TEST(SimBatch, CreateFollowsTheSpecsEndpointsAndMetadataLimits) {
  SimProcess sim;
  const std::string id = upload(sim, chat_file(1));
  const auto create_with = [&](const std::string& endpoint, const json& metadata) {
    return sim.post("/v1/batches", json{{"input_file_id", id}, {"endpoint", endpoint}, {"completion_window", "24h"},
                                        {"metadata", metadata}}.dump());
  };
  // In the spec's enum but not simulated: said so, not called invalid.
  const HttpResult images = create_with("/v1/images/generations", json::object());
  EXPECT_EQ(images.status, 400);
  EXPECT_NE(images.body.find("does not answer /v1/images/generations batches"), std::string::npos) << images.body;
  const HttpResult unknown = create_with("/v1/audio/transcriptions", json::object());
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("Supported values are: '/v1/responses'"), std::string::npos) << unknown.body;
  // Metadata: keys up to 64 characters, values up to 512.
  EXPECT_EQ(create_with("/v1/chat/completions", {{std::string(64, 'k'), std::string(512, 'v')}}).status, 200);
  EXPECT_EQ(create_with("/v1/chat/completions", {{std::string(65, 'k'), "v"}}).status, 400);
  EXPECT_EQ(create_with("/v1/chat/completions", {{"k", std::string(513, 'v')}}).status, 400);
}

}  // namespace
}  // namespace floodgate::test
