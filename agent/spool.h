// The agent's durable spool: numbers every result and keeps it on disk (SQLite
// in WAL mode, synchronous=FULL) until the collector acknowledges it.
// Thread-safe: every public method may be called from any thread.
//
// Its parts, each in agent/spool/: the row format and checksum
// (row_format.h), the WAL-header check (wal_header.h), salvage of a damaged
// file (salvage.h), group commit (group_commit.h), the sequence ceiling
// (seq_ceiling.h) and gap accounting (gap_accounting.h). Every file-system
// call, SQLite's included (sqlite_vfs.h), goes through a spool::FileSystem
// (file_system.h), so tests fail writes, fsyncs and renames on purpose.
//
// Sequence numbers. Per agent, from 1, never reused, independent of boots:
// the highest number is kept in the database (the newest row, and a meta row
// once rows are deleted) and, as a reserved ceiling, in a side file
// `<path>.seq`, so a spool that is lost or corrupt restarts above every number
// ever handed out.
//
// Gaps. Whatever the spool could not keep is reported in a gap result (a
// v1::Result whose payload is v1::Gap). A gap result always takes a fresh
// sequence number of its own (never one that may already have been sent), and
// describes the lost numbers as the range [first_seq, last_seq] plus `count`,
// the number of results lost inside it:
//   - reason "spool_over_cap": the oldest results were dropped to stay under
//     max_bytes; count is exact. The range can also contain numbers of gap
//     results (they are never dropped) and of results already sent.
//   - reason "spool_write_failed": Append failed (disk full, I/O error); the
//     lost results were given numbers that no caller ever saw, the range is
//     exactly those, count is exact. The gap is written by the next successful
//     write, i.e. once space returns.
//   - reason "corrupt_row": rows whose checksum or encoding was bad; exact.
//   - reason "spool_damaged" / "spool_missing": at start the file failed its
//     check (set aside, rows salvaged), its WAL ended mid-frame, or it was
//     gone while the side file said numbers had been used. Numbering resumes
//     at the side file's ceiling; the range runs from the last acknowledged
//     number (for a cut WAL: from the newest number present) up to there and
//     count is an upper bound (numbers still present are not counted; up to
//     1000 of them were never used).
//     Not added to dropped_total.
// The collector's invariant: every number up to the highest it has seen is a
// delivered result, a delivered gap result, or inside a delivered gap's range.
//
// Remaining risks. A WAL cut exactly at a frame boundary (not by a crash or
// power loss, which SQLite's checksums handle, but by outside damage) loses
// its last committed transactions without a trace, and their numbers are
// used again. A crash killed mid WAL write (about 1 kill in 50 in the crash
// test) looks like a cut WAL and yields a spool_damaged gap of at most 1000
// unused numbers. Losing both the database and the side file restarts the
// numbering at 1. Results whose Append failed are counted in memory until a
// write succeeds: a crash in between loses that count (their numbers were
// never handed out, so nothing is mis-numbered). The ceiling is raised
// before the commit that needs it, so a commit that then fails leaves it
// raised (up to 1000 numbers skipped after a later loss; never lowered).
// A failed folder fsync of the side file fails the append: the rename may
// not be durable, and no number may be committed above a durable ceiling.

#ifndef NETVIGIL_AGENT_SPOOL_H_
#define NETVIGIL_AGENT_SPOOL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/spool/file_system.h"
#include "agent/spool/group_commit.h"
#include "agent/spool/seq_ceiling.h"
#include "agent/spool/sqlite_vfs.h"
#include "common/clock.h"
#include "netvigil/v1/probes.pb.h"

struct sqlite3;
struct sqlite3_stmt;

namespace netvigil::agent {

class Spool {
 public:
  struct Options {
    // The database file; its folder must exist. Beside it: `<path>-wal` and
    // the seq ceiling `<path>.seq`.
    std::string path;
    // Cap on the stored results' encoded bytes (the file is somewhat larger:
    // SQLite pages and the WAL). Past it the oldest results are dropped.
    uint64_t max_bytes = 256ull << 20;
    // Every file call goes here; null means the machine's (POSIX). Not
    // owned; it must outlive the spool.
    spool::FileSystem* fs = nullptr;
  };

  // Opens or creates the spool. A file that fails its integrity check is
  // renamed `<path>.corrupt-<UTC time>` (with its -wal), its readable rows are
  // copied into a fresh file and a gap records what may be lost; this is
  // logged and is not an error. Errors: the folder is not writable, another
  // process holds the spool, the disk is full at creation.
  static absl::StatusOr<std::unique_ptr<Spool>> Open(const Options& options,
                                                     Clock& clock);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Gives the result the next sequence number (and produced_at = now when it
  // is unset), stores it durably and returns the number. An error means the
  // result was not kept: it is counted in dropped_total() and reported in a
  // gap once a write succeeds again; retrying makes it a new result.
  // ResourceExhausted for a full disk; InvalidArgument (nothing counted) for a
  // result larger than max_bytes. Appends from concurrent callers share a
  // transaction and its fsync (group commit); a failed transaction fails, and
  // counts, all of them.
  absl::StatusOr<uint64_t> Append(v1::Result result);
  // As Append, all in one transaction (one fsync): all kept or none.
  absl::StatusOr<std::vector<uint64_t>> AppendBatch(
      std::vector<v1::Result> results);

  // Results with seq > after, in order, at most max_count of them and at most
  // max_bytes encoded (but always one when there is one). A row found damaged
  // (checksum, encoding) is skipped, deleted and reported in a corrupt_row gap.
  absl::StatusOr<std::vector<v1::Result>> ReadAfter(uint64_t after,
                                                    size_t max_count,
                                                    size_t max_bytes);
  // Deletes every result with seq <= `seq`. InvalidArgument for a number not
  // handed out yet.
  absl::Status AckThrough(uint64_t seq);

  // The collector has committed numbers up to `seq` but this spool would
  // hand out numbers at or below it (the spool and its side file were lost
  // together). Numbering moves to seq + 1, and results still held under
  // numbers at or below `seq` are renumbered above it, in order, so none is
  // mistaken for a resend of what the collector already has. No-op when
  // next_seq() > seq.
  absl::Status AdvanceNextSeqPast(uint64_t seq);

  uint64_t next_seq() const;
  uint64_t pending() const;        // rows held, gap results included
  uint64_t pending_bytes() const;  // their encoded bytes
  uint64_t dropped_total() const;  // results lost, ever (over cap, failures)
  uint64_t acked_through() const;

 private:
  // Everything a write transaction changes; copied before and assigned only
  // after COMMIT succeeded, so a failed write leaves the object as it was.
  struct State {
    uint64_t next_seq = 1;
    uint64_t acked_through = 0;
    uint64_t dropped_total = 0;
    uint64_t rows = 0;
    uint64_t bytes = 0;
    // The newest gap result, while it has not been handed out by ReadAfter it
    // may still grow instead of a new one being added.
    uint64_t open_gap_seq = 0;
    v1::Gap open_gap;
    uint64_t open_gap_bytes = 0;
    bool meta_dirty = false;
  };

  Spool(const Options& options, Clock& clock, spool::FileSystem& fs);

  absl::Status Init() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status OpenDb(const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckAndLoad(std::string* damage)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Recreate(const std::string& damage)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CloseDb() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // A SQLite result code as a Status naming `what` and the file call that
  // failed.
  absl::Status SqlError(int rc, absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A prepared statement, cached for the life of the connection, reset.
  absl::StatusOr<sqlite3_stmt*> Stmt(const char* sql)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Salvage(const std::string& aside)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs `body` in BEGIN IMMEDIATE ... COMMIT on a copy of state_, first
  // writing any gap for earlier failed appends.
  template <typename Body>
  absl::Status WriteTxn(Body body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status InsertRow(State& s, const v1::Result& result, bool is_gap)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AddGap(State& s, const v1::Gap& gap)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DropOldest(State& s, uint64_t need_bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DeleteBadRows(State& s, const std::vector<uint64_t>& seqs,
                             const std::vector<absl::Time>& times)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteMeta(const State& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<uint64_t>> AppendLocked(
      std::vector<v1::Result> results) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckSizes(const std::vector<v1::Result>& results) const;
  absl::StatusOr<std::vector<uint64_t>> Commit(std::vector<v1::Result> results)
      ABSL_LOCKS_EXCLUDED(mu_);

  const Options options_;
  Clock& clock_;           // Not owned.
  spool::FileSystem& fs_;  // Not owned.
  // SQLite's file calls, over fs_. Outlives db_ (declared before mu_'s
  // fields, so destroyed after CloseDb in the destructor).
  std::unique_ptr<spool::SqliteVfs> vfs_;
  // Concurrent appends share a transaction; never called with mu_ held.
  spool::GroupCommit group_commit_;

  mutable absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::map<std::string, sqlite3_stmt*> stmts_ ABSL_GUARDED_BY(mu_);
  State state_ ABSL_GUARDED_BY(mu_);
  // Highest seq ever returned by ReadAfter (or present at Open: a previous
  // process may have sent it). Gap results at or below it are never changed.
  uint64_t handed_out_high_ ABSL_GUARDED_BY(mu_) = 0;
  // Results whose Append failed: numbered in memory, written as one gap by
  // the next successful transaction (lost if the agent dies first).
  std::optional<v1::Gap> pending_loss_ ABSL_GUARDED_BY(mu_);
  // The side file `<path>.seq`; next_seq never passes its value.
  spool::SeqCeiling ceiling_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_SPOOL_H_
