// Salvage: reads what can still be read from a spool database that failed
// its check and was set aside: its meta counters and every whole row (size,
// checksum, encoding and seq all agree; see row_format.h), in seq order,
// seeking past spots where the b-tree cannot be read with a growing stride.
// The set-aside file is evidence: nothing is written to it. Thread-compatible.
#ifndef NETVIGIL_AGENT_SPOOL_SALVAGE_H_
#define NETVIGIL_AGENT_SPOOL_SALVAGE_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "agent/spool/sqlite_vfs.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::agent::spool {

struct SalvageReport {
  bool opened = false;  // false: the file could not be opened at all
  std::string open_error;
  // From its meta table (0 when unreadable).
  uint64_t meta_next_seq = 0;
  uint64_t acked_through = 0;
  uint64_t dropped_total = 0;
  uint64_t salvaged = 0;  // rows handed to `keep`
  uint64_t bad_rows = 0;  // rows read but not whole
  uint64_t max_seq = 0;   // highest seq handed to `keep`
  int read_errors = 0;    // spots skipped
};

// Opens the database at `path` through `vfs` (read only in effect) and calls
// `keep` for each whole row above the acknowledged point, in seq order. An
// error from `keep` stops the walk and is returned; a file that cannot be
// read is not an error (see report.opened).
absl::Status SalvageRows(
    SqliteVfs& vfs, const std::string& path,
    const std::function<absl::Status(const v1::Result&)>& keep,
    SalvageReport* report);

}  // namespace netvigil::agent::spool

#endif  // NETVIGIL_AGENT_SPOOL_SALVAGE_H_
