#include "agent/backlog_pacer.h"

#include <algorithm>

namespace netvigil::agent {

BacklogPacer::BacklogPacer(size_t bytes_per_second, absl::Duration fresh_for,
                           Clock& clock)
    : rate_(static_cast<double>(bytes_per_second)),
      fresh_for_(fresh_for),
      clock_(clock),
      tokens_(rate_),
      last_(clock.MonotonicNow()) {}

void BacklogPacer::Pace(size_t bytes, absl::Time produced_at) {
  if (rate_ <= 0 || clock_.Now() - produced_at < fresh_for_) return;
  for (;;) {
    const absl::Time now = clock_.MonotonicNow();
    tokens_ =
        std::min(rate_, tokens_ + rate_ * absl::ToDoubleSeconds(now - last_));
    last_ = now;
    // A result larger than the burst goes once the bucket is full.
    const double need = std::min(static_cast<double>(bytes), rate_);
    if (tokens_ >= need) {
      tokens_ -= static_cast<double>(bytes);
      return;
    }
    clock_.SleepFor(absl::Seconds((need - tokens_) / rate_));
  }
}

}  // namespace netvigil::agent
