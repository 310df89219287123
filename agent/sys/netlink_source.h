// NetlinkSource: the seam through which the socket probe asks the kernel for
// NETLINK_SOCK_DIAG (inet_diag) dumps, and its real implementation.
// Thread-compatible: one dump at a time per instance.
#ifndef NETVIGIL_AGENT_SYS_NETLINK_SOURCE_H_
#define NETVIGIL_AGENT_SYS_NETLINK_SOURCE_H_

#include <cstdint>
#include <memory>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace netvigil::agent {

class NetlinkSource {
 public:
  virtual ~NetlinkSource() = default;

  // Dumps every socket of `family` (AF_INET or AF_INET6) and `protocol`
  // (IPPROTO_TCP or IPPROTO_UDP) in every state. The reply is handed over in
  // chunks, each made of whole netlink messages (as the kernel sends them, so
  // the dump never has to be held in memory at once); the last chunk holds
  // NLMSG_DONE. An error from `on_chunk` stops the dump and is returned.
  virtual absl::Status DumpInet(
      uint8_t family, uint8_t protocol,
      absl::FunctionRef<absl::Status(absl::string_view chunk)> on_chunk) = 0;
};

// Opens a NETLINK_SOCK_DIAG socket per dump. Needs no privilege.
std::unique_ptr<NetlinkSource> CreateRealNetlinkSource();

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_SYS_NETLINK_SOURCE_H_
