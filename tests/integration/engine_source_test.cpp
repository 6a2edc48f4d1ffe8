// The engine fed by a RequestSource other than a file, against `floodgate sim`: items that
// are not ready yet are waited for (not taken for the end of the input), and each item's
// payload reaches the sinks with its outcome.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "floodgate/core/error.hpp"
#include "floodgate/engine/engine.hpp"
#include "support/files.hpp"
#include "support/sim_process.hpp"

namespace floodgate::engine {
namespace {

std::string chat_body(int i) {
  return R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello )" + std::to_string(i) + R"("}],"max_tokens":4})";
}

// Items from memory: before each item the source first answers none_yet once and makes its
// eventfd readable, as a queue another thread fills would. Item 3 is a bad one.
class MemorySource final : public RequestSource {
 public:
  explicit MemorySource(int count) : count_(count), fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~MemorySource() override { ::close(fd_); }

  SourceIdentity identity() override {
    SourceIdentity id;
    id.name = "the memory source";
    id.path = "memory";
    id.tag = "memory:v1";
    return id;
  }

  SourceStatus next(SourceItem& item) override {
    std::uint64_t drained = 0;
    [[maybe_unused]] const ssize_t r = ::read(fd_, &drained, sizeof drained);
    if (next_ == count_) return SourceStatus::end;
    if (!ready_) {
      ready_ = true;
      ++none_yet_answers;
      const std::uint64_t one = 1;
      [[maybe_unused]] const ssize_t w = ::write(fd_, &one, sizeof one);
      return SourceStatus::none_yet;
    }
    ready_ = false;
    const int i = next_++;
    item = SourceItem{};
    item.line_no = static_cast<std::uint64_t>(i) + 1;
    item.payload = std::make_shared<const std::string>("row " + std::to_string(i));
    if (i == 3) {
      item.parsed.error = ErrorKind::invalid_input;
      item.parsed.error_message = "row 3: no text";
      item.parsed.custom_id = "r3";
      return SourceStatus::item;
    }
    Request req;
    req.custom_id = "r" + std::to_string(i);
    req.line_no = item.line_no;
    req.endpoint = Endpoint::chat_completions;
    req.url = "/v1/chat/completions";
    req.body = chat_body(i);
    req.model = "gpt-4o-mini";
    item.parsed.request = std::move(req);
    return SourceStatus::item;
  }

  int ready_fd() const noexcept override { return fd_; }

  int none_yet_answers = 0;

 private:
  int count_;
  int next_ = 0;
  bool ready_ = false;
  int fd_;
};

// Remembers, by custom_id, the payload each outcome came with.
class PayloadSink final : public store::Sink {
 public:
  explicit PayloadSink(std::map<std::string, std::string>& seen) : seen_(seen) {}
  void write(const Outcome& outcome, const store::RowContext& context) override {
    const auto* row = static_cast<const std::string*>(context.payload.get());
    seen_[outcome.custom_id] = row != nullptr ? *row : "(none)";
  }
  void flush() override {}
  void close() override {}

 private:
  std::map<std::string, std::string>& seen_;
};

// A quiet run against the sim, the output in `dir`; the caller sets the input.
EngineOptions options_for(const test::SimProcess& sim, const test::TempDir& dir) {
  EngineOptions o;
  o.output_path = dir.file("out.jsonl");
  o.base_url = sim.base_url();
  o.credentials.api_key = sim.api_key();
  o.progress.quiet = true;
  return o;
}

TEST(EngineSource, ItemsNotReadyYetAreWaitedForAndEachPayloadReachesTheSinks) {
  test::SimProcess sim({"--rpm", "100000", "--tpm", "100000000"});
  test::TempDir dir("engine_source");
  std::map<std::string, std::string> seen;
  auto source = std::make_unique<MemorySource>(8);
  MemorySource& memory = *source;

  EngineOptions o = options_for(sim, dir);
  o.source = std::move(source);
  o.extra_sinks.push_back(std::make_unique<PayloadSink>(seen));
  Engine engine(std::move(o));
  const RunSummary summary = engine.run();

  EXPECT_EQ(memory.none_yet_answers, 8);
  EXPECT_EQ(summary.total_lines, 8u);
  EXPECT_EQ(summary.succeeded, 7u);
  EXPECT_EQ(summary.failed, 1u);
  ASSERT_EQ(seen.size(), 8u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(seen["r" + std::to_string(i)], "row " + std::to_string(i)) << i;
  const auto lines = test::read_jsonl(dir.path / "out.jsonl");
  EXPECT_EQ(lines.size(), 8u);
}

TEST(EngineSource, AResumeWithTheSameSourceSendsNothingAgainAndAnotherSourceIsRefused) {
  test::SimProcess sim({"--rpm", "100000", "--tpm", "100000000"});
  test::TempDir dir("engine_source");
  auto run = [&](std::unique_ptr<RequestSource> source) {
    EngineOptions o = options_for(sim, dir);
    o.source = std::move(source);
    Engine engine(std::move(o));
    return engine.run();
  };
  EXPECT_EQ(run(std::make_unique<MemorySource>(5)).succeeded, 4u);
  const RunSummary again = run(std::make_unique<MemorySource>(5));
  EXPECT_EQ(again.skipped_done, 5u);
  EXPECT_EQ(again.attempts, 0u);

  // The output's journal belongs to the memory source, not to a file of the same rows.
  std::string text;
  for (int i = 0; i < 5; ++i) text += R"({"custom_id":"r)" + std::to_string(i) + R"(","method":"POST","url":"/v1/chat/completions","body":)" + chat_body(i) + "}\n";
  {
    std::FILE* f = std::fopen(dir.file("in.jsonl").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(text.c_str(), f);
    std::fclose(f);
  }
  EngineOptions o = options_for(sim, dir);
  o.input_path = dir.file("in.jsonl");
  Engine engine(std::move(o));
  EXPECT_THROW((void)engine.run(), Error);
}

}  // namespace
}  // namespace floodgate::engine
