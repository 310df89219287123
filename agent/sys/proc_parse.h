// Pure parsers for /proc text (status, fdinfo, maps, fd link targets) and the
// reading of a process's identity through the ProcReader seam.
// Thread-safe: the parsers are stateless; ReadProcessRef is as safe as the
// ProcReader it is given.
#ifndef NETVIGIL_AGENT_SYS_PROC_PARSE_H_
#define NETVIGIL_AGENT_SYS_PROC_PARSE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/sys/proc_reader.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::agent {

// The real uid from /proc/PID/status ("Uid:\t1000\t1000\t1000\t1000").
absl::StatusOr<uint32_t> ParseStatusUid(absl::string_view status);

// lsof's access mode of an fd from /proc/PID/fdinfo/FD's octal "flags:":
// "r" (O_RDONLY), "w" (O_WRONLY) or "u" (O_RDWR).
absl::StatusOr<std::string> ParseFdinfoMode(absl::string_view fdinfo);

// lsof's access mode from the permission bits of a /proc/PID/fd/N link:
// 'r', 'w', 'u', or '\0' when neither (an O_PATH fd).
char ModeFromFdLinkPermissions(uint32_t st_mode);

// The distinct file paths mapped in /proc/PID/maps, in order of first
// appearance; anonymous and pseudo mappings ([heap], [vdso]) are left out.
// A path keeps its " (deleted)" suffix.
std::vector<std::string> ParseMapsPaths(absl::string_view maps);

// Removes the kernel's " (deleted)" suffix; true when it was there.
bool StripDeletedSuffix(std::string* path);

// The inode of an fd link "socket:[12345]", or nothing for other targets.
std::optional<uint64_t> ParseSocketInode(absl::string_view target);

// True when `path` is `dir` or lies below it. `dir` has no trailing slash,
// except the root "/".
bool PathIsUnder(absl::string_view path, absl::string_view dir);

// Reads comm, exe and uid of `pid`. NotFound when the process is gone. An
// unreadable exe (kernel threads, denied) leaves it empty.
absl::StatusOr<v1::ProcessRef> ReadProcessRef(ProcReader& proc, int pid);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_SYS_PROC_PARSE_H_
