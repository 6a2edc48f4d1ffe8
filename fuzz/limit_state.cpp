// Fuzz target: a RateLimiter driven by a sequence of actions decoded from the input
// (acquire, advance, go back in time, reconcile, observe headers, pause) never admits more
// than its limit in any 60-second window, checked against an independent log, and never
// answers "wait" with a time that is not in the future.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <vector>

#include "floodgate/limit/rate_limiter.hpp"

namespace {

using namespace std::chrono_literals;
using namespace floodgate::limit;
using floodgate::Duration;
using floodgate::TimePoint;

struct Reader {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t pos = 0;
  bool more() const { return pos < size; }
  std::uint8_t byte() { return pos < size ? data[pos++] : 0; }
  std::uint32_t u16() { return static_cast<std::uint32_t>(byte()) << 8 | byte(); }
};

struct Entry {
  TimePoint at;
  double requests;
  double tokens;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader in{data, size};
  const double rpm = 1 + in.byte() % 200;
  const double tpm = in.byte() % 2 ? 0 : 100 + in.u16() * 10.0;
  LimiterOptions options;
  options.burst = std::chrono::milliseconds(in.u16() % 5000);
  options.pacing = options.burst.count() % 2 ? LimiterOptions::Pacing::whole_window : LimiterOptions::Pacing::even;
  options.window_margin = std::chrono::milliseconds(in.byte() * 4);
  options.refund = in.byte() % 2 ? LimiterOptions::Refund::unused : LimiterOptions::Refund::refused_only;
  RateLimiter limiter(Limits{rpm, tpm, 0, 0}, in.byte() % 2 == 0, options);
  TimePoint now = TimePoint{} + 1000h;
  TimePoint latest = TimePoint::min();  // the latest time the limiter has been told
  std::vector<Entry> log;
  std::deque<std::pair<Grant, std::size_t>> pending;
  int steps = 0;
  while (in.more() && ++steps < 3000) {
    switch (in.byte() % 7) {
      case 0:
      case 1: {
        const Cost cost{1 + in.byte() % 3u, in.u16()};
        const Decision d = limiter.try_acquire(cost, now);
        latest = std::max(latest, now);
        if (d.verdict == Decision::Verdict::wait && d.not_before <= latest) std::abort();
        if (d.admitted()) {
          log.push_back({d.grant.admitted_at, static_cast<double>(cost.requests), static_cast<double>(cost.tokens)});
          pending.emplace_back(d.grant, log.size() - 1);
          double r = 0, t = 0;
          for (const auto& e : log) {
            if (e.at > d.grant.admitted_at - 60s) {
              r += e.requests;
              t += e.tokens;
            }
          }
          const Limits lim = limiter.limits();
          // A limit may have been lowered by learning, never raised above the configured one.
          if (r > rpm) std::abort();
          if (tpm > 0 && t > tpm) std::abort();
          if (lim.requests_per_minute > rpm) std::abort();
        }
        break;
      }
      case 2:
        now += std::chrono::milliseconds(in.u16() * 4);
        break;
      case 3:
        now -= std::chrono::milliseconds(in.u16());
        break;
      case 4:
        if (!pending.empty()) {
          auto [grant, index] = pending.front();
          pending.pop_front();
          // Usually a refund; sometimes more than reserved (a charge). The log keeps what
          // was admitted: a charge only makes the limiter stricter than the log.
          const std::uint64_t used = in.byte() % 8 == 0 ? in.u16() * 4u : (grant.cost.tokens == 0 ? 0 : in.u16() % (grant.cost.tokens + 1));
          limiter.reconcile(grant, Cost{grant.cost.requests, used}, now);
          latest = std::max(latest, now);
          if (used == 0 || options.refund == LimiterOptions::Refund::unused) {
            log[index].tokens = static_cast<double>(std::min(used, grant.cost.tokens));
          }
        }
        break;
      case 5: {
        RateLimitHeaders h;
        if (in.byte() % 2) h.limit_requests = 1 + in.byte();
        if (in.byte() % 2) h.remaining_requests = in.byte();
        if (in.byte() % 2) h.remaining_tokens = in.u16();
        if (in.byte() % 2) h.reset_requests = std::chrono::milliseconds(in.u16());
        limiter.observe(h, now);
        latest = std::max(latest, now);
        break;
      }
      default:
        limiter.pause_until(now + std::chrono::milliseconds(in.byte()));
        break;
    }
  }
  return 0;
}
