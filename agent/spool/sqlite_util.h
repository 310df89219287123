// Small SQLite helpers the spool's parts share: a SQLite result code as an
// absl::Status (with the VFS's account of the file call that failed), a row
// of the results table as RowColumns, and a statement reset on scope exit.
// Thread-compatible.
#ifndef NETVIGIL_AGENT_SPOOL_SQLITE_UTIL_H_
#define NETVIGIL_AGENT_SPOOL_SQLITE_UTIL_H_

#include <sqlite3.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "agent/spool/row_format.h"
#include "agent/spool/sqlite_vfs.h"

namespace netvigil::agent::spool {

// "spool <what>: <sqlite's words> (<its message>) [<file call>]". Full disk
// is ResourceExhausted, a lock held elsewhere Unavailable, damage DataLoss,
// an unopenable file PermissionDenied. `vfs` may be null.
absl::Status SqliteStatus(sqlite3* db, int rc, absl::string_view what,
                          SqliteVfs* vfs);

// The columns of the current row of a statement selecting
// seq, produced_at_us, is_gap, size, checksum, body (in that order). The
// body is valid until the statement moves on.
RowColumns ColumnsOf(sqlite3_stmt* st, int first_column = 0);

// Resets a cached statement when the scope ends, so it holds no read lock.
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* st) : st_(st) {}
  ~ResetOnExit() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  sqlite3_stmt* st_;
};

}  // namespace netvigil::agent::spool

#endif  // NETVIGIL_AGENT_SPOOL_SQLITE_UTIL_H_
