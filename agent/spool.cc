#include "agent/spool.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace netvigil::agent {
namespace {

// The side file's ceiling moves in steps this large: one small fsynced write
// per step, and at most this many numbers skipped after a lost spool.
constexpr uint64_t kCeilingStep = 1000;
// Room kept for the gap result that a drop adds.
constexpr uint64_t kGapSlack = 512;
// Salvage gives up after this many unreadable spots in a damaged file.
constexpr int kMaxSalvageErrors = 4096;
// At most this many results share one group-commit transaction.
constexpr size_t kMaxGroupResults = 2000;

constexpr char kReason_OverCap[] = "spool_over_cap";
constexpr char kReason_WriteFailed[] = "spool_write_failed";
constexpr char kReason_CorruptRow[] = "corrupt_row";
constexpr char kReason_Damaged[] = "spool_damaged";
constexpr char kReason_Missing[] = "spool_missing";

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

// FNV-1a, 64 bits: catches bytes flipped inside a blob, which SQLite's own
// checks (page structure only) and protobuf parsing (strings) would let by.
uint64_t Checksum(absl::string_view data) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

absl::Status SqliteStatus(sqlite3* db, int rc, absl::string_view what) {
  std::string msg = absl::StrCat("spool ", what, ": ", sqlite3_errstr(rc));
  if (db != nullptr && sqlite3_errcode(db) == rc) {
    absl::StrAppend(&msg, " (", sqlite3_errmsg(db), ")");
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

absl::Status ErrnoStatus(int err, absl::string_view what) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat("spool ", what, ": ", strerror(err)));
}

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }

void ToProto(absl::Time t, google::protobuf::Timestamp* ts) {
  int64_t us = absl::ToUnixMicros(t);
  int64_t secs = us / 1'000'000;
  int64_t rem = us % 1'000'000;
  if (rem < 0) {
    rem += 1'000'000;
    --secs;
  }
  ts->set_seconds(secs);
  ts->set_nanos(static_cast<int32_t>(rem * 1000));
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// A row as read back: checked against its checksum, its encoding and its seq.
struct Row {
  uint64_t seq = 0;
  int64_t produced_at_us = 0;
  bool is_gap = false;
  uint64_t size = 0;
  uint64_t checksum = 0;
  absl::string_view body;  // valid until the statement moves on
};

Row ReadRow(sqlite3_stmt* st) {
  Row r;
  r.seq = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
  r.produced_at_us = sqlite3_column_int64(st, 1);
  r.is_gap = sqlite3_column_int64(st, 2) != 0;
  r.size = static_cast<uint64_t>(sqlite3_column_int64(st, 3));
  r.checksum = static_cast<uint64_t>(sqlite3_column_int64(st, 4));
  const void* blob = sqlite3_column_blob(st, 5);
  int n = sqlite3_column_bytes(st, 5);
  r.body = absl::string_view(static_cast<const char*>(blob),
                             blob == nullptr ? 0 : static_cast<size_t>(n));
  return r;
}

bool ParseRow(const Row& row, v1::Result* out) {
  if (Checksum(row.body) != row.checksum || row.body.size() != row.size) {
    return false;
  }
  if (!out->ParseFromArray(row.body.data(), static_cast<int>(row.body.size())))
    return false;
  return out->seq() == row.seq;
}

// Resets a cached statement when the scope ends, so it holds no read lock.
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* st) : st_(st) {}
  ~ResetOnExit() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }

 private:
  sqlite3_stmt* st_;
};

// A torn WAL tail (its size is not a whole number of frames) means a write
// was cut short: normal after a crash mid-commit, but also what an external
// truncation looks like, which may have removed committed results.
bool WalLooksTorn(const std::string& wal_path, std::string* detail) {
  struct stat st;
  if (stat(wal_path.c_str(), &st) != 0 || st.st_size == 0) return false;
  unsigned char hdr[32];
  int fd = open(wal_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = pread(fd, hdr, sizeof(hdr), 0);
  close(fd);
  auto be32 = [&](int i) {
    return (uint32_t{hdr[i]} << 24) | (uint32_t{hdr[i + 1]} << 16) |
           (uint32_t{hdr[i + 2]} << 8) | uint32_t{hdr[i + 3]};
  };
  if (n != static_cast<ssize_t>(sizeof(hdr))) {
    *detail = absl::StrCat("wal header cut at ", st.st_size, " bytes");
    return true;
  }
  uint32_t magic = be32(0);
  uint32_t page = be32(8);
  if ((magic != 0x377f0682 && magic != 0x377f0683) || page < 512 ||
      page > 65536) {
    *detail = "wal header unreadable";
    return true;
  }
  uint64_t frame = page + 24;
  uint64_t body = static_cast<uint64_t>(st.st_size) - 32;
  if (body % frame != 0) {
    *detail = absl::StrCat("wal of ", st.st_size, " bytes ends mid-frame");
    return true;
  }
  return false;
}

uint64_t ReadCeiling(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[64];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  uint64_t v = 0;
  if (n <= 0 ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(buf, n)),
                        &v)) {
    spdlog::warn("event=spool_seq_file_unreadable path={}", path);
    return 0;
  }
  return v;
}

// Replaces the side file atomically and durably: write, fsync, rename, fsync
// the folder.
absl::Status WriteCeiling(const std::string& path, uint64_t value) {
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, "seq file open");
  fchmod(fd, 0600);  // a .tmp left by an older agent keeps its 0644
  std::string text = absl::StrCat(value, "\n");
  ssize_t n = write(fd, text.data(), text.size());
  int err =
      n == static_cast<ssize_t>(text.size()) ? 0 : (n < 0 ? errno : ENOSPC);
  if (err == 0 && fsync(fd) != 0) err = errno;
  close(fd);
  if (err == 0 && rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    unlink(tmp.c_str());
    return ErrnoStatus(err, "seq file write");
  }
  std::string dir = path.substr(0, path.find_last_of('/') + 1);
  if (dir.empty()) dir = ".";
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return absl::OkStatus();
}

void MergeGap(const v1::Gap& add, v1::Gap* into) {
  bool empty = into->count() == 0 && into->first_seq() == 0;
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

}  // namespace

Spool::Spool(const Options& options, Clock& clock)
    : options_(options), clock_(clock) {}

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
  std::unique_ptr<Spool> spool(new Spool(options, clock));
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

absl::Status Spool::Exec(const char* sql) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(db_, rc, sql);
  return absl::OkStatus();
}

absl::StatusOr<sqlite3_stmt*> Spool::Stmt(const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  sqlite3_stmt* st = nullptr;
  int rc =
      sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "prepare");
  stmts_.emplace(sql, st);
  return st;
}

absl::Status Spool::OpenDb(const std::string& path) {
  CloseDb();
  // The spool holds process lists and file paths: the agent's user only.
  // SQLite would create the file 0644 (and its -wal with the database's
  // mode), so the file is made 0600 first; files an older agent left 0644
  // are tightened.
  for (const std::string& f : {path, path + "-wal", path + ".seq"}) {
    const int fd = open(
        f.c_str(),
        O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (f == path ? O_CREAT : 0), 0600);
    if (fd < 0) continue;  // no -wal yet; SQLite's open reports the rest
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0 &&
        fchmod(fd, st.st_mode & 0700) != 0) {
      spdlog::warn("event=spool_mode_not_tightened path={} error=\"{}\"", f,
                   std::strerror(errno));
    }
    close(fd);
  }
  int rc = sqlite3_open_v2(
      path.c_str(), &db_,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    absl::Status st = SqliteStatus(db_, rc, "open " + path);
    CloseDb();
    return st;
  }
  sqlite3_extended_result_codes(db_, 1);
  // Exclusive locking before WAL: no -shm file, and a second agent on the
  // same spool fails at open instead of interleaving. synchronous=FULL makes
  // every COMMIT fsync the WAL, so an acknowledged Append survives power loss
  // (NORMAL would only survive a process crash).
  NV_RETURN_IF_ERROR(Exec("PRAGMA locking_mode=EXCLUSIVE"));
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
  if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "journal_mode");
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
  if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "quick_check");
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
    if (rc != SQLITE_DONE) return SqliteStatus(db_, rc, "read meta");
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
      Row row = ReadRow(scan);
      max_seq = std::max(max_seq, row.seq);
      ++s.rows;
      s.bytes += row.body.size();
      if (!ParseRow(row, &parsed)) {
        bad.push_back(row.seq);
        bad_times.push_back(absl::FromUnixMicros(row.produced_at_us));
      }
    }
    if (rc != SQLITE_DONE) {
      *damage = absl::StrCat("scan: ", sqlite3_errstr(rc));
      return SqliteStatus(db_, rc, "scan");
    }
  }
  s.next_seq = std::max({meta_next, max_seq + 1, uint64_t{1}});
  state_ = s;
  // A previous process may have sent any row that is here now.
  handed_out_high_ = max_seq;
  if (!bad.empty()) {
    spdlog::warn("event=spool_corrupt_rows path={} rows={} first_seq={}",
                 options_.path, bad.size(), bad.front());
    NV_RETURN_IF_ERROR(WriteTxn([&](State& t) {
      mu_.AssertHeld();  // WriteTxn holds it; clang cannot see that.
      return DeleteBadRows(t, bad, bad_times);
    }));
  }
  return absl::OkStatus();
}

absl::Status Spool::Init() {
  const std::string& path = options_.path;
  const std::string wal = path + "-wal";
  ceiling_ = ReadCeiling(path + ".seq");
  const bool existed = Exists(path);

  std::string gap_reason;
  std::string torn_detail;
  // A cut WAL can only have lost its newest transactions; a file set aside or
  // missing may have lost anything not acknowledged.
  bool newest_only = false;
  if (existed && WalLooksTorn(wal, &torn_detail)) {
    spdlog::warn("event=spool_wal_torn path={} detail=\"{}\"", wal,
                 torn_detail);
    gap_reason = kReason_Damaged;
    newest_only = true;
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
    gap_reason = kReason_Damaged;
    newest_only = false;
  } else if (!existed && ceiling_ > 0) {
    spdlog::warn("event=spool_missing path={} seq_ceiling={}", path, ceiling_);
    gap_reason = kReason_Missing;
  }

  // Start every run with an empty WAL: a torn tail left by a crash is not
  // mistaken for damage at the next start.
  NV_RETURN_IF_ERROR(Exec("PRAGMA wal_checkpoint(TRUNCATE)"));

  if (!gap_reason.empty()) {
    // Numbers up to the ceiling may have been handed out and lost: restart
    // above them, and say which ones may be missing.
    uint64_t floor = std::max(state_.next_seq, ceiling_);
    uint64_t first = newest_only ? state_.next_seq : state_.acked_through + 1;
    if (floor > first) {
      uint64_t span = floor - first;
      uint64_t count =
          newest_only ? span : (span > state_.rows ? span - state_.rows : 0);
      absl::Time now = clock_.Now();
      v1::Gap gap;
      gap.set_first_seq(first);
      gap.set_last_seq(floor - 1);
      gap.set_count(count);
      ToProto(now, gap.mutable_first_produced_at());
      ToProto(now, gap.mutable_last_produced_at());
      gap.set_reason(gap_reason);
      if (count > 0) {
        NV_RETURN_IF_ERROR(WriteTxn([&](State& s) {
          mu_.AssertHeld();  // WriteTxn holds it; clang cannot see that.
          s.next_seq = floor;
          s.meta_dirty = true;
          return AddGap(s, gap);
        }));
        // The count is an upper bound; it is not added to dropped_total.
        spdlog::warn(
            "event=spool_recovery_gap path={} reason={} first_seq={} "
            "last_seq={} up_to={}",
            path, gap_reason, first, floor - 1, count);
      }
    }
  }
  NV_RETURN_IF_ERROR(EnsureCeiling(state_.next_seq));
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
  for (int i = 1; Exists(aside) || Exists(aside + "-wal"); ++i) {
    aside = absl::StrCat(aside.substr(0, aside.find_last_of('Z') + 1), "-", i);
  }
  if (rename(path.c_str(), aside.c_str()) != 0) {
    return ErrnoStatus(errno, "set aside " + path);
  }
  if (Exists(path + "-wal") &&
      rename((path + "-wal").c_str(), (aside + "-wal").c_str()) != 0) {
    return ErrnoStatus(errno, "set aside " + path + "-wal");
  }
  unlink((path + "-shm").c_str());
  spdlog::warn("event=spool_corrupt path={} reason=\"{}\" set_aside={}", path,
               damage, aside);

  std::string ignored;
  NV_RETURN_IF_ERROR(OpenDb(path));
  NV_RETURN_IF_ERROR(CheckAndLoad(&ignored));
  return Salvage(aside);
}

absl::Status Spool::Salvage(const std::string& aside) {
  sqlite3* old = nullptr;
  const bool had_wal = Exists(aside + "-wal");
  int rc =
      sqlite3_open_v2(aside.c_str(), &old,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  auto close_old = [&] {
    sqlite3_close_v2(old);
    if (!had_wal) unlink((aside + "-wal").c_str());  // SQLite's, not evidence
  };
  if (rc != SQLITE_OK) {
    spdlog::warn("event=spool_salvage_failed file={} error=\"{}\"", aside,
                 sqlite3_errstr(rc));
    close_old();
    return absl::OkStatus();
  }
  // The set-aside file is evidence: no checkpoint into it on close.
  sqlite3_db_config(old, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  // writable_schema lets SQLite open a file shorter than its header says
  // (a truncated spool) instead of refusing it outright; nothing is written.
  sqlite3_exec(old, "PRAGMA locking_mode=EXCLUSIVE; PRAGMA writable_schema=ON",
               nullptr, nullptr, nullptr);

  // Meta first: it may hold the acknowledged point and the counters.
  uint64_t meta_next = 0;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(old, kReadMeta, -1, &st, nullptr) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      const unsigned char* k = sqlite3_column_text(st, 0);
      std::string key = k == nullptr ? "" : reinterpret_cast<const char*>(k);
      uint64_t v = static_cast<uint64_t>(sqlite3_column_int64(st, 1));
      if (key == "next_seq") meta_next = v;
      if (key == "acked_through") state_.acked_through = v;
      if (key == "dropped_total") state_.dropped_total = v;
    }
  }
  sqlite3_finalize(st);
  st = nullptr;

  // Rows: walk in seq order; where the b-tree cannot be read, seek past the
  // bad spot with a growing stride and go on.
  uint64_t after = state_.acked_through;
  uint64_t stride = 1;
  uint64_t salvaged = 0, bad = 0, max_seq = 0;
  int errors = 0;
  State s = state_;
  absl::Status status = Exec("BEGIN IMMEDIATE");
  if (sqlite3_prepare_v2(old, kScanAll, -1, &st, nullptr) == SQLITE_OK) {
    while (status.ok() && errors < kMaxSalvageErrors) {
      sqlite3_reset(st);
      sqlite3_bind_int64(st, 1, static_cast<int64_t>(after));
      v1::Result parsed;
      while (status.ok() && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        Row row = ReadRow(st);
        after = std::max(after, row.seq);
        stride = 1;
        if (!ParseRow(row, &parsed)) {
          ++bad;
          continue;
        }
        status = InsertRow(s, parsed, parsed.has_gap());
        max_seq = std::max(max_seq, row.seq);
        ++salvaged;
      }
      if (rc == SQLITE_DONE || !status.ok()) break;
      ++errors;
      if (after > UINT64_MAX / 4 || stride > (uint64_t{1} << 40)) break;
      after += stride;
      stride *= 2;
    }
  }
  sqlite3_finalize(st);
  close_old();
  s.next_seq = std::max({s.next_seq, meta_next, max_seq + 1});
  s.meta_dirty = true;
  if (status.ok()) status = WriteMeta(s);
  if (status.ok()) status = Exec("COMMIT");
  if (!status.ok()) {
    if (!sqlite3_get_autocommit(db_)) Exec("ROLLBACK").IgnoreError();
    return status;
  }
  state_ = s;
  handed_out_high_ = std::max(handed_out_high_, max_seq);
  spdlog::warn(
      "event=spool_salvaged file={} rows={} bad_rows={} read_errors={} "
      "next_seq={} acked_through={}",
      aside, salvaged, bad, errors, s.next_seq, s.acked_through);
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
  if (status.ok()) status = EnsureCeiling(s.next_seq);
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
  std::string body = result.SerializeAsString();
  NV_ASSIGN_OR_RETURN(sqlite3_stmt * st, Stmt(kInsert));
  ResetOnExit reset(st);
  sqlite3_bind_int64(st, 1, static_cast<int64_t>(result.seq()));
  sqlite3_bind_int64(st, 2, ToMicros(FromProtoTime(result.produced_at())));
  sqlite3_bind_int(st, 3, is_gap ? 1 : 0);
  sqlite3_bind_int64(st, 4, static_cast<int64_t>(body.size()));
  sqlite3_bind_int64(st, 5, static_cast<int64_t>(Checksum(body)));
  sqlite3_bind_blob(st, 6, body.data(), static_cast<int>(body.size()),
                    SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) return SqliteStatus(db_, rc, "insert");
  ++s.rows;
  s.bytes += body.size();
  return absl::OkStatus();
}

absl::Status Spool::AddGap(State& s, const v1::Gap& gap) {
  v1::Result r;
  ToProto(clock_.Now(), r.mutable_produced_at());
  s.meta_dirty = true;
  // Grow the newest gap while no one can have seen it (see State).
  if (s.open_gap_seq > handed_out_high_ &&
      s.open_gap.reason() == gap.reason()) {
    v1::Gap merged = s.open_gap;
    MergeGap(gap, &merged);
    r.set_seq(s.open_gap_seq);
    *r.mutable_gap() = merged;
    std::string body = r.SerializeAsString();
    NV_ASSIGN_OR_RETURN(sqlite3_stmt * st, Stmt(kUpdateGap));
    ResetOnExit reset(st);
    sqlite3_bind_int64(st, 1, static_cast<int64_t>(body.size()));
    sqlite3_bind_int64(st, 2, static_cast<int64_t>(Checksum(body)));
    sqlite3_bind_blob(st, 3, body.data(), static_cast<int>(body.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, static_cast<int64_t>(s.open_gap_seq));
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) return SqliteStatus(db_, rc, "update gap");
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
      return SqliteStatus(db_, rc, "select oldest");
    }
  }
  if (count == 0) return absl::OkStatus();  // only gaps left: go over the cap
  NV_ASSIGN_OR_RETURN(sqlite3_stmt * del, Stmt(kDeleteOldest));
  ResetOnExit reset(del);
  sqlite3_bind_int64(del, 1, static_cast<int64_t>(last));
  int rc = sqlite3_step(del);
  if (rc != SQLITE_DONE) return SqliteStatus(db_, rc, "drop oldest");
  s.rows -= count;
  s.bytes -= freed;
  s.dropped_total += count;
  v1::Gap gap;
  gap.set_first_seq(first);
  gap.set_last_seq(last);
  gap.set_count(count);
  ToProto(absl::FromUnixMicros(t_first), gap.mutable_first_produced_at());
  ToProto(absl::FromUnixMicros(t_last), gap.mutable_last_produced_at());
  gap.set_reason(kReason_OverCap);
  return AddGap(s, gap);
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
    if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "prepare");
    sqlite3_bind_int64(len, 1, static_cast<int64_t>(seq));
    uint64_t bytes = 0;
    bool found = sqlite3_step(len) == SQLITE_ROW;
    if (found) bytes = static_cast<uint64_t>(sqlite3_column_int64(len, 0));
    sqlite3_finalize(len);
    if (!found) continue;
    ResetOnExit reset(del);
    sqlite3_bind_int64(del, 1, static_cast<int64_t>(seq));
    rc = sqlite3_step(del);
    if (rc != SQLITE_DONE) return SqliteStatus(db_, rc, "delete bad row");
    s.rows -= 1;
    s.bytes -= std::min(s.bytes, bytes);
    ++deleted;
    if (seq == s.open_gap_seq) s.open_gap_seq = 0;
  }
  if (deleted == 0) return absl::OkStatus();
  s.dropped_total += deleted;
  v1::Gap gap;
  gap.set_first_seq(*std::min_element(seqs.begin(), seqs.end()));
  gap.set_last_seq(*std::max_element(seqs.begin(), seqs.end()));
  gap.set_count(deleted);
  ToProto(*std::min_element(times.begin(), times.end()),
          gap.mutable_first_produced_at());
  ToProto(*std::max_element(times.begin(), times.end()),
          gap.mutable_last_produced_at());
  gap.set_reason(kReason_CorruptRow);
  return AddGap(s, gap);
}

absl::Status Spool::WriteMeta(const State& s) {
  NV_ASSIGN_OR_RETURN(sqlite3_stmt * st, Stmt(kWriteMeta));
  ResetOnExit reset(st);
  sqlite3_bind_int64(st, 1, static_cast<int64_t>(s.next_seq));
  sqlite3_bind_int64(st, 2, static_cast<int64_t>(s.acked_through));
  sqlite3_bind_int64(st, 3, static_cast<int64_t>(s.dropped_total));
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) return SqliteStatus(db_, rc, "write meta");
  return absl::OkStatus();
}

absl::Status Spool::EnsureCeiling(uint64_t next_seq) {
  if (next_seq <= ceiling_) return absl::OkStatus();
  uint64_t target = next_seq + kCeilingStep;
  NV_RETURN_IF_ERROR(WriteCeiling(options_.path + ".seq", target));
  ceiling_ = target;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint64_t>> Spool::AppendLocked(
    std::vector<v1::Result> results) {
  if (db_ == nullptr) return absl::FailedPreconditionError("spool is closed");
  absl::Time now = clock_.Now();
  uint64_t incoming = 0;
  for (v1::Result& r : results) {
    if (!r.has_produced_at()) ToProto(now, r.mutable_produced_at());
    incoming += r.ByteSizeLong() + 16;  // + the seq to come
  }
  std::vector<uint64_t> seqs;
  seqs.reserve(results.size());
  absl::Status status = WriteTxn([&](State& s) -> absl::Status {
    mu_.AssertHeld();  // WriteTxn holds it; clang cannot see that.
    seqs.clear();
    if (s.bytes + incoming + kGapSlack > options_.max_bytes) {
      NV_RETURN_IF_ERROR(
          DropOldest(s, s.bytes + incoming + kGapSlack - options_.max_bytes));
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
  uint64_t n = results.size();
  v1::Gap lost;
  lost.set_first_seq(state_.next_seq);
  lost.set_last_seq(state_.next_seq + n - 1);
  lost.set_count(n);
  absl::Time t_first = absl::InfiniteFuture(), t_last = absl::InfinitePast();
  for (const v1::Result& r : results) {
    t_first = std::min(t_first, FromProtoTime(r.produced_at()));
    t_last = std::max(t_last, FromProtoTime(r.produced_at()));
  }
  ToProto(t_first, lost.mutable_first_produced_at());
  ToProto(t_last, lost.mutable_last_produced_at());
  lost.set_reason(kReason_WriteFailed);
  const bool first_failure = !pending_loss_.has_value();
  if (first_failure) pending_loss_ = v1::Gap();
  MergeGap(lost, &*pending_loss_);
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

// Group commit: concurrent callers queue their results; whichever finds no
// commit running leads, writing everything queued in one transaction (one
// fsync) and handing each caller its numbers. Alone, a caller just commits.
absl::StatusOr<std::vector<uint64_t>> Spool::Commit(
    std::vector<v1::Result> results) {
  NV_RETURN_IF_ERROR(CheckSizes(results));
  AppendRequest req;
  req.results = std::move(results);
  queue_mu_.Lock();
  queue_.push_back(&req);
  while (!req.done) {
    if (committing_) {
      queue_cv_.Wait(&queue_mu_);
      continue;
    }
    std::vector<AppendRequest*> group;
    size_t n = 0;
    while (!queue_.empty() &&
           (group.empty() ||
            n + queue_.front()->results.size() <= kMaxGroupResults)) {
      group.push_back(queue_.front());
      n += queue_.front()->results.size();
      queue_.pop_front();
    }
    committing_ = true;
    queue_mu_.Unlock();

    std::vector<v1::Result> all;
    all.reserve(n);
    for (AppendRequest* r : group) {
      for (v1::Result& res : r->results) all.push_back(std::move(res));
    }
    absl::StatusOr<std::vector<uint64_t>> seqs;
    {
      absl::MutexLock l(&mu_);
      seqs = AppendLocked(std::move(all));
    }

    queue_mu_.Lock();
    size_t off = 0;
    for (AppendRequest* r : group) {
      size_t k = r->results.size();
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
    queue_cv_.SignalAll();
  }
  queue_mu_.Unlock();
  return std::move(req.outcome);
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
      Row row = ReadRow(st);
      if (!out.empty() && total + row.body.size() > max_bytes) break;
      v1::Result r;
      if (!ParseRow(row, &r)) {
        bad.push_back(row.seq);
        bad_times.push_back(absl::FromUnixMicros(row.produced_at_us));
        continue;
      }
      total += row.body.size();
      out.push_back(std::move(r));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE && out.empty()) {
      return SqliteStatus(db_, rc, "read");
    }
  }
  if (!out.empty()) {
    handed_out_high_ = std::max(handed_out_high_, out.back().seq());
  }
  if (!bad.empty()) {
    spdlog::warn("event=spool_corrupt_rows path={} rows={} first_seq={}",
                 options_.path, bad.size(), bad.front());
    absl::Status st = WriteTxn([&](State& s) {
      mu_.AssertHeld();  // WriteTxn holds it; clang cannot see that.
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
  return WriteTxn([&](State& s) -> absl::Status {
    mu_.AssertHeld();  // WriteTxn holds it; clang cannot see that.
    NV_ASSIGN_OR_RETURN(sqlite3_stmt * sum, Stmt(kSumThrough));
    uint64_t rows = 0, bytes = 0;
    {
      ResetOnExit reset(sum);
      sqlite3_bind_int64(sum, 1, static_cast<int64_t>(seq));
      int rc = sqlite3_step(sum);
      if (rc != SQLITE_ROW) return SqliteStatus(db_, rc, "sum");
      rows = static_cast<uint64_t>(sqlite3_column_int64(sum, 0));
      bytes = static_cast<uint64_t>(sqlite3_column_int64(sum, 1));
    }
    NV_ASSIGN_OR_RETURN(sqlite3_stmt * del, Stmt(kDeleteThrough));
    ResetOnExit reset(del);
    sqlite3_bind_int64(del, 1, static_cast<int64_t>(seq));
    int rc = sqlite3_step(del);
    if (rc != SQLITE_DONE) return SqliteStatus(db_, rc, "ack");
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
      Row row = ReadRow(st);
      v1::Result r;
      if (ParseRow(row, &r)) held.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) return SqliteStatus(db_, rc, "renumber scan");
  }
  absl::Status status = WriteTxn([&](State& s) -> absl::Status {
    mu_.AssertHeld();  // WriteTxn holds it; clang cannot see that.
    NV_ASSIGN_OR_RETURN(sqlite3_stmt * del, Stmt(kDeleteThrough));
    {
      ResetOnExit reset(del);
      sqlite3_bind_int64(del, 1, static_cast<int64_t>(seq));
      int rc = sqlite3_step(del);
      if (rc != SQLITE_DONE) return SqliteStatus(db_, rc, "renumber delete");
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
