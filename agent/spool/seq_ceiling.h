// The sequence ceiling: the side file `<spool>.seq` holding a number above
// every sequence number the spool has handed out or may hand out, so a spool
// that is lost or set aside restarts above all of them. Replaced atomically
// and durably: write a temporary file, fsync it, rename it over the old one,
// fsync the folder. A failed step leaves the old file, and so the old
// value, in place: the ceiling never goes backwards. Thread-compatible.
#ifndef NETVIGIL_AGENT_SPOOL_SEQ_CEILING_H_
#define NETVIGIL_AGENT_SPOOL_SEQ_CEILING_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "agent/spool/file_system.h"

namespace netvigil::agent::spool {

class SeqCeiling {
 public:
  // The ceiling moves in steps this large: one small fsynced write per
  // step, and at most this many numbers skipped after a lost spool.
  static constexpr uint64_t kStep = 1000;

  // `path` is the side file; `fs` is not owned.
  SeqCeiling(FileSystem& fs, std::string path)
      : fs_(fs), path_(std::move(path)) {}

  // Reads the file: 0 when it is missing or unreadable (logged).
  uint64_t Load();
  // The value in the file (as loaded or last written).
  uint64_t value() const { return value_; }
  // Makes sure numbers below `next_seq` are under the ceiling, raising it to
  // next_seq + kStep when they are not. On error the value is unchanged and
  // the error names the step that failed.
  absl::Status Ensure(uint64_t next_seq);

 private:
  absl::Status Write(uint64_t value);

  FileSystem& fs_;  // Not owned.
  const std::string path_;
  uint64_t value_ = 0;
};

}  // namespace netvigil::agent::spool

#endif  // NETVIGIL_AGENT_SPOOL_SEQ_CEILING_H_
