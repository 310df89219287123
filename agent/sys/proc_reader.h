// ProcReader: the seam through which probes read /proc (process list, fd
// links, per-process files and links), and its real implementation.
// Implementations are thread-compatible: one caller at a time.
#ifndef NETVIGIL_AGENT_SYS_PROC_READER_H_
#define NETVIGIL_AGENT_SYS_PROC_READER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace netvigil::agent {

class ProcReader {
 public:
  virtual ~ProcReader() = default;

  // The processes (thread-group leaders, as /proc lists them: threads are not
  // listed, so nothing is seen twice), in ascending order.
  virtual absl::StatusOr<std::vector<int>> ListPids() = 0;

  // Calls `visit(fd, link_target)` for each open fd of `pid`. NotFound when
  // the process is gone, PermissionDenied when its fd table is hidden. Fds
  // whose link cannot be read (closed meanwhile, denied) are counted in
  // `*unreadable` and skipped.
  virtual absl::Status ForEachFd(
      int pid, absl::FunctionRef<void(int fd, absl::string_view target)> visit,
      uint32_t* unreadable) = 0;

  // readlink of /proc/PID/NAME ("exe", "cwd", "root").
  virtual absl::StatusOr<std::string> ReadLink(int pid,
                                               absl::string_view name) = 0;

  // Contents of /proc/PID/NAME ("comm", "status", "maps", "fdinfo/3").
  virtual absl::StatusOr<std::string> ReadFile(int pid,
                                               absl::string_view name) = 0;
};

// Reads the real /proc (or another mount of procfs at `root`).
std::unique_ptr<ProcReader> CreateRealProcReader(
    std::string root = "/proc");

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_SYS_PROC_READER_H_
