// The spool's FileSystem on the machine's own file system (POSIX calls).
// Thread-safe.
#ifndef NETVIGIL_AGENT_SPOOL_POSIX_FILE_SYSTEM_H_
#define NETVIGIL_AGENT_SPOOL_POSIX_FILE_SYSTEM_H_

#include "agent/spool/file_system.h"

namespace netvigil::agent::spool {

// Files are opened O_CLOEXEC|O_NOFOLLOW and created 0600; a file whose mode
// lets its group or others in is tightened to its owner when opened (the
// spool holds process lists and file paths; an older agent left 0644).
// Locks are flock(2) locks, so a second open of the same spool is refused
// in this process as in another. A folder fsync the file system does not
// support (EINVAL) counts as done; any other failure is an error. One
// instance for the process.
FileSystem& PosixFileSystem();

}  // namespace netvigil::agent::spool

#endif  // NETVIGIL_AGENT_SPOOL_POSIX_FILE_SYSTEM_H_
