// Reads a SQLite WAL file's header to tell whether the WAL was cut short:
// its size is not 32 bytes of header plus a whole number of frames. Normal
// after a crash mid-commit, but also what an outside truncation looks like,
// which may have removed committed results. Pure parser plus a reader over
// the FileSystem seam; thread-safe.
#ifndef NETVIGIL_AGENT_SPOOL_WAL_HEADER_H_
#define NETVIGIL_AGENT_SPOOL_WAL_HEADER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "agent/spool/file_system.h"

namespace netvigil::agent::spool {

constexpr size_t kWalHeaderBytes = 32;

// `header` is the file's first bytes (up to 32), `file_size` its size.
// Returns what is wrong ("wal of 9000 bytes ends mid-frame"), or nullopt for
// an empty or whole WAL.
std::optional<std::string> WalTornDetail(absl::string_view header,
                                         uint64_t file_size);

// As above for the file at `wal_path`; a missing or unreadable file is not
// torn (SQLite reports what it cannot read).
std::optional<std::string> WalLooksTorn(FileSystem& fs,
                                        const std::string& wal_path);

}  // namespace netvigil::agent::spool

#endif  // NETVIGIL_AGENT_SPOOL_WAL_HEADER_H_
