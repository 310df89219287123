// What an agent says about its host in its Hello: boot id, host name and
// addresses. Thread-safe (reads the system each call).
#ifndef NETVIGIL_AGENT_HOST_INFO_H_
#define NETVIGIL_AGENT_HOST_INFO_H_

#include <string>
#include <vector>

namespace netvigil::agent {

// /proc/sys/kernel/random/boot_id, or "" when unreadable.
std::string BootId();
std::string HostName();
// The host's IPv4 and IPv6 addresses, loopback and link-local left out.
std::vector<std::string> HostAddresses();

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_HOST_INFO_H_
