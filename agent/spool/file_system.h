// The spool's seam to the file system: the few calls the spool and its SQLite
// database make (open, read, write, size, truncate, fsync, rename, unlink,
// list, directory fsync, an exclusive lock), so tests can swap in a file
// system that fills up, tears a write or fails an fsync (in the manner of
// LevelDB's Env). Implementations say their own thread safety; a File is
// used by one thread at a time.
#ifndef NETVIGIL_AGENT_SPOOL_FILE_SYSTEM_H_
#define NETVIGIL_AGENT_SPOOL_FILE_SYSTEM_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace netvigil::agent::spool {

// An open file. Errors name the file and the call that failed; a full disk
// is ResourceExhausted.
class File {
 public:
  virtual ~File() = default;
  // Reads up to `n` bytes at `offset` into `buf`; fewer only at the end of
  // the file. Returns the count read.
  virtual absl::StatusOr<size_t> Read(uint64_t offset, char* buf, size_t n) = 0;
  // Writes all of `data` at `offset` (the file grows as needed). On error
  // any prefix of `data` may have been written.
  virtual absl::Status Write(uint64_t offset, absl::string_view data) = 0;
  virtual absl::Status Truncate(uint64_t size) = 0;
  // Makes what was written durable (fsync).
  virtual absl::Status Sync() = 0;
  virtual absl::StatusOr<uint64_t> Size() = 0;
};

// Held while the spool is open; releases the lock when destroyed.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class FileSystem {
 public:
  enum class Mode {
    kRead,            // must exist, read only
    kWrite,           // must exist, read and write
    kCreate,          // read and write, created (owner-only) if missing
    kCreateTruncate,  // as kCreate, emptied
  };

  virtual ~FileSystem() = default;
  // NotFound when the file is missing and `mode` does not create it.
  virtual absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path,
                                                     Mode mode) = 0;
  virtual absl::StatusOr<bool> Exists(const std::string& path) = 0;
  virtual absl::Status Rename(const std::string& from,
                              const std::string& to) = 0;
  virtual absl::Status Unlink(const std::string& path) = 0;
  // Makes renames, creations and unlinks in `dir` durable (fsync of the
  // folder).
  virtual absl::Status SyncDir(const std::string& dir) = 0;
  // The names (not paths) of the entries of `dir`.
  virtual absl::StatusOr<std::vector<std::string>> List(
      const std::string& dir) = 0;
  // An exclusive lock on `path` (which must exist), not waiting: Unavailable
  // when another holder has it.
  virtual absl::StatusOr<std::unique_ptr<FileLock>> Lock(
      const std::string& path) = 0;
};

// The folder part of `path` ("." when there is none).
inline std::string DirName(absl::string_view path) {
  size_t slash = path.find_last_of('/');
  if (slash == absl::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

}  // namespace netvigil::agent::spool

#endif  // NETVIGIL_AGENT_SPOOL_FILE_SYSTEM_H_
