// Running out of file descriptors: telling it from the errors a probe
// expects, saying so with the limit, and taking the hard limit at start.
// Thread-safe: the functions keep no state.
#ifndef NETVIGIL_AGENT_SYS_DESCRIPTORS_H_
#define NETVIGIL_AGENT_SYS_DESCRIPTORS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace netvigil::agent {

// EMFILE (this process is at its RLIMIT_NOFILE) or ENFILE (the system is at
// fs.file-max). Neither says anything about the file that could not be
// opened: a probe that met one has an answer that is wrong, not partial.
bool IsOutOfDescriptors(int err);

// ResourceExhausted: "out of file descriptors (soft limit N): WHAT: <error>".
absl::Status OutOfDescriptorsError(int err, absl::string_view what);

struct DescriptorLimit {
  uint64_t soft_before = 0;
  uint64_t soft_now = 0;
  uint64_t hard = 0;
};

// Raises the soft RLIMIT_NOFILE to the hard limit (systemd's default soft
// limit is 1,024 whatever the hard one) and says what it was and is.
DescriptorLimit RaiseDescriptorLimit();

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_SYS_DESCRIPTORS_H_
