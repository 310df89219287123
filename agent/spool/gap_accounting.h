// Gap accounting: the v1::Gap records that say which sequence numbers the
// spool could not keep, and why (the reasons are described in
// agent/spool.h). Pure functions on protos; thread-safe.
#ifndef NETVIGIL_AGENT_SPOOL_GAP_ACCOUNTING_H_
#define NETVIGIL_AGENT_SPOOL_GAP_ACCOUNTING_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/time/time.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::agent::spool {

inline constexpr char kReasonOverCap[] = "spool_over_cap";
inline constexpr char kReasonWriteFailed[] = "spool_write_failed";
inline constexpr char kReasonCorruptRow[] = "corrupt_row";
inline constexpr char kReasonDamaged[] = "spool_damaged";
inline constexpr char kReasonMissing[] = "spool_missing";

// A gap of `count` results in [first_seq, last_seq], produced between the
// two times.
v1::Gap MakeGap(uint64_t first_seq, uint64_t last_seq, uint64_t count,
                absl::Time first_produced, absl::Time last_produced,
                const char* reason);

// Widens `into` to cover `add` and adds its count; takes `add`'s reason.
// An empty `into` (no count, no first_seq) becomes `add`.
void MergeGap(const v1::Gap& add, v1::Gap* into);

// The results of one failed write: numbered from `first_seq` in order (no
// caller saw those numbers), so the gap says exactly which are missing.
v1::Gap WriteFailedGap(uint64_t first_seq,
                       const std::vector<v1::Result>& results);

// Rows found damaged: `seqs` and their stored produced_at times (same
// length, at least one), of which `deleted` were really removed.
v1::Gap CorruptRowGap(const std::vector<uint64_t>& seqs,
                      const std::vector<absl::Time>& times, uint64_t deleted);

// At open, after damage (`reason`): numbers below `floor` (the side file's
// ceiling, or next_seq when higher) may have been handed out and lost.
// `newest_only` (a cut WAL) loses only numbers from `next_seq`; otherwise
// anything after `acked_through` may be lost, less the `rows` still held.
// nullopt when nothing can be missing.
struct RecoveryInput {
  uint64_t next_seq = 1;
  uint64_t acked_through = 0;
  uint64_t rows = 0;
  uint64_t ceiling = 0;
  bool newest_only = false;
};
std::optional<v1::Gap> RecoveryGap(const RecoveryInput& in, absl::Time now,
                                   const char* reason);

}  // namespace netvigil::agent::spool

#endif  // NETVIGIL_AGENT_SPOOL_GAP_ACCOUNTING_H_
