#include "agent/spool/salvage.h"

#include <sqlite3.h>

#include <algorithm>

#include "agent/spool/row_format.h"
#include "agent/spool/sqlite_util.h"

namespace netvigil::agent::spool {
namespace {

// Gives up after this many unreadable spots in a damaged file.
constexpr int kMaxSalvageErrors = 4096;

constexpr char kReadMeta[] = "SELECT key, value FROM meta";
constexpr char kScanAfter[] =
    "SELECT seq, produced_at_us, is_gap, size, checksum, body FROM results"
    " WHERE seq > ? ORDER BY seq";

}  // namespace

absl::Status SalvageRows(
    SqliteVfs& vfs, const std::string& path,
    const std::function<absl::Status(const v1::Result&)>& keep,
    SalvageReport* report) {
  *report = SalvageReport();
  FileSystem& fs = vfs.fs();
  const std::string wal = path + "-wal";
  const bool had_wal = fs.Exists(wal).value_or(true);
  sqlite3* old = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &old,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, vfs.name());
  auto close_old = [&] {
    sqlite3_close_v2(old);
    // A WAL SQLite made while reading is not evidence; one that was there is.
    if (!had_wal) fs.Unlink(wal).IgnoreError();
  };
  if (rc != SQLITE_OK) {
    report->open_error = sqlite3_errstr(rc);
    close_old();
    return absl::OkStatus();
  }
  report->opened = true;
  // The set-aside file is evidence: no checkpoint into it on close.
  sqlite3_db_config(old, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  // writable_schema lets SQLite open a file shorter than its header says
  // (a truncated spool) instead of refusing it outright; nothing is written.
  sqlite3_exec(old,
               "PRAGMA locking_mode=EXCLUSIVE; PRAGMA temp_store=MEMORY;"
               " PRAGMA writable_schema=ON",
               nullptr, nullptr, nullptr);

  // Meta first: it holds the acknowledged point and the counters.
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(old, kReadMeta, -1, &st, nullptr) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      const unsigned char* k = sqlite3_column_text(st, 0);
      const std::string key =
          k == nullptr ? "" : reinterpret_cast<const char*>(k);
      const uint64_t v = static_cast<uint64_t>(sqlite3_column_int64(st, 1));
      if (key == "next_seq") report->meta_next_seq = v;
      if (key == "acked_through") report->acked_through = v;
      if (key == "dropped_total") report->dropped_total = v;
    }
  }
  sqlite3_finalize(st);
  st = nullptr;

  // Rows: walk in seq order; where the b-tree cannot be read, seek past the
  // bad spot with a growing stride and go on.
  uint64_t after = report->acked_through;
  uint64_t stride = 1;
  absl::Status status;
  if (sqlite3_prepare_v2(old, kScanAfter, -1, &st, nullptr) == SQLITE_OK) {
    while (status.ok() && report->read_errors < kMaxSalvageErrors) {
      sqlite3_reset(st);
      sqlite3_bind_int64(st, 1, static_cast<int64_t>(after));
      v1::Result parsed;
      while (status.ok() && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const RowColumns row = ColumnsOf(st);
        after = std::max(after, row.seq);
        stride = 1;
        if (!DecodeRow(row, &parsed)) {
          ++report->bad_rows;
          continue;
        }
        status = keep(parsed);
        report->max_seq = std::max(report->max_seq, row.seq);
        ++report->salvaged;
      }
      if (rc == SQLITE_DONE || !status.ok()) break;
      ++report->read_errors;
      if (after > UINT64_MAX / 4 || stride > (uint64_t{1} << 40)) break;
      after += stride;
      stride *= 2;
    }
  }
  sqlite3_finalize(st);
  close_old();
  return status;
}

}  // namespace netvigil::agent::spool
