#pragma once
// Time is injected. Every component that paces, waits or backs off takes a Clock&,
// so unit tests drive time by hand with ManualClock and never sleep. A Clock has two
// faces: now(), monotonic, for every interval; wall_now(), the calendar, for what is
// written down or compared with a server's dates (journal admissions, pause deadlines,
// a row's finished_at).

#include <atomic>
#include <chrono>

namespace floodgate {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual TimePoint now() const noexcept = 0;
  [[nodiscard]] virtual std::chrono::system_clock::time_point wall_now() const noexcept = 0;
};

// The real monotonic clock.
class SteadyClock final : public Clock {
 public:
  [[nodiscard]] TimePoint now() const noexcept override { return std::chrono::steady_clock::now(); }
  [[nodiscard]] std::chrono::system_clock::time_point wall_now() const noexcept override {
    return std::chrono::system_clock::now();
  }
  // A process-wide instance for callers that do not inject their own.
  static SteadyClock& instance() noexcept {
    static SteadyClock clock;
    return clock;
  }
};

// A clock that moves only when told to. Starts at an arbitrary non-zero epoch so code
// that mistakes time_point{} for "unset" is caught. Its calendar starts at `wall_start`
// (2026-01-01T00:00:00Z unless given) and moves with it.
class ManualClock final : public Clock {
 public:
  static constexpr std::chrono::system_clock::time_point kDefaultWallStart{std::chrono::seconds(1'767'225'600)};
  explicit ManualClock(TimePoint start = TimePoint{} + std::chrono::hours(1000),
                       std::chrono::system_clock::time_point wall_start = kDefaultWallStart)
      : start_ns_(start.time_since_epoch().count()), now_ns_(start_ns_), wall_start_(wall_start) {}
  [[nodiscard]] TimePoint now() const noexcept override { return TimePoint{Duration{now_ns_.load()}}; }
  [[nodiscard]] std::chrono::system_clock::time_point wall_now() const noexcept override {
    return wall_start_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(Duration{now_ns_.load() - start_ns_});
  }
  void advance(Duration d) noexcept { now_ns_ += d.count(); }
  void set(TimePoint t) noexcept { now_ns_ = t.time_since_epoch().count(); }

 private:
  Duration::rep start_ns_;
  std::atomic<Duration::rep> now_ns_;
  std::chrono::system_clock::time_point wall_start_;
};

}  // namespace floodgate
