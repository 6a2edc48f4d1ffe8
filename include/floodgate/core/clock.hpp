#pragma once
// Time is injected. Every component that paces, waits or backs off takes a Clock&,
// so unit tests drive time by hand with ManualClock and never sleep.

#include <atomic>
#include <chrono>

namespace floodgate {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual TimePoint now() const noexcept = 0;
};

// The real monotonic clock.
class SteadyClock final : public Clock {
 public:
  [[nodiscard]] TimePoint now() const noexcept override { return std::chrono::steady_clock::now(); }
  // A process-wide instance for callers that do not inject their own.
  static SteadyClock& instance() noexcept {
    static SteadyClock clock;
    return clock;
  }
};

// A clock that moves only when told to. Starts at an arbitrary non-zero epoch so code
// that mistakes time_point{} for "unset" is caught.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint{} + std::chrono::hours(1000)) : now_ns_(start.time_since_epoch().count()) {}
  [[nodiscard]] TimePoint now() const noexcept override { return TimePoint{Duration{now_ns_.load()}}; }
  void advance(Duration d) noexcept { now_ns_ += d.count(); }
  void set(TimePoint t) noexcept { now_ns_ = t.time_since_epoch().count(); }

 private:
  std::atomic<Duration::rep> now_ns_;
};

}  // namespace floodgate
