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
#include "agent/sys/folder_resolver.h"
#include "agent/sys/proc_reader.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::agent {

class FileProbe {
 public:
  // Watched folders are resolved through `folders` (symlinks followed, as
  // lsof +D follows them: /proc links name the real path).
  FileProbe(ProcReader& proc, FolderResolver& folders);
  // Watched folders are taken as given: for a recorded /proc tree, whose
  // folders are not on this host.
  explicit FileProbe(ProcReader& proc);
  // A probe over the real /proc and file system; it owns its seams.
  static std::unique_ptr<FileProbe> CreateReal();

  // One snapshot of what lies under `watched_dirs` (absolute paths; a
  // trailing slash is ignored). Fails only when /proc cannot be listed or a
  // folder is not absolute. A folder that cannot be watched (missing, not a
  // folder) is not an empty result: the snapshot's `error` names it, and
  // the entries are those of the other folders. `watched_dirs` of the
  // snapshot lists the folders as resolved. Processes that exit mid-scan and
  // unreadable entries are counted in the snapshot.
  absl::StatusOr<v1::FileSnapshot> Collect(
      const std::vector<std::string>& watched_dirs);

 private:
  ProcReader& proc_;         // Not owned.
  FolderResolver* folders_;  // Not owned; null: folders as given.
  std::unique_ptr<ProcReader> owned_proc_;
  std::unique_ptr<FolderResolver> owned_folders_;
};

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_PROBES_FILE_PROBE_H_
