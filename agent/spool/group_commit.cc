#include "agent/spool/group_commit.h"

#include <utility>

namespace netvigil::agent::spool {

absl::StatusOr<std::vector<uint64_t>> GroupCommit::Commit(
    std::vector<v1::Result> results) {
  Request req;
  req.results = std::move(results);
  mu_.Lock();
  queue_.push_back(&req);
  while (!req.done) {
    if (committing_) {
      cv_.Wait(&mu_);
      continue;
    }
    std::vector<Request*> group;
    size_t n = 0;
    while (
        !queue_.empty() &&
        (group.empty() || n + queue_.front()->results.size() <= max_results_)) {
      group.push_back(queue_.front());
      n += queue_.front()->results.size();
      queue_.pop_front();
    }
    committing_ = true;
    mu_.Unlock();

    std::vector<v1::Result> all;
    all.reserve(n);
    for (Request* r : group) {
      for (v1::Result& res : r->results) all.push_back(std::move(res));
    }
    absl::StatusOr<std::vector<uint64_t>> seqs = writer_(std::move(all));

    mu_.Lock();
    size_t off = 0;
    for (Request* r : group) {
      const size_t k = r->results.size();
      if (seqs.ok()) {
        r->outcome =
            std::vector<uint64_t>(seqs->begin() + off, seqs->begin() + off + k);
      } else {
        r->outcome = seqs.status();
      }
      off += k;
      r->done = true;
    }
    committing_ = false;
    cv_.SignalAll();
  }
  mu_.Unlock();
  return std::move(req.outcome);
}

}  // namespace netvigil::agent::spool
