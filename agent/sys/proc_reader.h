// ProcReader: the seam through which probes read /proc (process list, fd
// links, per-process files and links), and its real implementation.
// Implementations must be thread-safe: the probes read several processes at
// once. The real one keeps no state between calls.
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

  // Calls `visit(fd, link_target, mode)` for each open fd of `pid`. `mode` is
  // lsof's access mode ('r', 'w' or 'u') for the fds whose target
  // `want_mode` accepts, else '\0'; it comes from the permission bits procfs
  // gives each fd link (FMODE_READ -> S_IRUSR, FMODE_WRITE -> S_IWUSR), one
  // lstat instead of reading fdinfo. NotFound when the process is gone,
  // PermissionDenied when its fd table is hidden. Every method returns
  // ResourceExhausted when this process is out of file descriptors (EMFILE,
  // ENFILE): that says nothing about the process read, and a probe must
  // fail rather than count it as hidden or gone. Fds whose link or mode
  // cannot be read (closed meanwhile, denied) are counted in `*unreadable`
  // and skipped.
  virtual absl::Status ForEachFd(
      int pid, absl::FunctionRef<bool(absl::string_view target)> want_mode,
      absl::FunctionRef<void(int fd, absl::string_view target, char mode)>
          visit,
      uint32_t* unreadable) = 0;

  // readlink of /proc/PID/NAME ("exe", "cwd", "root").
  virtual absl::StatusOr<std::string> ReadLink(int pid,
                                               absl::string_view name) = 0;

  // Contents of /proc/PID/NAME ("comm", "status", "maps", "fdinfo/3").
  virtual absl::StatusOr<std::string> ReadFile(int pid,
                                               absl::string_view name) = 0;
};

// Reads the real /proc (or another mount of procfs at `root`).
std::unique_ptr<ProcReader> CreateRealProcReader(std::string root = "/proc");

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_SYS_PROC_READER_H_
