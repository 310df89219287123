// Pure building and parsing of ICMPv4/ICMPv6 echo, time exceeded and
// destination unreachable messages (with their quoted headers), for the path
// probe. No I/O, no state: thread-safe.
#ifndef NETVIGIL_AGENT_PROBES_ICMP_PACKET_H_
#define NETVIGIL_AGENT_PROBES_ICMP_PACKET_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace netvigil::agent {

// What an ICMP message means to the path probe.
enum class IcmpKind {
  kEchoRequest,
  kEchoReply,
  kTimeExceeded,
  kDestUnreachable,
  kOther,
};

// One parsed ICMP message. For errors (time exceeded, unreachable) the
// identifier, sequence and destination are those of the echo request quoted
// inside, which is how a reply is matched to the probe that caused it.
struct IcmpMessage {
  int ip_version = 0;  // 4 or 6
  IcmpKind kind = IcmpKind::kOther;
  uint8_t type = 0;  // raw ICMP type and code, as on the wire
  uint8_t code = 0;
  uint16_t identifier = 0;
  uint16_t sequence = 0;
  // Packed address (4 or 16 bytes) of the sender, when the bytes carried an
  // IP header (raw IPv4 sockets); else empty and the socket supplies it.
  std::string source;
  // Errors only: packed destination of the quoted (original) packet. Empty
  // when the quote came without an IP header (datagram socket error queue).
  std::string quoted_destination;
  size_t payload_bytes = 0;  // echo only: bytes after the 8-byte ICMP header
};

// ICMP types the probe sends and recognises.
inline constexpr uint8_t kIcmp4EchoReply = 0;
inline constexpr uint8_t kIcmp4DestUnreachable = 3;
inline constexpr uint8_t kIcmp4EchoRequest = 8;
inline constexpr uint8_t kIcmp4TimeExceeded = 11;
inline constexpr uint8_t kIcmp6DestUnreachable = 1;
inline constexpr uint8_t kIcmp6TimeExceeded = 3;
inline constexpr uint8_t kIcmp6EchoRequest = 128;
inline constexpr uint8_t kIcmp6EchoReply = 129;

// An ICMP (v4) or ICMPv6 echo request: 8-byte header and `payload_bytes` of
// a fixed pattern. The ICMPv4 checksum is filled in; for ICMPv6 it is left 0
// because the kernel computes it (it covers a pseudo-header with addresses
// the caller may not know yet).
std::string BuildEchoRequest(int ip_version, uint16_t identifier,
                             uint16_t sequence, size_t payload_bytes);

// The Internet checksum (RFC 1071) of `bytes`.
uint16_t InternetChecksum(absl::string_view bytes);

// Parses an ICMP message starting at its ICMP header (what ICMP datagram
// sockets and raw ICMPv6 sockets deliver).
absl::StatusOr<IcmpMessage> ParseIcmp(int ip_version, absl::string_view bytes);

// Parses what a raw IPv4 ICMP socket delivers: the IPv4 header, then ICMP.
// Fills `source` from the IP header.
absl::StatusOr<IcmpMessage> ParseIpv4Packet(absl::string_view bytes);

// Parses the quote a datagram socket's error queue returns: the ICMP header
// of our own echo request (no IP header), plus type/code/offender taken from
// the kernel's sock_extended_err.
absl::StatusOr<IcmpMessage> ParseErrorQueueQuote(int ip_version, uint8_t type,
                                                 uint8_t code,
                                                 absl::string_view quote);

// "host unreachable", "administratively prohibited", ... for an unreachable
// message's code; "time exceeded" and friends for the rest.
std::string DescribeIcmp(int ip_version, uint8_t type, uint8_t code);

// Packed address (4 or 16 bytes) to text, and back. "" / error when invalid.
std::string AddressToString(absl::string_view packed);
absl::StatusOr<std::string> ParseAddress(absl::string_view text);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_PROBES_ICMP_PACKET_H_
