// Pure parsers for NETLINK_SOCK_DIAG inet_diag dump replies: bytes in,
// netvigil.v1.SocketEntry messages out. Thread-safe (stateless).
#ifndef NETVIGIL_AGENT_SYS_NETLINK_INET_DIAG_H_
#define NETVIGIL_AGENT_SYS_NETLINK_INET_DIAG_H_

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::agent {

// ss's name for a kernel socket state (TCP_ESTABLISHED -> "ESTAB"); UDP's
// TCP_CLOSE is "UNCONN" as in ss.
std::string SocketStateName(v1::Transport proto, uint8_t state);

// Maps a bound interface index to its name; only called for non-zero indexes.
using InterfaceNamer = absl::FunctionRef<std::string(uint32_t index)>;

// Appends one SocketEntry per inet_diag message in `chunk` (whole netlink
// messages, as one recv() returns them) to `out`. Returns true when the chunk
// ends the dump (NLMSG_DONE). A kernel NLMSG_ERROR becomes its errno status;
// truncated or malformed messages are DataLoss/InvalidArgument errors.
absl::StatusOr<bool> ParseInetDiagChunk(absl::string_view chunk,
                                        v1::Transport proto,
                                        InterfaceNamer interface_name,
                                        v1::SocketSnapshot* out);

// Parses a whole recorded dump (the concatenated chunks); an error when it
// does not end with NLMSG_DONE.
absl::Status ParseInetDiagDump(absl::string_view dump, v1::Transport proto,
                               InterfaceNamer interface_name,
                               v1::SocketSnapshot* out);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_SYS_NETLINK_INET_DIAG_H_
