// Paces how fast an agent sends results that have waited in its spool (a
// backlog after the collector or the network was away): a token bucket of
// bytes per second with a burst of one second's worth. A home of agents
// coming back together then drains at a bounded rate instead of each
// flooding the collector, whose queue is shared: other agents' live results
// are not delayed behind one host's hours of backlog. Fresh results are not
// paced. Thread-compatible.
#ifndef NETVIGIL_AGENT_BACKLOG_PACER_H_
#define NETVIGIL_AGENT_BACKLOG_PACER_H_

#include <cstddef>

#include "absl/time/time.h"
#include "common/clock.h"

namespace netvigil::agent {

class BacklogPacer {
 public:
  // `bytes_per_second` 0 turns pacing off. `clock` is not owned.
  BacklogPacer(size_t bytes_per_second, absl::Duration fresh_for, Clock& clock);

  // Waits (on the clock) until `bytes` of a result produced at
  // `produced_at` may be sent.
  void Pace(size_t bytes, absl::Time produced_at);

 private:
  const double rate_;
  const absl::Duration fresh_for_;
  Clock& clock_;
  double tokens_;
  absl::Time last_;
};

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_BACKLOG_PACER_H_
