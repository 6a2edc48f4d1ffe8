// EngineTransport (src/gateway/engine_transport.hpp): the transport floodgate serve gives its
// engine. No sockets: the calls are fakes that note what the transport asks of them.
#include "gateway/engine_transport.hpp"

#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <vector>

#include "floodgate/core/error.hpp"

namespace floodgate::gateway {
namespace {

using namespace std::chrono_literals;

struct FakeCall final : EngineCall {
  std::vector<std::uint64_t> started;
  std::vector<std::uint64_t> aborted;
  std::shared_ptr<EngineBox> box;
  void start(const std::shared_ptr<EngineBox>& b, std::uint64_t tag) override {
    box = b;
    started.push_back(tag);
  }
  void abort(std::uint64_t tag) override { aborted.push_back(tag); }
};

http::HttpRequest request_of(std::uint64_t tag, const std::shared_ptr<FakeCall>& call) {
  http::HttpRequest r;
  r.tag = tag;
  r.context = call;
  return r;
}

http::HttpResponse answer(std::uint64_t tag, int status) {
  http::HttpResponse r;
  r.tag = tag;
  r.status = status;
  return r;
}

TEST(EngineTransport, AnAttemptStartsItsCallAndItsAnswerComesBackThroughPoll) {
  EngineTransport t({});
  auto call = std::make_shared<FakeCall>();
  t.submit(request_of(7, call));
  EXPECT_EQ(call->started, std::vector<std::uint64_t>{7});
  EXPECT_EQ(t.in_flight(), 1u);
  EXPECT_TRUE(call->box->live(7));
  std::vector<http::HttpResponse> out;
  EXPECT_EQ(t.poll(0ms, out), 0u) << "nothing answered yet";
  call->box->finish(answer(7, 200));
  EXPECT_FALSE(call->box->live(7));
  EXPECT_EQ(t.in_flight(), 0u);
  // Bounded: the eventfd is readable, so the poll returns at once, not after 10 s.
  const auto started = std::chrono::steady_clock::now();
  ASSERT_EQ(t.poll(10'000ms, out), 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_EQ(out[0].tag, 7u);
  EXPECT_EQ(out[0].status, 200);
  EXPECT_EQ(t.poll(0ms, out), 0u) << "handed over once";
}

TEST(EngineTransport, ACancelledAttemptIsAbortedAndItsLateAnswerDropped) {
  EngineTransport t({});
  auto call = std::make_shared<FakeCall>();
  t.submit(request_of(1, call));
  t.submit(request_of(2, call));
  EXPECT_TRUE(t.cancel(1));
  EXPECT_EQ(call->aborted, std::vector<std::uint64_t>{1});
  EXPECT_FALSE(t.cancel(1)) << "no longer in flight";
  EXPECT_FALSE(t.cancel(99)) << "never submitted";
  call->box->finish(answer(1, 200));  // too late: dropped
  call->box->finish(answer(2, 429));
  std::vector<http::HttpResponse> out;
  ASSERT_EQ(t.poll(0ms, out), 1u);
  EXPECT_EQ(out[0].tag, 2u);
  EXPECT_FALSE(t.cancel(2)) << "finished: the engine gets its answer";
}

TEST(EngineTransport, CancelAllAbortsEveryAttemptAndDropsWhatWasNotHandedOver) {
  EngineTransport t({});
  auto a = std::make_shared<FakeCall>();
  auto b = std::make_shared<FakeCall>();
  t.submit(request_of(1, a));
  t.submit(request_of(2, b));
  t.submit(request_of(3, b));
  b->box->finish(answer(3, 200));
  t.cancel_all();
  EXPECT_EQ(a->aborted, std::vector<std::uint64_t>{1});
  EXPECT_EQ(b->aborted, std::vector<std::uint64_t>{2});
  EXPECT_EQ(t.in_flight(), 0u);
  std::vector<http::HttpResponse> out;
  EXPECT_EQ(t.poll(0ms, out), 0u);
}

TEST(EngineTransport, PollReturnsWhenTheWakeFdIsReadableAndWakeupInterruptsIt) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  http::TransportOptions o;
  o.wake_fd = fds[0];
  EngineTransport t(o);
  ASSERT_EQ(::write(fds[1], "x", 1), 1);
  std::vector<http::HttpResponse> out;
  auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(t.poll(10'000ms, out), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s) << "the wake fd (a stop, a cancel) ends the wait";
  char byte = 0;
  ASSERT_EQ(::read(fds[0], &byte, 1), 1);
  t.wakeup();
  started = std::chrono::steady_clock::now();
  EXPECT_EQ(t.poll(10'000ms, out), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(EngineTransport, ARequestWithoutItsCallIsRefused) {
  EngineTransport t({});
  EXPECT_THROW(t.submit(http::HttpRequest{}), Error);
}

}  // namespace
}  // namespace floodgate::gateway
