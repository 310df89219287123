// Where the agent's numbered results wait until the collector has committed
// them: the link reads from it and acknowledges into it. The durable
// implementation is the SQLite spool (agent/spool.h). Implementations are
// thread-safe.
#ifndef NETVIGIL_AGENT_OUTBOX_H_
#define NETVIGIL_AGENT_OUTBOX_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::agent {

class Outbox {
 public:
  virtual ~Outbox() = default;
  // Gives `result` the next sequence number and keeps it until acknowledged.
  virtual absl::StatusOr<uint64_t> Add(v1::Result result) = 0;
  // Results with seq > after, in order.
  virtual absl::StatusOr<std::vector<v1::Result>> ReadAfter(
      uint64_t after, size_t max_count, size_t max_bytes) = 0;
  // Every result with seq <= `seq` is committed at the collector.
  virtual absl::Status AckThrough(uint64_t seq) = 0;
  // Blocks until a result with seq > after may exist, or `timeout` passes.
  virtual void WaitForResultsAfter(uint64_t after, absl::Duration timeout) = 0;
  // The collector has committed up to `seq` but this outbox would number
  // below it (a spool lost with its disk): move the numbering past it, so a
  // new result is never mistaken for a resend.
  virtual absl::Status AdvanceNextSeqPast(uint64_t seq) = 0;
  virtual uint64_t next_seq() = 0;
  virtual uint64_t pending() = 0;
  virtual uint64_t dropped_total() = 0;
};

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_OUTBOX_H_
