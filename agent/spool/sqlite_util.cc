#include "agent/spool/sqlite_util.h"

#include "absl/strings/str_cat.h"

namespace netvigil::agent::spool {

absl::Status SqliteStatus(sqlite3* db, int rc, absl::string_view what,
                          SqliteVfs* vfs) {
  std::string msg = absl::StrCat("spool ", what, ": ", sqlite3_errstr(rc));
  if (db != nullptr && sqlite3_errcode(db) == rc) {
    absl::StrAppend(&msg, " (", sqlite3_errmsg(db), ")");
  }
  if (vfs != nullptr) {
    std::string file_error = vfs->TakeLastError();
    if (!file_error.empty()) absl::StrAppend(&msg, " [", file_error, "]");
  }
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(
          absl::StrCat(msg, "; is another agent using this spool?"));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(msg);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return absl::PermissionDeniedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

RowColumns ColumnsOf(sqlite3_stmt* st, int c) {
  RowColumns r;
  r.seq = static_cast<uint64_t>(sqlite3_column_int64(st, c));
  r.produced_at_us = sqlite3_column_int64(st, c + 1);
  r.is_gap = sqlite3_column_int64(st, c + 2) != 0;
  r.size = static_cast<uint64_t>(sqlite3_column_int64(st, c + 3));
  r.checksum = static_cast<uint64_t>(sqlite3_column_int64(st, c + 4));
  const void* blob = sqlite3_column_blob(st, c + 5);
  const int n = sqlite3_column_bytes(st, c + 5);
  r.body = absl::string_view(static_cast<const char*>(blob),
                             blob == nullptr ? 0 : static_cast<size_t>(n));
  return r;
}

}  // namespace netvigil::agent::spool
