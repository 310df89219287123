// Time as a seam: production code asks a Clock, tests pass a FakeClock
// (tests/testing/fake_clock.h). Implementations are thread-safe.
#ifndef NETVIGIL_COMMON_CLOCK_H_
#define NETVIGIL_COMMON_CLOCK_H_

#include "absl/time/time.h"

namespace netvigil {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
  // Monotonic time for measuring intervals; unaffected by wall-clock steps.
  virtual absl::Time MonotonicNow() = 0;
  virtual void SleepFor(absl::Duration d) = 0;
};

// The process-wide real clock. Never null; not owned by the caller.
Clock& RealClock();

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_CLOCK_H_
