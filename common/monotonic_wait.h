// Timed waits measured on CLOCK_MONOTONIC for state guarded by an
// absl::Mutex. Thread-safe.
//
// Why: this Abseil (20220623) turns every timed wait (Mutex::AwaitWithTimeout,
// CondVar::WaitWithTimeout, Notification::WaitForNotificationWithTimeout)
// into an absolute CLOCK_REALTIME futex deadline, so a wall clock stepped
// back an hour holds such a wait an hour longer: heartbeats and probe runs
// stopped. std::condition_variable_any waits on steady_clock
// (pthread_cond_clockwait with CLOCK_MONOTONIC), which no step moves.
// Whoever changes the state a waiter watches must call NotifyAll() while
// holding the mutex.
#ifndef NETVIGIL_COMMON_MONOTONIC_WAIT_H_
#define NETVIGIL_COMMON_MONOTONIC_WAIT_H_

#include <chrono>
#include <condition_variable>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace netvigil {

class MonotonicCondVar {
 public:
  // With `mu` held: returns once `done()` is true (true) or `timeout` has
  // passed on the monotonic clock (done()'s value then). `mu` is held again
  // on return. An infinite timeout waits for done() alone.
  // Callers are checked against the REQUIRES; the body is not analysed:
  // clang cannot see that `mu` is the mutex done()'s own REQUIRES names.
  template <typename Pred>
  bool WaitFor(absl::Mutex& mu, absl::Duration timeout, Pred done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    Lockable l{mu};
    if (timeout == absl::InfiniteDuration()) {
      cv_.wait(l, done);
      return true;
    }
    if (timeout <= absl::ZeroDuration()) return done();
    return cv_.wait_until(
        l,
        std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout),
        done);
  }

  void NotifyAll() { cv_.notify_all(); }

 private:
  // What std::condition_variable_any needs from a lock.
  struct Lockable {
    absl::Mutex& mu;
    void lock() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.Lock(); }
    void unlock() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.Unlock(); }
  };
  std::condition_variable_any cv_;
};

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_MONOTONIC_WAIT_H_
