#include "agent/spool/gap_accounting.h"

#include <algorithm>

#include "agent/spool/row_format.h"
#include "common/proto_time.h"

namespace netvigil::agent::spool {

v1::Gap MakeGap(uint64_t first_seq, uint64_t last_seq, uint64_t count,
                absl::Time first_produced, absl::Time last_produced,
                const char* reason) {
  v1::Gap gap;
  gap.set_first_seq(first_seq);
  gap.set_last_seq(last_seq);
  gap.set_count(count);
  *gap.mutable_first_produced_at() = MicrosTimestamp(first_produced);
  *gap.mutable_last_produced_at() = MicrosTimestamp(last_produced);
  gap.set_reason(reason);
  return gap;
}

void MergeGap(const v1::Gap& add, v1::Gap* into) {
  const bool empty = into->count() == 0 && into->first_seq() == 0;
  into->set_first_seq(empty ? add.first_seq()
                            : std::min(into->first_seq(), add.first_seq()));
  into->set_last_seq(std::max(into->last_seq(), add.last_seq()));
  into->set_count(into->count() + add.count());
  if (empty || FromProtoTime(add.first_produced_at()) <
                   FromProtoTime(into->first_produced_at())) {
    *into->mutable_first_produced_at() = add.first_produced_at();
  }
  if (empty || FromProtoTime(add.last_produced_at()) >
                   FromProtoTime(into->last_produced_at())) {
    *into->mutable_last_produced_at() = add.last_produced_at();
  }
  into->set_reason(add.reason());
}

v1::Gap WriteFailedGap(uint64_t first_seq,
                       const std::vector<v1::Result>& results) {
  absl::Time t_first = absl::InfiniteFuture(), t_last = absl::InfinitePast();
  for (const v1::Result& r : results) {
    t_first = std::min(t_first, FromProtoTime(r.produced_at()));
    t_last = std::max(t_last, FromProtoTime(r.produced_at()));
  }
  const uint64_t n = results.size();
  return MakeGap(first_seq, first_seq + n - 1, n, t_first, t_last,
                 kReasonWriteFailed);
}

v1::Gap CorruptRowGap(const std::vector<uint64_t>& seqs,
                      const std::vector<absl::Time>& times, uint64_t deleted) {
  return MakeGap(*std::min_element(seqs.begin(), seqs.end()),
                 *std::max_element(seqs.begin(), seqs.end()), deleted,
                 *std::min_element(times.begin(), times.end()),
                 *std::max_element(times.begin(), times.end()),
                 kReasonCorruptRow);
}

std::optional<v1::Gap> RecoveryGap(const RecoveryInput& in, absl::Time now,
                                   const char* reason) {
  const uint64_t floor = std::max(in.next_seq, in.ceiling);
  const uint64_t first = in.newest_only ? in.next_seq : in.acked_through + 1;
  if (floor <= first) return std::nullopt;
  const uint64_t span = floor - first;
  // Numbers still held are not missing; the rest is an upper bound (up to a
  // ceiling step of them were never used).
  const uint64_t count =
      in.newest_only ? span : (span > in.rows ? span - in.rows : 0);
  if (count == 0) return std::nullopt;
  return MakeGap(first, floor - 1, count, now, now, reason);
}

}  // namespace netvigil::agent::spool
