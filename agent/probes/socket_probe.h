// SocketProbe: lists TCP and UDP sockets (IPv4 and IPv6, every state) through
// NETLINK_SOCK_DIAG with their owning processes from /proc/PID/fd, as
// `ss -tanup` does. Thread-compatible: one Collect() at a time (which itself
// reads /proc on a few threads).
#ifndef NETVIGIL_AGENT_PROBES_SOCKET_PROBE_H_
#define NETVIGIL_AGENT_PROBES_SOCKET_PROBE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/sys/netlink_source.h"
#include "agent/sys/proc_reader.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::agent {

class SocketProbe {
 public:
  SocketProbe(NetlinkSource& netlink, ProcReader& proc);
  // A probe over the real kernel and /proc; it owns both sources.
  static std::unique_ptr<SocketProbe> CreateReal();

  // One snapshot. Fails only when a netlink dump fails; processes that exit
  // mid-scan and unreadable fds are counted in the snapshot instead.
  absl::StatusOr<v1::SocketSnapshot> Collect();
  // The same into `out` (cleared first), which may live on an arena: a
  // snapshot of 50,000 sockets is some 300,000 small messages and strings,
  // and an arena holds them with less memory and time than one allocation
  // each. On an error `out` holds what was read so far.
  absl::Status Collect(v1::SocketSnapshot* out);

 private:
  NetlinkSource& netlink_;  // Not owned.
  ProcReader& proc_;        // Not owned.
  std::unique_ptr<NetlinkSource> owned_netlink_;
  std::unique_ptr<ProcReader> owned_proc_;
};

// Sets agent_own on every socket one of whose processes is `agent_pid`
// itself (its link to the collector) or a child of it (its iperf3 server and
// speed-test clients): the collector lists them but does not report them as
// news. With `iperf_port` (0: the agent runs no iperf3 server), also on a
// TCP listener on that port that no process holds: iperf3 closes and reopens
// its listener around each test, and one closed between the netlink dump and
// the /proc scan is listed without an owner (a "new listener" of program "?"
// every few hundred tests, in the five-host lab). Its port is the agent's
// own server's, which holds it whenever it is open.
void MarkAgentOwn(uint32_t agent_pid, uint32_t iperf_port,
                  v1::SocketSnapshot* snapshot);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_PROBES_SOCKET_PROBE_H_
