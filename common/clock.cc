#include "common/clock.h"

#include <time.h>

#include "absl/time/clock.h"

namespace netvigil {
namespace {

class SystemClock final : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
  absl::Time MonotonicNow() override {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return absl::FromUnixSeconds(0) + absl::DurationFromTimespec(ts);
  }
  void SleepFor(absl::Duration d) override { absl::SleepFor(d); }
};

}  // namespace

Clock& RealClock() {
  static SystemClock* clock = new SystemClock();
  return *clock;
}

}  // namespace netvigil
