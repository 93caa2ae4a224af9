// Time, passed in rather than read from a global, so tests can fix or move it.
#ifndef SAMSYNC_CLOCK_H_
#define SAMSYNC_CLOCK_H_

#include <cstdint>
#include <string>

namespace samsync {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock milliseconds since the Unix epoch. Any thread may call.
  virtual int64_t NowMs() const = 0;
};

// The system's real-time clock.
class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override;
};

// A clock that says what it is told. For tests and reproducible demo data.
class FixedClock final : public Clock {
 public:
  explicit FixedClock(int64_t now_ms) : now_ms_(now_ms) {}
  int64_t NowMs() const override { return now_ms_; }
  void Set(int64_t now_ms) { now_ms_ = now_ms; }
  void AdvanceMs(int64_t ms) { now_ms_ += ms; }

 private:
  int64_t now_ms_;
};

// Milliseconds since the Unix epoch as "2016-09-12 10:31:05 UTC", or without the
// seconds ("2016-09-12 10:31 UTC") when `seconds` is false.
std::string FormatTime(int64_t ms, bool seconds = true);

}  // namespace samsync

#endif  // SAMSYNC_CLOCK_H_
