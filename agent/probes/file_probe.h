// FileProbe: lists which processes hold files under watched folders (open
// fds with their r/w/u mode, cwd, executable, memory maps) in one pass over
// /proc, as `lsof +D DIR` does. Thread-compatible: one Collect() at a time
// (which itself reads /proc on a few threads).
#ifndef NETVIGIL_AGENT_PROBES_FILE_PROBE_H_
#define NETVIGIL_AGENT_PROBES_FILE_PROBE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/sys/proc_reader.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::agent {

class FileProbe {
 public:
  explicit FileProbe(ProcReader& proc);
  // A probe over the real /proc; it owns its reader.
  static std::unique_ptr<FileProbe> CreateReal();

  // One snapshot of what lies under `watched_dirs` (absolute paths; a
  // trailing slash is ignored). Fails only when /proc cannot be listed or a
  // folder is not absolute; processes that exit mid-scan and unreadable
  // entries are counted in the snapshot instead.
  absl::StatusOr<v1::FileSnapshot> Collect(
      const std::vector<std::string>& watched_dirs);

 private:
  ProcReader& proc_;  // Not owned.
  std::unique_ptr<ProcReader> owned_proc_;
};

// A table like lsof's: COMMAND PID UID FD PATH, with FD as lsof writes it
// ("3r", "cwd", "txt", "mem") and deleted files marked "(deleted)".
std::string FormatFilesTable(const v1::FileSnapshot& snapshot);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_PROBES_FILE_PROBE_H_
