// A Clock that moves only when told: SleepFor advances it and records the
// sleep, so time-dependent logic is tested in microseconds. Thread-safe.
#ifndef NETVIGIL_TESTS_TESTING_FAKE_CLOCK_H_
#define NETVIGIL_TESTS_TESTING_FAKE_CLOCK_H_

#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace netvigil::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000))
      : now_(start) {}

  absl::Time Now() override {
    absl::MutexLock l(&mu_);
    return now_;
  }
  absl::Time MonotonicNow() override { return Now(); }
  void SleepFor(absl::Duration d) override {
    absl::MutexLock l(&mu_);
    sleeps_.push_back(d);
    now_ += d;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock l(&mu_);
    now_ += d;
  }
  std::vector<absl::Duration> sleeps() {
    absl::MutexLock l(&mu_);
    return sleeps_;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Duration> sleeps_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netvigil::testing

#endif  // NETVIGIL_TESTS_TESTING_FAKE_CLOCK_H_
