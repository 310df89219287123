#include "agent/probes/file_probe.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/sys/proc_parallel.h"
#include "agent/sys/proc_parse.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "google/protobuf/util/time_util.h"

namespace netvigil::agent {
namespace {

constexpr absl::string_view kDeletedSuffix = " (deleted)";

// Collects one process's entries; the process identity is read lazily, once
// something of the process lies under a watched folder.
class ProcessScan {
 public:
  ProcessScan(ProcReader& proc, int pid, const std::vector<std::string>& dirs,
              v1::FileSnapshot* snap)
      : proc_(proc), pid_(pid), dirs_(dirs), snap_(snap) {}

  bool Watched(absl::string_view path) const {
    for (const std::string& dir : dirs_) {
      if (PathIsUnder(path, dir)) return true;
    }
    return false;
  }

  // Adds an entry for `raw_path` (as the kernel wrote it, maybe with
  // " (deleted)") when it is watched. Returns the entry or null.
  v1::FileEntry* Add(absl::string_view raw_path, v1::FileAccessKind kind,
                     int fd) {
    const bool deleted = absl::ConsumeSuffix(&raw_path, kDeletedSuffix);
    if (!Watched(raw_path)) return nullptr;
    if (!LoadProcess()) return nullptr;
    v1::FileEntry* e = snap_->add_entries();
    *e->mutable_process() = *ref_;
    // File names are any bytes; the proto's strings must be UTF-8.
    e->set_path(ToValidUtf8(raw_path));
    e->set_kind(kind);
    e->set_fd(fd);
    e->set_deleted(deleted);
    return e;
  }

  bool gone() const { return gone_; }
  const absl::Status& exhausted() const { return exhausted_; }

 private:
  bool LoadProcess() {
    if (ref_.has_value()) return true;
    if (gone_) return false;
    absl::StatusOr<v1::ProcessRef> ref = ReadProcessRef(proc_, pid_);
    if (absl::IsResourceExhausted(ref.status())) exhausted_ = ref.status();
    if (!ref.ok()) {
      gone_ = true;
      return false;
    }
    ref_ = std::move(*ref);
    return true;
  }

  ProcReader& proc_;
  const int pid_;
  const std::vector<std::string>& dirs_;
  v1::FileSnapshot* snap_;
  std::optional<v1::ProcessRef> ref_;
  bool gone_ = false;
  absl::Status exhausted_;  // Out of file descriptors reading the process.
};

// Scans one process's fds, cwd, exe and maps into `part`: its entries, or
// skipped_processes = 1 when it exited mid-scan, and its unreadable count.
// ResourceExhausted when the agent ran out of file descriptors: the part
// would miss what the process holds, which is not a hidden process but a
// wrong answer (its files would read as closed), so the probe fails.
absl::Status ScanProcess(ProcReader& proc, int pid,
                         const std::vector<std::string>& dirs,
                         v1::FileSnapshot* part) {
  ProcessScan scan(proc, pid, dirs, part);
  uint32_t unreadable = 0;
  // Only targets under a watched folder are kept, and only theirs need a
  // mode: the filter runs before the extra system call. Entries are made
  // straight from the link text, with no copy of it kept meanwhile.
  auto watched = [&](absl::string_view target) {
    if (!absl::StartsWith(target, "/")) return false;  // socket:, pipe:...
    absl::ConsumeSuffix(&target, kDeletedSuffix);
    return scan.Watched(target);
  };
  absl::Status st = proc.ForEachFd(
      pid, watched,
      [&](int fd, absl::string_view target, char mode) {
        if (mode == '\0' && !watched(target)) return;
        v1::FileEntry* e = scan.Add(target, v1::FILE_ACCESS_FD, fd);
        if (e != nullptr && mode != '\0') {
          e->set_mode(&mode, 1);
        }
      },
      &unreadable);
  if (absl::IsNotFound(st)) {
    part->clear_entries();
    part->set_skipped_processes(1);
    return absl::OkStatus();
  }
  if (absl::IsResourceExhausted(st)) return st;
  if (!scan.exhausted().ok()) return scan.exhausted();
  if (!st.ok()) ++unreadable;  // fd table hidden; cwd and maps may still be.

  absl::StatusOr<std::string> cwd = proc.ReadLink(pid, "cwd");
  if (cwd.ok()) {
    scan.Add(*cwd, v1::FILE_ACCESS_CWD, -1);
  } else if (!absl::IsNotFound(cwd.status())) {
    ++unreadable;
  }
  absl::StatusOr<std::string> exe = proc.ReadLink(pid, "exe");
  absl::string_view exe_path;
  if (exe.ok()) {
    exe_path = *exe;
    scan.Add(*exe, v1::FILE_ACCESS_EXE, -1);
  } else if (!absl::IsNotFound(exe.status())) {
    ++unreadable;
  }
  absl::StatusOr<std::string> maps = proc.ReadFile(pid, "maps");
  if (absl::IsResourceExhausted(maps.status())) return maps.status();
  if (maps.ok()) {
    for (const std::string& path : ParseMapsPaths(*maps)) {
      // The executable is also mapped; like lsof, report it once, as exe.
      if (path == exe_path) continue;
      scan.Add(path, v1::FILE_ACCESS_MMAP, -1);
    }
  } else if (!absl::IsNotFound(maps.status())) {
    ++unreadable;
  }
  part->set_unreadable_entries(unreadable);
  if (scan.gone() ||
      (absl::IsNotFound(cwd.status()) && absl::IsNotFound(maps.status()))) {
    // Exited mid-scan: drop what was half collected.
    part->clear_entries();
    part->set_skipped_processes(1);
  }
  return scan.exhausted();
}

}  // namespace

FileProbe::FileProbe(ProcReader& proc, FolderResolver& folders)
    : proc_(proc), folders_(&folders) {}

FileProbe::FileProbe(ProcReader& proc) : proc_(proc), folders_(nullptr) {}

std::unique_ptr<FileProbe> FileProbe::CreateReal() {
  std::unique_ptr<ProcReader> proc = CreateRealProcReader();
  std::unique_ptr<FolderResolver> folders = CreateRealFolderResolver();
  auto probe = std::make_unique<FileProbe>(*proc, *folders);
  probe->owned_proc_ = std::move(proc);
  probe->owned_folders_ = std::move(folders);
  return probe;
}

absl::StatusOr<v1::FileSnapshot> FileProbe::Collect(
    const std::vector<std::string>& watched_dirs) {
  const absl::Time start = absl::Now();
  v1::FileSnapshot snap;
  *snap.mutable_taken_at() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
          absl::ToUnixNanos(start));
  std::vector<std::string> dirs;
  std::vector<std::string> errors;
  for (std::string dir : watched_dirs) {
    if (!absl::StartsWith(dir, "/")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "watched folder is not an absolute path: ", ToValidUtf8(dir)));
    }
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    if (folders_ != nullptr) {
      // The kernel writes real paths in /proc links: a folder given as a
      // symlink would match nothing.
      absl::StatusOr<std::string> real = folders_->Resolve(dir);
      if (!real.ok()) {
        errors.emplace_back(real.status().message());
        continue;
      }
      dir = std::move(*real);
    }
    if (std::find(dirs.begin(), dirs.end(), dir) != dirs.end()) continue;
    snap.add_watched_dirs(ToValidUtf8(dir));
    dirs.push_back(std::move(dir));
  }
  // Bounded: the collector takes at most 4096 bytes (validation.cc).
  snap.set_error(TruncateUtf8(absl::StrJoin(errors, "; "), 2048));

  absl::StatusOr<std::vector<int>> pids = proc_.ListPids();
  if (!pids.ok()) return pids.status();
  // Each process is scanned into its own part (entries and counts), on a few
  // threads; the parts are joined in pid order so output is deterministic.
  std::vector<v1::FileSnapshot> parts(pids->size());
  std::vector<absl::Status> failed(pids->size());
  ParallelFor(pids->size(), ProcPassThreads(), [&](int, size_t i) {
    failed[i] = ScanProcess(proc_, (*pids)[i], dirs, &parts[i]);
  });
  for (const absl::Status& st : failed) NV_RETURN_IF_ERROR(st);
  int total = 0;
  for (const v1::FileSnapshot& part : parts) total += part.entries_size();
  snap.mutable_entries()->Reserve(total);
  std::vector<v1::FileEntry*> moved;
  for (v1::FileSnapshot& part : parts) {
    // The entries change hands without a copy: a pointer each.
    moved.resize(static_cast<size_t>(part.entries_size()));
    part.mutable_entries()->ExtractSubrange(0, part.entries_size(),
                                            moved.data());
    for (v1::FileEntry* e : moved) snap.mutable_entries()->AddAllocated(e);
    snap.set_skipped_processes(snap.skipped_processes() +
                               part.skipped_processes());
    snap.set_unreadable_entries(snap.unreadable_entries() +
                                part.unreadable_entries());
  }
  snap.set_duration_ms(absl::ToDoubleMilliseconds(absl::Now() - start));
  return snap;
}

}  // namespace netvigil::agent
