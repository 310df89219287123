#include "agent/spool.h"

#include <sqlite3.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/spool/gap_accounting.h"
#include "agent/spool/posix_file_system.h"
#include "agent/spool/row_format.h"
#include "agent/spool/salvage.h"
#include "agent/spool/sqlite_util.h"
#include "agent/spool/wal_header.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace netvigil::agent {
namespace {

using spool::ColumnsOf;
using spool::DecodeRow;
using spool::EncodeRow;
using spool::ResetOnExit;
using spool::RowColumns;

// Room kept for the gap result that a drop adds.
constexpr uint64_t kGapSlack = 512;
// At most this many results share one group-commit transaction.
constexpr size_t kMaxGroupResults = 2000;

constexpr char kSchema[] =
    "CREATE TABLE IF NOT EXISTS results("
    " seq INTEGER PRIMARY KEY,"
    " produced_at_us INTEGER NOT NULL,"
    " is_gap INTEGER NOT NULL,"
    " size INTEGER NOT NULL,"
    " checksum INTEGER NOT NULL,"
    " body BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS meta("
    " key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;";
constexpr char kInsert[] =
    "INSERT INTO results(seq, produced_at_us, is_gap, size, checksum, body)"
    " VALUES(?, ?, ?, ?, ?, ?)";
constexpr char kScanAll[] =
    "SELECT seq, produced_at_us, is_gap, size, checksum, body FROM results"
    " WHERE seq > ? ORDER BY seq";
constexpr char kReadAfter[] =
    "SELECT seq, produced_at_us, is_gap, size, checksum, body FROM results"
    " WHERE seq > ? ORDER BY seq LIMIT ?";
constexpr char kOldest[] =
    "SELECT seq, size, produced_at_us FROM results WHERE is_gap = 0"
    " ORDER BY seq";
constexpr char kDeleteOldest[] =
    "DELETE FROM results WHERE is_gap = 0 AND seq <= ?";
constexpr char kUpdateGap[] =
    "UPDATE results SET size = ?, checksum = ?, body = ? WHERE seq = ?";
constexpr char kSumThrough[] =
    "SELECT count(*), coalesce(sum(size), 0) FROM results WHERE seq <= ?";
constexpr char kDeleteThrough[] = "DELETE FROM results WHERE seq <= ?";
constexpr char kDeleteOne[] = "DELETE FROM results WHERE seq = ?";
constexpr char kWriteMeta[] =
    "INSERT OR REPLACE INTO meta(key, value) VALUES"
    " ('next_seq', ?), ('acked_through', ?), ('dropped_total', ?)";
constexpr char kReadMeta[] = "SELECT key, value FROM meta";

}  // namespace

Spool::Spool(const Options& options, Clock& clock, spool::FileSystem& fs)
    : options_(options),
      clock_(clock),
      fs_(fs),
      group_commit_(
          [this](std::vector<v1::Result> results) {
            absl::MutexLock l(&mu_);
            return AppendLocked(std::move(results));
          },
          kMaxGroupResults),
      ceiling_(fs, options.path + ".seq") {}

Spool::~Spool() {
  absl::MutexLock l(&mu_);
  CloseDb();
}

absl::StatusOr<std::unique_ptr<Spool>> Spool::Open(const Options& options,
                                                   Clock& clock) {
  if (options.path.empty()) {
    return absl::InvalidArgumentError("spool path is empty");
  }
  if (options.max_bytes < 4096) {
    return absl::InvalidArgumentError("spool max_bytes below 4096");
  }
  spool::FileSystem& fs =
      options.fs != nullptr ? *options.fs : spool::PosixFileSystem();
  std::unique_ptr<Spool> spool(new Spool(options, clock, fs));
  NV_ASSIGN_OR_RETURN(spool->vfs_, spool::SqliteVfs::Register(fs));
  absl::MutexLock l(&spool->mu_);
  NV_RETURN_IF_ERROR(spool->Init());
  return spool;
}

void Spool::CloseDb() {
  for (auto& [sql, st] : stmts_) sqlite3_finalize(st);
  stmts_.clear();
  if (db_ != nullptr) sqlite3_close_v2(db_);
  db_ = nullptr;
}

absl::Status Spool::SqlError(int rc, absl::string_view what) {
  return spool::SqliteStatus(db_, rc, what, vfs_.get());
}

absl::Status Spool::Exec(const char* sql) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqlError(rc, sql);
  return absl::OkStatus();
}

absl::StatusOr<sqlite3_stmt*> Spool::Stmt(const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  sqlite3_stmt* st = nullptr;
  int rc =
      sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr);
  if (rc != SQLITE_OK) return SqlError(rc, "prepare");
  stmts_.emplace(sql, st);
  return st;
}

absl::Status Spool::OpenDb(const std::string& path) {
  CloseDb();
  // The spool holds process lists and file paths: the agent's user only.
  // The file system creates every file 0600 and tightens files an older
  // agent left 0644 when it opens them (spool/posix_file_system.h); the
  // side file is opened here for that reason alone.
  if (auto f = fs_.Open(path + ".seq", spool::FileSystem::Mode::kRead);
      !f.ok() && !absl::IsNotFound(f.status())) {
    spdlog::warn("event=spool_seq_file_unreadable path={}.seq error=\"{}\"",
                 path, std::string(f.status().message()));
  }
  int rc = sqlite3_open_v2(
      path.c_str(), &db_,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      vfs_->name());
  if (rc != SQLITE_OK) {
    absl::Status st = SqlError(rc, "open " + path);
    CloseDb();
    return st;
  }
  sqlite3_extended_result_codes(db_, 1);
  // Exclusive locking before WAL: no -shm file, and a second agent on the
  // same spool fails at open instead of interleaving. synchronous=FULL makes
  // every COMMIT fsync the WAL, so an acknowledged Append survives power loss
  // (NORMAL would only survive a process crash). Exclusive locking is also
  // what lets WAL run without shared memory, which the VFS does not offer;
  // temp_store=MEMORY keeps SQLite from asking it for temporary files.
  NV_RETURN_IF_ERROR(Exec("PRAGMA locking_mode=EXCLUSIVE"));
  NV_RETURN_IF_ERROR(Exec("PRAGMA temp_store=MEMORY"));
  sqlite3_stmt* st = nullptr;
  rc = sqlite3_prepare_v2(db_, "PRAGMA journal_mode=WAL", -1, &st, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  std::string mode;
  if (rc == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(st, 0);
    mode = t == nullptr ? "" : reinterpret_cast<const char*>(t);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_OK) return SqlError(rc, "journal_mode");
  if (mode != "wal") {
    return absl::InternalError(
        absl::StrCat("spool could not enter WAL mode, got '", mode, "'"));
  }
  NV_RETURN_IF_ERROR(Exec("PRAGMA synchronous=FULL"));
  NV_RETURN_IF_ERROR(Exec("PRAGMA journal_size_limit=67108864"));
  return absl::OkStatus();
}

absl::Status Spool::CheckAndLoad(std::string* damage) {
  // quick_check walks every page (it skips only index-vs-table checks).
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db_, "PRAGMA quick_check", -1, &st, nullptr);
  std::string verdict;
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      const unsigned char* t = sqlite3_column_text(st, 0);
      verdict = t == nullptr ? "" : reinterpret_cast<const char*>(t);
      rc = SQLITE_OK;
    }
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_OK) return SqlError(rc, "quick_check");
  if (verdict != "ok") {
    *damage = absl::StrCat("quick_check: ", verdict.substr(0, 200));
    return absl::DataLossError(*damage);
  }
  NV_RETURN_IF_ERROR(Exec(kSchema));

  State s;
  uint64_t meta_next = 0;
  {
    NV_ASSIGN_OR_RETURN(sqlite3_stmt * m, Stmt(kReadMeta));
    ResetOnExit reset(m);
    while ((rc = sqlite3_step(m)) == SQLITE_ROW) {
      std::string key =
          reinterpret_cast<const char*>(sqlite3_column_text(m, 0));
      uint64_t v = static_cast<uint64_t>(sqlite3_column_int64(m, 1));
      if (key == "next_seq") meta_next = v;
      if (key == "acked_through") s.acked_through = v;
      if (key == "dropped_total") s.dropped_total = v;
    }
    if (rc != SQLITE_DONE) return SqlError(rc, "read meta");
  }

  uint64_t max_seq = 0;
  std::vector<uint64_t> bad;
  std::vector<absl::Time> bad_times;
  {
    NV_ASSIGN_OR_RETURN(sqlite3_stmt * scan, Stmt(kScanAll));
    ResetOnExit reset(scan);
    sqlite3_bind_int64(scan, 1, 0);
    v1::Result parsed;
    while ((rc = sqlite3_step(scan)) == SQLITE_ROW) {
      RowColumns row = ColumnsOf(scan);
      max_seq = std::max(max_seq, row.seq);
      ++s.rows;
      s.bytes += row.body.size();
      if (!DecodeRow(row, &parsed)) {
        bad.push_back(row.seq);
        bad_times.push_back(absl::FromUnixMicros(row.produced_at_us));
      }
    }
    if (rc != SQLITE_DONE) {
      *damage = absl::StrCat("scan: ", sqlite3_errstr(rc));
      return SqlError(rc, "scan");
    }
  }
  s.next_seq = std::max({meta_next, max_seq + 1, uint64_t{1}});
  state_ = s;
  // A previous process may have sent any row that is here now.
  handed_out_high_ = max_seq;
  if (!bad.empty()) {
    spdlog::warn("event=spool_corrupt_rows path={} rows={} first_seq={}",
                 options_.path, bad.size(), bad.front());
    NV_RETURN_IF_ERROR(
        WriteTxn([&](State& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return DeleteBadRows(t, bad, bad_times);
        }));
  }
  return absl::OkStatus();
}

absl::Status Spool::Init() {
  const std::string& path = options_.path;
  const std::string wal = path + "-wal";
  ceiling_.Load();
  NV_ASSIGN_OR_RETURN(const bool existed, fs_.Exists(path));

  const char* gap_reason = nullptr;
  // A cut WAL can only have lost its newest transactions; a file set aside or
  // missing may have lost anything not acknowledged.
  bool newest_only = false;
  if (existed) {
    if (std::optional<std::string> torn = spool::WalLooksTorn(fs_, wal)) {
      spdlog::warn("event=spool_wal_torn path={} detail=\"{}\"", wal, *torn);
      gap_reason = spool::kReasonDamaged;
      newest_only = true;
    }
  }

  std::string damage;
  absl::Status st = OpenDb(path);
  if (st.ok()) st = CheckAndLoad(&damage);
  if (!st.ok()) {
    // Not damage: a lock held by another agent, or a folder we cannot write.
    if (!existed || absl::IsUnavailable(st) || absl::IsPermissionDenied(st) ||
        absl::IsResourceExhausted(st)) {
      CloseDb();
      return st;
    }
    if (damage.empty()) damage = std::string(st.message());
    NV_RETURN_IF_ERROR(Recreate(damage));
    gap_reason = spool::kReasonDamaged;
    newest_only = false;
  } else if (!existed && ceiling_.value() > 0) {
    spdlog::warn("event=spool_missing path={} seq_ceiling={}", path,
                 ceiling_.value());
    gap_reason = spool::kReasonMissing;
  }

  // Start every run with an empty WAL: a torn tail left by a crash is not
  // mistaken for damage at the next start.
  NV_RETURN_IF_ERROR(Exec("PRAGMA wal_checkpoint(TRUNCATE)"));

  if (gap_reason != nullptr) {
    // Numbers up to the ceiling may have been handed out and lost: restart
    // above them, and say which ones may be missing.
    spool::RecoveryInput in;
    in.next_seq = state_.next_seq;
    in.acked_through = state_.acked_through;
    in.rows = state_.rows;
    in.ceiling = ceiling_.value();
    in.newest_only = newest_only;
    if (std::optional<v1::Gap> gap =
            spool::RecoveryGap(in, clock_.Now(), gap_reason)) {
      NV_RETURN_IF_ERROR(
          WriteTxn([&](State& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
            s.next_seq = gap->last_seq() + 1;
            s.meta_dirty = true;
            return AddGap(s, *gap);
          }));
      // The count is an upper bound; it is not added to dropped_total.
      spdlog::warn(
          "event=spool_recovery_gap path={} reason={} first_seq={} "
          "last_seq={} up_to={}",
          path, gap_reason, gap->first_seq(), gap->last_seq(), gap->count());
    }
  }
  NV_RETURN_IF_ERROR(ceiling_.Ensure(state_.next_seq));
  spdlog::info(
      "event=spool_open path={} next_seq={} pending={} bytes={} "
      "acked_through={} dropped_total={}",
      path, state_.next_seq, state_.rows, state_.bytes, state_.acked_through,
      state_.dropped_total);
  return absl::OkStatus();
}

absl::Status Spool::Recreate(const std::string& damage) {
  CloseDb();
  const std::string& path = options_.path;
  std::string aside = absl::StrCat(
      path, ".corrupt-",
      absl::FormatTime("%Y%m%dT%H%M%SZ", clock_.Now(), absl::UTCTimeZone()));
  auto taken = [&](const std::string& p) {
    return fs_.Exists(p).value_or(true);
  };
  for (int i = 1; taken(aside) || taken(aside + "-wal"); ++i) {
    if (i > 1000) return absl::InternalError("spool: no free set-aside name");
    aside = absl::StrCat(aside.substr(0, aside.find_last_of('Z') + 1), "-", i);
  }
  auto set_aside = [&](const std::string& from, const std::string& to) {
    absl::Status st = fs_.Rename(from, to);
    if (st.ok()) return st;
    return absl::Status(st.code(),
                        absl::StrCat("spool set aside: ", st.message()));
  };
  NV_RETURN_IF_ERROR(set_aside(path, aside));
  NV_ASSIGN_OR_RETURN(const bool has_wal, fs_.Exists(path + "-wal"));
  if (has_wal) NV_RETURN_IF_ERROR(set_aside(path + "-wal", aside + "-wal"));
  // An older SQLite's shared-memory index, if any: rebuilt from the WAL.
  fs_.Unlink(path + "-shm").IgnoreError();
  spdlog::warn("event=spool_corrupt path={} reason=\"{}\" set_aside={}", path,
               damage, aside);

  std::string ignored;
  NV_RETURN_IF_ERROR(OpenDb(path));
  NV_RETURN_IF_ERROR(CheckAndLoad(&ignored));
  return Salvage(aside);
}

absl::Status Spool::Salvage(const std::string& aside) {
  State s = state_;
  NV_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  spool::SalvageReport report;
  absl::Status status = spool::SalvageRows(
      *vfs_, aside,
      [&](const v1::Result& r) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return InsertRow(s, r, r.has_gap());  // mu_ is held by Salvage
      },
      &report);
  if (!report.opened) {
    spdlog::warn("event=spool_salvage_failed file={} error=\"{}\"", aside,
                 report.open_error);
  }
  s.acked_through = std::max(s.acked_through, report.acked_through);
  s.dropped_total = std::max(s.dropped_total, report.dropped_total);
  s.next_seq = std::max({s.next_seq, report.meta_next_seq, report.max_seq + 1});
  s.meta_dirty = true;
  if (status.ok()) status = WriteMeta(s);
  if (status.ok()) status = Exec("COMMIT");
  if (!status.ok()) {
    if (!sqlite3_get_autocommit(db_)) Exec("ROLLBACK").IgnoreError();
    return status;
  }
  state_ = s;
  handed_out_high_ = std::max(handed_out_high_, report.max_seq);
  spdlog::warn(
      "event=spool_salvaged file={} rows={} bad_rows={} read_errors={} "
      "next_seq={} acked_through={}",
      aside, report.salvaged, report.bad_rows, report.read_errors, s.next_seq,
      s.acked_through);
  return absl::OkStatus();
}

template <typename Body>
absl::Status Spool::WriteTxn(Body body) {
  State s = state_;
  s.meta_dirty = false;
  NV_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  absl::Status status;
  if (pending_loss_.has_value()) {
    status = AddGap(s, *pending_loss_);
    s.meta_dirty = true;
  }
  if (status.ok()) status = body(s);
  if (status.ok() && s.meta_dirty) status = WriteMeta(s);
  // The side file first: a number must never be committed above it.
  if (status.ok()) status = ceiling_.Ensure(s.next_seq);
  if (status.ok()) status = Exec("COMMIT");
  if (!status.ok()) {
    if (!sqlite3_get_autocommit(db_)) Exec("ROLLBACK").IgnoreError();
    return status;
  }
  state_ = std::move(s);
  if (pending_loss_.has_value()) {
    spdlog::info(
        "event=spool_write_recovered path={} lost={} first_seq={} last_seq={}",
        options_.path, pending_loss_->count(), pending_loss_->first_seq(),
        pending_loss_->last_seq());
    pending_loss_.reset();
  }
  return absl::OkStatus();
}

absl::Status Spool::InsertRow(State& s, const v1::Result& result, bool is_gap) {
  std::string body;
  const RowColumns row = EncodeRow(result, is_gap, &body);
  NV_ASSIGN_OR_RETURN(sqlite3_stmt * st, Stmt(kInsert));
  ResetOnExit reset(st);
  sqlite3_bind_int64(st, 1, static_cast<int64_t>(row.seq));
  sqlite3_bind_int64(st, 2, row.produced_at_us);
  sqlite3_bind_int(st, 3, row.is_gap ? 1 : 0);
  sqlite3_bind_int64(st, 4, static_cast<int64_t>(row.size));
  sqlite3_bind_int64(st, 5, static_cast<int64_t>(row.checksum));
  sqlite3_bind_blob(st, 6, row.body.data(), static_cast<int>(row.body.size()),
                    SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) return SqlError(rc, "insert");
  ++s.rows;
  s.bytes += body.size();
  return absl::OkStatus();
}

absl::Status Spool::AddGap(State& s, const v1::Gap& gap) {
  v1::Result r;
  *r.mutable_produced_at() = spool::MicrosTimestamp(clock_.Now());
  s.meta_dirty = true;
  // Grow the newest gap while no one can have seen it (see State).
  if (s.open_gap_seq > handed_out_high_ &&
      s.open_gap.reason() == gap.reason()) {
    v1::Gap merged = s.open_gap;
    spool::MergeGap(gap, &merged);
    r.set_seq(s.open_gap_seq);
    *r.mutable_gap() = merged;
    std::string body = r.SerializeAsString();
    NV_ASSIGN_OR_RETURN(sqlite3_stmt * st, Stmt(kUpdateGap));
    ResetOnExit reset(st);
    sqlite3_bind_int64(st, 1, static_cast<int64_t>(body.size()));
    sqlite3_bind_int64(st, 2, static_cast<int64_t>(spool::Checksum(body)));
    sqlite3_bind_blob(st, 3, body.data(), static_cast<int>(body.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, static_cast<int64_t>(s.open_gap_seq));
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) return SqlError(rc, "update gap");
    if (sqlite3_changes(db_) == 1) {
      s.bytes = s.bytes - s.open_gap_bytes + body.size();
      s.open_gap = std::move(merged);
      s.open_gap_bytes = body.size();
      return absl::OkStatus();
    }
  }
  r.set_seq(s.next_seq++);
  *r.mutable_gap() = gap;
  NV_RETURN_IF_ERROR(InsertRow(s, r, /*is_gap=*/true));
  s.open_gap_seq = r.seq();
  s.open_gap = gap;
  s.open_gap_bytes = r.ByteSizeLong();
  return absl::OkStatus();
}

absl::Status Spool::DropOldest(State& s, uint64_t need_bytes) {
  NV_ASSIGN_OR_RETURN(sqlite3_stmt * st, Stmt(kOldest));
  uint64_t freed = 0, count = 0, first = 0, last = 0;
  int64_t t_first = 0, t_last = 0;
  {
    ResetOnExit reset(st);
    int rc = SQLITE_DONE;
    while (freed < need_bytes && (rc = sqlite3_step(st)) == SQLITE_ROW) {
      uint64_t seq = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
      freed += static_cast<uint64_t>(sqlite3_column_int64(st, 1));
      int64_t t = sqlite3_column_int64(st, 2);
      if (count == 0) {
        first = seq;
        t_first = t_last = t;
      }
      t_first = std::min(t_first, t);
      t_last = std::max(t_last, t);
      last = seq;
      ++count;
    }
    if (freed < need_bytes && rc != SQLITE_DONE) {
      return SqlError(rc, "select oldest");
    }
  }
  if (count == 0) return absl::OkStatus();  // only gaps left: go over the cap
  NV_ASSIGN_OR_RETURN(sqlite3_stmt * del, Stmt(kDeleteOldest));
  ResetOnExit reset(del);
  sqlite3_bind_int64(del, 1, static_cast<int64_t>(last));
  int rc = sqlite3_step(del);
  if (rc != SQLITE_DONE) return SqlError(rc, "drop oldest");
  s.rows -= count;
  s.bytes -= freed;
  s.dropped_total += count;
  return AddGap(
      s, spool::MakeGap(first, last, count, absl::FromUnixMicros(t_first),
                        absl::FromUnixMicros(t_last), spool::kReasonOverCap));
}

absl::Status Spool::DeleteBadRows(State& s, const std::vector<uint64_t>& seqs,
                                  const std::vector<absl::Time>& times) {
  NV_ASSIGN_OR_RETURN(sqlite3_stmt * del, Stmt(kDeleteOne));
  uint64_t deleted = 0;
  for (uint64_t seq : seqs) {
    // The stored size may itself be damaged: count what the row really holds.
    sqlite3_stmt* len = nullptr;
    int rc = sqlite3_prepare_v2(
        db_, "SELECT length(body) FROM results WHERE seq = ?", -1, &len,
        nullptr);
    if (rc != SQLITE_OK) return SqlError(rc, "prepare");
    sqlite3_bind_int64(len, 1, static_cast<int64_t>(seq));
    uint64_t bytes = 0;
    bool found = sqlite3_step(len) == SQLITE_ROW;
    if (found) bytes = static_cast<uint64_t>(sqlite3_column_int64(len, 0));
    sqlite3_finalize(len);
    if (!found) continue;
    ResetOnExit reset(del);
    sqlite3_bind_int64(del, 1, static_cast<int64_t>(seq));
    rc = sqlite3_step(del);
    if (rc != SQLITE_DONE) return SqlError(rc, "delete bad row");
    s.rows -= 1;
    s.bytes -= std::min(s.bytes, bytes);
    ++deleted;
    if (seq == s.open_gap_seq) s.open_gap_seq = 0;
  }
  if (deleted == 0) return absl::OkStatus();
  s.dropped_total += deleted;
  return AddGap(s, spool::CorruptRowGap(seqs, times, deleted));
}

absl::Status Spool::WriteMeta(const State& s) {
  NV_ASSIGN_OR_RETURN(sqlite3_stmt * st, Stmt(kWriteMeta));
  ResetOnExit reset(st);
  sqlite3_bind_int64(st, 1, static_cast<int64_t>(s.next_seq));
  sqlite3_bind_int64(st, 2, static_cast<int64_t>(s.acked_through));
  sqlite3_bind_int64(st, 3, static_cast<int64_t>(s.dropped_total));
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) return SqlError(rc, "write meta");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint64_t>> Spool::AppendLocked(
    std::vector<v1::Result> results) {
  if (db_ == nullptr) return absl::FailedPreconditionError("spool is closed");
  absl::Time now = clock_.Now();
  uint64_t incoming = 0;
  for (v1::Result& r : results) {
    if (!r.has_produced_at())
      *r.mutable_produced_at() = spool::MicrosTimestamp(now);
    incoming += r.ByteSizeLong() + 16;  // + the seq to come
  }
  std::vector<uint64_t> seqs;
  seqs.reserve(results.size());
  absl::Status status = WriteTxn(
      [&](State& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
        seqs.clear();
        if (s.bytes + incoming + kGapSlack > options_.max_bytes) {
          NV_RETURN_IF_ERROR(DropOldest(
              s, s.bytes + incoming + kGapSlack - options_.max_bytes));
        }
        for (v1::Result& r : results) {
          r.set_seq(s.next_seq++);
          NV_RETURN_IF_ERROR(InsertRow(s, r, /*is_gap=*/false));
          seqs.push_back(r.seq());
        }
        return absl::OkStatus();
      });
  if (status.ok()) return seqs;

  // Not kept. Number the results anyway (no caller sees these numbers) so the
  // gap written once a write succeeds says exactly which ones are missing.
  const uint64_t n = results.size();
  const v1::Gap lost = spool::WriteFailedGap(state_.next_seq, results);
  const bool first_failure = !pending_loss_.has_value();
  if (first_failure) pending_loss_ = v1::Gap();
  spool::MergeGap(lost, &*pending_loss_);
  state_.next_seq += n;
  state_.dropped_total += n;
  // A full disk fails every append: log the first and then every 1000th.
  if (first_failure ||
      pending_loss_->count() / 1000 != (pending_loss_->count() - n) / 1000) {
    spdlog::warn(
        "event=spool_append_failed path={} results={} unsaved={} "
        "dropped_total={} error=\"{}\"",
        options_.path, n, pending_loss_->count(), state_.dropped_total,
        std::string(status.message()));
  }
  return status;
}

absl::Status Spool::CheckSizes(const std::vector<v1::Result>& results) const {
  for (const v1::Result& r : results) {
    uint64_t size = r.ByteSizeLong() + 32;  // + seq and produced_at to come
    if (size + kGapSlack > options_.max_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("result of ", size, " bytes exceeds the spool cap of ",
                       options_.max_bytes, " bytes"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint64_t>> Spool::Commit(
    std::vector<v1::Result> results) {
  NV_RETURN_IF_ERROR(CheckSizes(results));
  return group_commit_.Commit(std::move(results));
}

absl::StatusOr<uint64_t> Spool::Append(v1::Result result) {
  std::vector<v1::Result> one;
  one.push_back(std::move(result));
  NV_ASSIGN_OR_RETURN(std::vector<uint64_t> seqs, Commit(std::move(one)));
  return seqs.front();
}

absl::StatusOr<std::vector<uint64_t>> Spool::AppendBatch(
    std::vector<v1::Result> results) {
  if (results.empty()) return std::vector<uint64_t>();
  return Commit(std::move(results));
}

absl::StatusOr<std::vector<v1::Result>> Spool::ReadAfter(uint64_t after,
                                                         size_t max_count,
                                                         size_t max_bytes) {
  std::vector<v1::Result> out;
  if (max_count == 0) return out;
  absl::MutexLock l(&mu_);
  if (db_ == nullptr) return absl::FailedPreconditionError("spool is closed");
  std::vector<uint64_t> bad;
  std::vector<absl::Time> bad_times;
  {
    NV_ASSIGN_OR_RETURN(sqlite3_stmt * st, Stmt(kReadAfter));
    ResetOnExit reset(st);
    sqlite3_bind_int64(st, 1, static_cast<int64_t>(after));
    sqlite3_bind_int64(
        st, 2, static_cast<int64_t>(std::min<size_t>(max_count, INT64_MAX)));
    size_t total = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      RowColumns row = ColumnsOf(st);
      if (!out.empty() && total + row.body.size() > max_bytes) break;
      v1::Result r;
      if (!DecodeRow(row, &r)) {
        bad.push_back(row.seq);
        bad_times.push_back(absl::FromUnixMicros(row.produced_at_us));
        continue;
      }
      total += row.body.size();
      out.push_back(std::move(r));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE && out.empty()) {
      return SqlError(rc, "read");
    }
  }
  if (!out.empty()) {
    handed_out_high_ = std::max(handed_out_high_, out.back().seq());
  }
  if (!bad.empty()) {
    spdlog::warn("event=spool_corrupt_rows path={} rows={} first_seq={}",
                 options_.path, bad.size(), bad.front());
    absl::Status st =
        WriteTxn([&](State& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return DeleteBadRows(s, bad, bad_times);
        });
    if (!st.ok()) {
      spdlog::warn("event=spool_corrupt_rows_kept path={} error=\"{}\"",
                   options_.path, std::string(st.message()));
    }
  }
  return out;
}

absl::Status Spool::AckThrough(uint64_t seq) {
  absl::MutexLock l(&mu_);
  if (db_ == nullptr) return absl::FailedPreconditionError("spool is closed");
  if (seq >= state_.next_seq) {
    return absl::InvalidArgumentError(
        absl::StrCat("ack of seq ", seq, " but the spool has only handed out ",
                     state_.next_seq - 1));
  }
  if (seq <= state_.acked_through) return absl::OkStatus();
  return WriteTxn(
      [&](State& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
        NV_ASSIGN_OR_RETURN(sqlite3_stmt * sum, Stmt(kSumThrough));
        uint64_t rows = 0, bytes = 0;
        {
          ResetOnExit reset(sum);
          sqlite3_bind_int64(sum, 1, static_cast<int64_t>(seq));
          int rc = sqlite3_step(sum);
          if (rc != SQLITE_ROW) return SqlError(rc, "sum");
          rows = static_cast<uint64_t>(sqlite3_column_int64(sum, 0));
          bytes = static_cast<uint64_t>(sqlite3_column_int64(sum, 1));
        }
        NV_ASSIGN_OR_RETURN(sqlite3_stmt * del, Stmt(kDeleteThrough));
        ResetOnExit reset(del);
        sqlite3_bind_int64(del, 1, static_cast<int64_t>(seq));
        int rc = sqlite3_step(del);
        if (rc != SQLITE_DONE) return SqlError(rc, "ack");
        s.rows -= std::min(s.rows, rows);
        s.bytes -= std::min(s.bytes, bytes);
        s.acked_through = seq;
        if (s.open_gap_seq <= seq) s.open_gap_seq = 0;
        s.meta_dirty = true;  // next_seq must outlive the rows that showed it
        return absl::OkStatus();
      });
}

absl::Status Spool::AdvanceNextSeqPast(uint64_t seq) {
  absl::MutexLock l(&mu_);
  if (db_ == nullptr) return absl::FailedPreconditionError("spool is closed");
  if (seq < state_.next_seq) return absl::OkStatus();
  // Everything held is numbered at or below `seq` (next_seq <= seq): read it
  // all, then renumber it in one transaction.
  std::vector<v1::Result> held;
  {
    NV_ASSIGN_OR_RETURN(sqlite3_stmt * st, Stmt(kScanAll));
    ResetOnExit reset(st);
    sqlite3_bind_int64(st, 1, 0);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      RowColumns row = ColumnsOf(st);
      v1::Result r;
      if (DecodeRow(row, &r)) held.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) return SqlError(rc, "renumber scan");
  }
  absl::Status status = WriteTxn(
      [&](State& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
        NV_ASSIGN_OR_RETURN(sqlite3_stmt * del, Stmt(kDeleteThrough));
        {
          ResetOnExit reset(del);
          sqlite3_bind_int64(del, 1, static_cast<int64_t>(seq));
          int rc = sqlite3_step(del);
          if (rc != SQLITE_DONE) return SqlError(rc, "renumber delete");
        }
        s.rows = 0;
        s.bytes = 0;
        s.open_gap_seq = 0;
        s.acked_through = seq;
        s.next_seq = seq + 1;
        for (v1::Result& r : held) {
          r.set_seq(s.next_seq++);
          NV_RETURN_IF_ERROR(InsertRow(s, r, r.has_gap()));
        }
        s.meta_dirty = true;
        return absl::OkStatus();
      });
  if (status.ok()) {
    handed_out_high_ = 0;
    spdlog::warn(
        "event=spool_renumbered path={} past={} results={} next_seq={}",
        options_.path, seq, held.size(), state_.next_seq);
  }
  return status;
}

uint64_t Spool::next_seq() const {
  absl::MutexLock l(&mu_);
  return state_.next_seq;
}
uint64_t Spool::pending() const {
  absl::MutexLock l(&mu_);
  return state_.rows;
}
uint64_t Spool::pending_bytes() const {
  absl::MutexLock l(&mu_);
  return state_.bytes;
}
uint64_t Spool::dropped_total() const {
  absl::MutexLock l(&mu_);
  return state_.dropped_total;
}
uint64_t Spool::acked_through() const {
  absl::MutexLock l(&mu_);
  return state_.acked_through;
}

}  // namespace netvigil::agent
