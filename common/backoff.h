// Exponential backoff with jitter for reconnect loops: after each failure the
// ceiling doubles (up to a cap) and the delay is drawn uniformly from
// [ceiling/2, ceiling], so a home full of agents restarted together does not
// reconnect in lock step. Thread-compatible.
#ifndef NETVIGIL_COMMON_BACKOFF_H_
#define NETVIGIL_COMMON_BACKOFF_H_

#include <cstdint>
#include <functional>

#include "absl/time/time.h"

namespace netvigil {

class Backoff {
 public:
  struct Options {
    absl::Duration initial = absl::Milliseconds(500);
    absl::Duration max = absl::Seconds(30);
    double multiplier = 2.0;
  };
  // `uniform01` returns numbers in [0, 1); the default is a seeded PRNG.
  explicit Backoff(Options options,
                   std::function<double()> uniform01 = nullptr);

  // The delay to wait before the next attempt; grows with every call.
  absl::Duration Next();
  // After a success: the next failure starts from `initial` again.
  void Reset() { attempt_ = 0; }
  int attempt() const { return attempt_; }

 private:
  Options options_;
  std::function<double()> uniform01_;
  int attempt_ = 0;
};

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_BACKOFF_H_
