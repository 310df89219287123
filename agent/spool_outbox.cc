#include "agent/spool_outbox.h"

#include "absl/strings/str_cat.h"

namespace netvigil::agent {

absl::StatusOr<uint64_t> SpoolOutbox::Add(v1::Result result) {
  absl::StatusOr<uint64_t> seq = spool_->Append(std::move(result));
  if (seq.ok()) {
    absl::MutexLock l(&mu_);
    last_added_ = std::max(last_added_, *seq);
    added_.NotifyAll();
  }
  return seq;
}

absl::StatusOr<std::vector<v1::Result>> SpoolOutbox::ReadAfter(
    uint64_t after, size_t max_count, size_t max_bytes) {
  return spool_->ReadAfter(after, max_count, max_bytes);
}

absl::Status SpoolOutbox::AckThrough(uint64_t seq) {
  if (seq == 0) return absl::OkStatus();
  if (seq >= spool_->next_seq()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "acknowledgement for ", seq, " but the spool has numbered only up to ",
        spool_->next_seq() - 1));
  }
  return spool_->AckThrough(seq);
}

void SpoolOutbox::WaitForResultsAfter(uint64_t after, absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  added_.WaitFor(mu_, timeout, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return last_added_ > after;
  });
}

absl::Status SpoolOutbox::AdvanceNextSeqPast(uint64_t seq) {
  return spool_->AdvanceNextSeqPast(seq);
}

}  // namespace netvigil::agent
