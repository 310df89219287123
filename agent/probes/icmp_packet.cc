#include "agent/probes/icmp_packet.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace netvigil::agent {
namespace {

constexpr size_t kIcmpHeaderBytes = 8;
constexpr size_t kIpv4MinHeaderBytes = 20;
constexpr size_t kIpv6HeaderBytes = 40;
constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoIcmp6 = 58;

uint16_t Read16(absl::string_view b, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(b[at]) << 8) |
                               static_cast<uint8_t>(b[at + 1]));
}

uint8_t Byte(absl::string_view b, size_t at) {
  return static_cast<uint8_t>(b[at]);
}

IcmpKind KindOf(int ip_version, uint8_t type) {
  if (ip_version == 4) {
    switch (type) {
      case kIcmp4EchoReply:
        return IcmpKind::kEchoReply;
      case kIcmp4EchoRequest:
        return IcmpKind::kEchoRequest;
      case kIcmp4TimeExceeded:
        return IcmpKind::kTimeExceeded;
      case kIcmp4DestUnreachable:
        return IcmpKind::kDestUnreachable;
      default:
        return IcmpKind::kOther;
    }
  }
  switch (type) {
    case kIcmp6EchoReply:
      return IcmpKind::kEchoReply;
    case kIcmp6EchoRequest:
      return IcmpKind::kEchoRequest;
    case kIcmp6TimeExceeded:
      return IcmpKind::kTimeExceeded;
    case kIcmp6DestUnreachable:
      return IcmpKind::kDestUnreachable;
    default:
      return IcmpKind::kOther;
  }
}

// The quoted packet of an error: the original IP header, then at least the
// first 8 bytes of our echo request (RFC 792 / RFC 4443 guarantee those).
absl::Status ParseQuote(int ip_version, absl::string_view quote,
                        IcmpMessage& msg) {
  size_t ip_len;
  if (ip_version == 4) {
    if (quote.size() < kIpv4MinHeaderBytes || (Byte(quote, 0) >> 4) != 4) {
      return absl::InvalidArgumentError("quoted IPv4 header is truncated");
    }
    ip_len = static_cast<size_t>(Byte(quote, 0) & 0x0f) * 4;
    if (ip_len < kIpv4MinHeaderBytes || quote.size() < ip_len) {
      return absl::InvalidArgumentError("quoted IPv4 header length is bad");
    }
    if (Byte(quote, 9) != kProtoIcmp) {
      return absl::InvalidArgumentError("quoted packet is not ICMP");
    }
    msg.quoted_destination = std::string(quote.substr(16, 4));
  } else {
    if (quote.size() < kIpv6HeaderBytes || (Byte(quote, 0) >> 4) != 6) {
      return absl::InvalidArgumentError("quoted IPv6 header is truncated");
    }
    ip_len = kIpv6HeaderBytes;
    // Our probes carry no extension headers; anything else is not ours.
    if (Byte(quote, 6) != kProtoIcmp6) {
      return absl::InvalidArgumentError("quoted packet is not ICMPv6");
    }
    msg.quoted_destination = std::string(quote.substr(24, 16));
  }
  absl::string_view inner = quote.substr(ip_len);
  if (inner.size() < kIcmpHeaderBytes) {
    return absl::InvalidArgumentError("quoted ICMP header is truncated");
  }
  if (KindOf(ip_version, Byte(inner, 0)) != IcmpKind::kEchoRequest) {
    return absl::InvalidArgumentError("quoted packet is not an echo request");
  }
  msg.identifier = Read16(inner, 4);
  msg.sequence = Read16(inner, 6);
  return absl::OkStatus();
}

}  // namespace

uint16_t InternetChecksum(absl::string_view bytes) {
  uint32_t sum = 0;
  size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) sum += Read16(bytes, i);
  if (i < bytes.size()) sum += static_cast<uint32_t>(Byte(bytes, i)) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

std::string BuildEchoRequest(int ip_version, uint16_t identifier,
                             uint16_t sequence, size_t payload_bytes) {
  std::string b(kIcmpHeaderBytes + payload_bytes, '\0');
  b[0] = static_cast<char>(ip_version == 6 ? kIcmp6EchoRequest
                                           : kIcmp4EchoRequest);
  b[4] = static_cast<char>(identifier >> 8);
  b[5] = static_cast<char>(identifier & 0xff);
  b[6] = static_cast<char>(sequence >> 8);
  b[7] = static_cast<char>(sequence & 0xff);
  // A recognisable, non-zero pattern, as ping uses, so captures are readable.
  for (size_t i = 0; i < payload_bytes; ++i) {
    b[kIcmpHeaderBytes + i] = static_cast<char>(0x10 + (i % 0x30));
  }
  if (ip_version == 4) {
    uint16_t sum = InternetChecksum(b);
    b[2] = static_cast<char>(sum >> 8);
    b[3] = static_cast<char>(sum & 0xff);
  }
  return b;
}

absl::StatusOr<IcmpMessage> ParseIcmp(int ip_version, absl::string_view bytes) {
  if (ip_version != 4 && ip_version != 6) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad IP version ", ip_version));
  }
  if (bytes.size() < kIcmpHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ICMP message of ", bytes.size(), " bytes is shorter than a header"));
  }
  IcmpMessage msg;
  msg.ip_version = ip_version;
  msg.type = Byte(bytes, 0);
  msg.code = Byte(bytes, 1);
  msg.kind = KindOf(ip_version, msg.type);
  switch (msg.kind) {
    case IcmpKind::kEchoReply:
    case IcmpKind::kEchoRequest:
      msg.identifier = Read16(bytes, 4);
      msg.sequence = Read16(bytes, 6);
      msg.payload_bytes = bytes.size() - kIcmpHeaderBytes;
      return msg;
    case IcmpKind::kTimeExceeded:
    case IcmpKind::kDestUnreachable: {
      absl::Status s =
          ParseQuote(ip_version, bytes.substr(kIcmpHeaderBytes), msg);
      if (!s.ok()) return s;
      return msg;
    }
    case IcmpKind::kOther:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("ICMP type ", static_cast<int>(msg.type),
                   " is not one the path probe uses"));
}

absl::StatusOr<IcmpMessage> ParseIpv4Packet(absl::string_view bytes) {
  if (bytes.size() < kIpv4MinHeaderBytes || (Byte(bytes, 0) >> 4) != 4) {
    return absl::InvalidArgumentError("IPv4 header is truncated");
  }
  size_t ip_len = static_cast<size_t>(Byte(bytes, 0) & 0x0f) * 4;
  if (ip_len < kIpv4MinHeaderBytes || bytes.size() < ip_len) {
    return absl::InvalidArgumentError("IPv4 header length is bad");
  }
  if (Byte(bytes, 9) != kProtoIcmp) {
    return absl::InvalidArgumentError("IPv4 packet is not ICMP");
  }
  absl::StatusOr<IcmpMessage> msg = ParseIcmp(4, bytes.substr(ip_len));
  if (msg.ok()) msg->source = std::string(bytes.substr(12, 4));
  return msg;
}

absl::StatusOr<IcmpMessage> ParseErrorQueueQuote(int ip_version, uint8_t type,
                                                 uint8_t code,
                                                 absl::string_view quote) {
  if (ip_version != 4 && ip_version != 6) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad IP version ", ip_version));
  }
  IcmpMessage msg;
  msg.ip_version = ip_version;
  msg.type = type;
  msg.code = code;
  msg.kind = KindOf(ip_version, type);
  if (msg.kind != IcmpKind::kTimeExceeded &&
      msg.kind != IcmpKind::kDestUnreachable) {
    return absl::InvalidArgumentError(absl::StrCat("error queue ICMP type ",
                                                   static_cast<int>(type),
                                                   " is not one we use"));
  }
  if (quote.size() < kIcmpHeaderBytes) {
    return absl::InvalidArgumentError("error queue quote is truncated");
  }
  if (KindOf(ip_version, Byte(quote, 0)) != IcmpKind::kEchoRequest) {
    return absl::InvalidArgumentError(
        "error queue quote is not an echo request");
  }
  msg.identifier = Read16(quote, 4);
  msg.sequence = Read16(quote, 6);
  return msg;
}

std::string DescribeIcmp(int ip_version, uint8_t type, uint8_t code) {
  IcmpKind kind = KindOf(ip_version, type);
  if (kind == IcmpKind::kEchoReply) return "echo reply";
  if (kind == IcmpKind::kEchoRequest) return "echo request";
  if (kind == IcmpKind::kTimeExceeded) {
    return code == 0 ? "time exceeded" : "fragment reassembly time exceeded";
  }
  if (kind == IcmpKind::kDestUnreachable) {
    if (ip_version == 4) {
      switch (code) {
        case 0:
          return "network unreachable";
        case 1:
          return "host unreachable";
        case 2:
          return "protocol unreachable";
        case 3:
          return "port unreachable";
        case 4:
          return "fragmentation needed";
        case 5:
          return "source route failed";
        case 6:
          return "destination network unknown";
        case 7:
          return "destination host unknown";
        case 9:
          return "network administratively prohibited";
        case 10:
          return "host administratively prohibited";
        case 11:
          return "network unreachable for TOS";
        case 12:
          return "host unreachable for TOS";
        case 13:
          return "communication administratively prohibited";
        case 14:
          return "host precedence violation";
        case 15:
          return "precedence cutoff in effect";
        default:
          break;
      }
    } else {
      switch (code) {
        case 0:
          return "no route to destination";
        case 1:
          return "communication administratively prohibited";
        case 2:
          return "beyond scope of source address";
        case 3:
          return "address unreachable";
        case 4:
          return "port unreachable";
        case 5:
          return "source address failed ingress/egress policy";
        case 6:
          return "reject route to destination";
        default:
          break;
      }
    }
    return absl::StrCat("destination unreachable (code ",
                        static_cast<int>(code), ")");
  }
  return absl::StrCat("ICMP type ", static_cast<int>(type), " code ",
                      static_cast<int>(code));
}

std::string AddressToString(absl::string_view packed) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (packed.size() == 4) {
    if (inet_ntop(AF_INET, packed.data(), buf, sizeof(buf))) return buf;
  } else if (packed.size() == 16) {
    if (inet_ntop(AF_INET6, packed.data(), buf, sizeof(buf))) return buf;
  }
  return "";
}

absl::StatusOr<std::string> ParseAddress(absl::string_view text) {
  std::string s(text);
  unsigned char buf[16];
  if (inet_pton(AF_INET, s.c_str(), buf) == 1) {
    return std::string(reinterpret_cast<char*>(buf), 4);
  }
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1) {
    return std::string(reinterpret_cast<char*>(buf), 16);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", text, "' is not an IP address"));
}

}  // namespace netvigil::agent
