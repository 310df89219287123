// ICMP sockets for the path probe: raw ICMP sockets (CAP_NET_RAW) or, when
// those are refused, unprivileged ICMP datagram ("ping") sockets that report
// ICMP errors through IP_RECVERR/IPV6_RECVERR. IcmpTransport is the seam that
// unit tests replace with recorded packets. Thread-compatible: one caller at
// a time per transport.
#ifndef NETVIGIL_AGENT_SYS_ICMP_SOCKET_H_
#define NETVIGIL_AGENT_SYS_ICMP_SOCKET_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace netvigil::agent {

// One packet (or error-queue entry) as a socket delivered it, unparsed.
struct IcmpPacketIn {
  int ip_version = 0;  // 4 or 6
  // raw IPv4: IPv4 header then ICMP (has_ip_header). raw IPv6 and datagram
  // sockets: the ICMP message. Error queue: the quoted ICMP header of our own
  // echo request.
  std::string data;
  bool has_ip_header = false;
  // Packed address (4 or 16 bytes): the sender, or for an error-queue entry
  // the router that sent the ICMP error (the "offender").
  std::string source;
  bool from_error_queue = false;
  uint8_t error_type = 0;  // error queue only: ICMP type/code of the error
  uint8_t error_code = 0;
  // Kernel receive time (SO_TIMESTAMPNS); InfinitePast when unknown.
  absl::Time received_at = absl::InfinitePast();
};

// Sends ICMP echo requests with a given TTL and hands back what comes in.
class IcmpTransport {
 public:
  virtual ~IcmpTransport() = default;
  // "raw" or "dgram".
  virtual std::string kind() const = 0;
  virtual bool SupportsIpVersion(int ip_version) const = 0;
  // Datagram sockets overwrite the echo identifier with their own port, so
  // replies can only be told apart by sequence number.
  virtual bool KernelSetsIdentifier() const = 0;
  // `destination` is a packed address (4 or 16 bytes); `icmp` starts at the
  // ICMP header. An error means the packet did not leave (no route, ...).
  virtual absl::Status Send(absl::string_view destination, int ttl,
                            absl::string_view icmp) = 0;
  // Waits up to `timeout` for something to read, then appends everything
  // readable to `out` without blocking again.
  virtual absl::Status Receive(absl::Duration timeout,
                               std::vector<IcmpPacketIn>& out) = 0;
};

enum class IcmpSocketChoice { kAuto, kRaw, kDatagram };

// Opens one socket per IP version the host supports. kAuto tries raw
// sockets first and falls back to datagram sockets when raw ones are
// refused. Fails with a message naming both kinds when neither works.
absl::StatusOr<std::unique_ptr<IcmpTransport>> OpenIcmpTransport(
    IcmpSocketChoice choice = IcmpSocketChoice::kAuto);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_SYS_ICMP_SOCKET_H_
