// MonotonicCondVar: wakes on the condition, times out on the monotonic
// clock, and an infinite timeout waits for the condition alone. (That a
// wall clock step does not stretch it is tests/integration/clock_test.py's,
// under libfaketime.)
#include "common/monotonic_wait.h"

#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace netvigil {
namespace {

TEST(MonotonicCondVarTest, TimesOut) {
  absl::Mutex mu;
  MonotonicCondVar cv;
  absl::MutexLock l(&mu);
  const absl::Time start = absl::Now();
  EXPECT_FALSE(cv.WaitFor(mu, absl::Milliseconds(50), [] { return false; }));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(45));
  EXPECT_FALSE(cv.WaitFor(mu, absl::ZeroDuration(), [] { return false; }));
  EXPECT_TRUE(cv.WaitFor(mu, absl::ZeroDuration(), [] { return true; }));
}

TEST(MonotonicCondVarTest, WakesWhenTheStateChanges) {
  absl::Mutex mu;
  MonotonicCondVar cv;
  bool done = false;
  std::thread t([&] {
    absl::SleepFor(absl::Milliseconds(20));
    absl::MutexLock l(&mu);
    done = true;
    cv.NotifyAll();
  });
  {
    absl::MutexLock l(&mu);
    const absl::Time start = absl::Now();
    EXPECT_TRUE(
        cv.WaitFor(mu, absl::Seconds(30),
                   [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return done; }));
    EXPECT_LT(absl::Now() - start, absl::Seconds(10));
    done = false;
  }
  t.join();
  std::thread u([&] {
    absl::SleepFor(absl::Milliseconds(20));
    absl::MutexLock l(&mu);
    done = true;
    cv.NotifyAll();
  });
  {
    absl::MutexLock l(&mu);
    EXPECT_TRUE(
        cv.WaitFor(mu, absl::InfiniteDuration(),
                   [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return done; }));
  }
  u.join();
}

}  // namespace
}  // namespace netvigil
