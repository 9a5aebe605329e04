// Injectable clocks. Every time the engine uses (rate limits, mark staleness, trading-day roll)
// comes from a Clock, so tests drive time explicitly.
#ifndef QUORUM_RISK_CLOCK_H_
#define QUORUM_RISK_CLOCK_H_

#include <cstdint>

namespace quorum_risk {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic nanoseconds (arbitrary epoch). Used for rate limits and staleness.
  virtual int64_t MonotonicNanos() const = 0;
  // Wall-clock nanoseconds since the Unix epoch (UTC). Used only for the trading-day roll.
  virtual int64_t WallNanos() const = 0;
};

// CLOCK_MONOTONIC / CLOCK_REALTIME.
class SystemClock final : public Clock {
 public:
  int64_t MonotonicNanos() const override;
  int64_t WallNanos() const override;
  // Process-wide instance.
  static SystemClock* Get();
};

// A clock that only moves when told to. For tests and benchmarks.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t monotonic_ns = 1'000'000'000, int64_t wall_ns = 1'700'000'000'000'000'000)
      : mono_(monotonic_ns), wall_(wall_ns) {}
  int64_t MonotonicNanos() const override { return mono_; }
  int64_t WallNanos() const override { return wall_; }
  // Advances both clocks.
  void Advance(int64_t ns) {
    mono_ += ns;
    wall_ += ns;
  }
  void AdvanceSeconds(double s) { Advance(static_cast<int64_t>(s * 1e9)); }
  void SetWallNanos(int64_t ns) { wall_ = ns; }

 private:
  int64_t mono_;
  int64_t wall_;
};

}  // namespace quorum_risk

#endif  // QUORUM_RISK_CLOCK_H_
