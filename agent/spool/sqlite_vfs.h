// A SQLite VFS whose file calls all go through a spool::FileSystem, so the
// spool's database, its WAL and their fsyncs can be failed by a test.
// Thread-safe (SQLite calls it from the connection's thread; the last-error
// slot has its own lock).
//
// What it is: WAL without shared memory (the spool runs SQLite in
// locking_mode=EXCLUSIVE, where the WAL index lives on the heap), one
// FileSystem lock per main database file held from the first lock SQLite
// asks for until the file is closed (so a second agent on the same spool
// gets SQLITE_BUSY), a folder fsync after the first fsync of a file it
// created (as SQLite's unix VFS does), and no temporary files (the spool
// sets temp_store=MEMORY). Sector size and device characteristics are
// those of SQLite's unix VFS, so the on-disk format is the same.
#ifndef NETVIGIL_AGENT_SPOOL_SQLITE_VFS_H_
#define NETVIGIL_AGENT_SPOOL_SQLITE_VFS_H_

#include <sqlite3.h>

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/spool/file_system.h"

namespace netvigil::agent::spool {

class SqliteVfs {
 public:
  // Registers a VFS of a name of its own over `fs` (not owned; it must
  // outlive the VFS and every connection opened with it).
  static absl::StatusOr<std::unique_ptr<SqliteVfs>> Register(FileSystem& fs);
  // Unregisters; every connection using it must be closed first.
  ~SqliteVfs();
  SqliteVfs(const SqliteVfs&) = delete;
  SqliteVfs& operator=(const SqliteVfs&) = delete;

  // For sqlite3_open_v2's zVfs.
  const char* name() const { return name_.c_str(); }
  FileSystem& fs() { return fs_; }

  // The message of the newest failed file call ("write /x/spool.db-wal:
  // No space left on device"), cleared by the call; SQLite's own codes do
  // not say which file or why.
  std::string TakeLastError();
  void SetLastError(const absl::Status& status);

 private:
  explicit SqliteVfs(FileSystem& fs);

  FileSystem& fs_;  // Not owned.
  std::string name_;
  sqlite3_vfs vfs_;
  absl::Mutex mu_;
  std::string last_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netvigil::agent::spool

#endif  // NETVIGIL_AGENT_SPOOL_SQLITE_VFS_H_
