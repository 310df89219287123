#include "agent/sys/netlink_inet_diag.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace netvigil::agent {
namespace {

// Kernel TCP states (include/net/tcp_states.h), indexed by value; ss's names.
constexpr const char* kStateNames[] = {
    "UNKNOWN",    "ESTAB",     "SYN-SENT", "SYN-RECV",   "FIN-WAIT-1",
    "FIN-WAIT-2", "TIME-WAIT", "UNCONN",   "CLOSE-WAIT", "LAST-ACK",
    "LISTEN",     "CLOSING",   "SYN-RECV",  // TCP_NEW_SYN_RECV: a request sock.
};
constexpr uint8_t kTcpClose = 7;

std::string AddressText(uint8_t family, const uint32_t* words) {
  char text[INET6_ADDRSTRLEN];
  if (inet_ntop(family, words, text, sizeof(text)) == nullptr) return "?";
  return text;
}

// Walks the rtattrs after an inet_diag_msg (`len` bytes at `p`; the message
// began at byte `at` of its chunk) for INET_DIAG_SKV6ONLY.
absl::Status ParseAttributes(const char* p, size_t len, size_t at,
                             std::optional<bool>* v6only) {
  size_t off = 0;
  while (off + sizeof(rtattr) <= len) {
    rtattr a;
    std::memcpy(&a, p + off, sizeof(a));
    if (a.rta_len < sizeof(rtattr) || a.rta_len > len - off) {
      return absl::DataLossError(
          absl::StrCat("inet_diag message at byte ", at,
                       " has an attribute of bad length ", a.rta_len));
    }
    if (a.rta_type == INET_DIAG_SKV6ONLY) {
      if (a.rta_len < RTA_LENGTH(1)) {
        return absl::DataLossError(absl::StrCat("inet_diag message at byte ",
                                                at, " has a short SKV6ONLY"));
      }
      *v6only = p[off + RTA_LENGTH(0)] != 0;
    }
    off += RTA_ALIGN(a.rta_len);
  }
  return absl::OkStatus();
}

}  // namespace

std::string SocketStateName(v1::Transport proto, uint8_t state) {
  if (state == kTcpClose) {
    return proto == v1::TRANSPORT_UDP ? "UNCONN" : "CLOSE";
  }
  if (state < sizeof(kStateNames) / sizeof(kStateNames[0])) {
    return kStateNames[state];
  }
  return absl::StrCat("STATE-", state);
}

absl::StatusOr<bool> ParseInetDiagChunk(absl::string_view chunk,
                                        v1::Transport proto,
                                        InterfaceNamer interface_name,
                                        v1::SocketSnapshot* out) {
  size_t off = 0;
  while (off < chunk.size()) {
    if (chunk.size() - off < sizeof(nlmsghdr)) {
      return absl::DataLossError(
          absl::StrCat("truncated netlink header at byte ", off));
    }
    nlmsghdr h;
    std::memcpy(&h, chunk.data() + off, sizeof(h));
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > chunk.size() - off) {
      return absl::DataLossError(absl::StrCat("netlink message at byte ", off,
                                              " has bad length ", h.nlmsg_len));
    }
    const char* payload = chunk.data() + off + NLMSG_HDRLEN;
    const size_t payload_len = h.nlmsg_len - NLMSG_HDRLEN;
    if (h.nlmsg_type == NLMSG_DONE) return true;
    if (h.nlmsg_type == NLMSG_ERROR) {
      nlmsgerr err{};
      if (payload_len < sizeof(err.error)) {
        return absl::DataLossError("truncated NLMSG_ERROR");
      }
      std::memcpy(&err.error, payload, sizeof(err.error));
      if (err.error == 0) return true;  // An ACK: nothing more follows.
      // The kernel sends -errno; anything else (INT_MIN would overflow the
      // negation) is not a kernel's reply.
      if (err.error > 0 || err.error < -4095) {
        return absl::DataLossError(
            absl::StrCat("NLMSG_ERROR with a bad error ", err.error));
      }
      return absl::ErrnoToStatus(-err.error, "inet_diag dump");
    }
    if (h.nlmsg_type != SOCK_DIAG_BY_FAMILY) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected netlink message type ", h.nlmsg_type, " at byte ", off));
    }
    if (payload_len < sizeof(inet_diag_msg)) {
      return absl::DataLossError(
          absl::StrCat("inet_diag message at byte ", off, " is too short"));
    }
    inet_diag_msg m;
    std::memcpy(&m, payload, sizeof(m));
    if (m.idiag_family != AF_INET && m.idiag_family != AF_INET6) {
      return absl::InvalidArgumentError(absl::StrCat(
          "inet_diag message with address family ", m.idiag_family));
    }
    v1::SocketEntry* e = out->add_sockets();
    e->set_proto(proto);
    e->set_family(m.idiag_family == AF_INET ? 4 : 6);
    e->set_state(SocketStateName(proto, m.idiag_state));
    e->set_local_address(AddressText(m.idiag_family, m.id.idiag_src));
    e->set_local_port(ntohs(m.id.idiag_sport));
    e->set_remote_address(AddressText(m.idiag_family, m.id.idiag_dst));
    e->set_remote_port(ntohs(m.id.idiag_dport));
    e->set_uid(m.idiag_uid);
    e->set_inode(m.idiag_inode);
    if (m.id.idiag_if != 0) e->set_interface(interface_name(m.id.idiag_if));
    if (m.idiag_family == AF_INET6) {
      // The kernel adds INET_DIAG_SKV6ONLY to every IPv6 socket's message,
      // unasked (inet_diag_msg_attrs_fill); an older one may not.
      std::optional<bool> v6only;
      NV_RETURN_IF_ERROR(ParseAttributes(
          payload + NLMSG_ALIGN(sizeof(inet_diag_msg)),
          payload_len -
              std::min(payload_len, size_t{NLMSG_ALIGN(sizeof(inet_diag_msg))}),
          off, &v6only));
      if (v6only.has_value()) e->set_v6_only(*v6only);
    }
    off += NLMSG_ALIGN(h.nlmsg_len);
  }
  return false;
}

absl::Status ParseInetDiagDump(absl::string_view dump, v1::Transport proto,
                               InterfaceNamer interface_name,
                               v1::SocketSnapshot* out) {
  absl::StatusOr<bool> done =
      ParseInetDiagChunk(dump, proto, interface_name, out);
  if (!done.ok()) return done.status();
  if (!*done) return absl::DataLossError("inet_diag dump lacks NLMSG_DONE");
  return absl::OkStatus();
}

}  // namespace netvigil::agent
