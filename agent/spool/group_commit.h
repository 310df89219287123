// Group commit: callers that append at the same time share one transaction
// and so one fsync. Each caller queues its results; whichever finds no
// commit running leads, hands everything queued (up to a limit) to the
// writer in one call, and gives each caller its slice of the numbers, or the
// writer's error. Alone, a caller just commits. Thread-safe.
#ifndef NETVIGIL_AGENT_SPOOL_GROUP_COMMIT_H_
#define NETVIGIL_AGENT_SPOOL_GROUP_COMMIT_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::agent::spool {

class GroupCommit {
 public:
  // Stores all of `results` in one transaction and returns their numbers in
  // order, or fails for all of them. Called by one thread at a time.
  using Writer = std::function<absl::StatusOr<std::vector<uint64_t>>(
      std::vector<v1::Result> results)>;

  // At most `max_results` results share a transaction (a single caller's
  // batch larger than that goes alone).
  GroupCommit(Writer writer, size_t max_results)
      : writer_(std::move(writer)), max_results_(max_results) {}

  absl::StatusOr<std::vector<uint64_t>> Commit(std::vector<v1::Result> results)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Callers queued behind the running commit (for tests and metrics).
  size_t waiting() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    return queue_.size();
  }

 private:
  // One caller's results waiting for a group commit.
  struct Request {
    std::vector<v1::Result> results;
    absl::StatusOr<std::vector<uint64_t>> outcome;
    bool done = false;
  };

  const Writer writer_;
  const size_t max_results_;
  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::deque<Request*> queue_ ABSL_GUARDED_BY(mu_);
  bool committing_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace netvigil::agent::spool

#endif  // NETVIGIL_AGENT_SPOOL_GROUP_COMMIT_H_
