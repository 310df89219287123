// The Outbox backed by the durable Spool, plus the wake-up the link waits
// on when there is nothing to send. Thread-safe.
#ifndef NETVIGIL_AGENT_SPOOL_OUTBOX_H_
#define NETVIGIL_AGENT_SPOOL_OUTBOX_H_

#include <memory>

#include "absl/synchronization/mutex.h"
#include "agent/outbox.h"
#include "agent/spool.h"
#include "common/monotonic_wait.h"

namespace netvigil::agent {

class SpoolOutbox final : public Outbox {
 public:
  explicit SpoolOutbox(std::unique_ptr<Spool> spool)
      : spool_(std::move(spool)) {}

  absl::StatusOr<uint64_t> Add(v1::Result result) override;
  absl::StatusOr<std::vector<v1::Result>> ReadAfter(uint64_t after,
                                                    size_t max_count,
                                                    size_t max_bytes) override;
  absl::Status AckThrough(uint64_t seq) override;
  void WaitForResultsAfter(uint64_t after, absl::Duration timeout) override;
  absl::Status AdvanceNextSeqPast(uint64_t seq) override;
  uint64_t next_seq() override { return spool_->next_seq(); }
  uint64_t pending() override { return spool_->pending(); }
  uint64_t dropped_total() override { return spool_->dropped_total(); }

  Spool& spool() { return *spool_; }

 private:
  std::unique_ptr<Spool> spool_;
  absl::Mutex mu_;
  MonotonicCondVar added_;  // a monotonic wait: common/monotonic_wait.h
  uint64_t last_added_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_SPOOL_OUTBOX_H_
