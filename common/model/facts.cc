#include "common/model/facts.h"

#include <arpa/inet.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace netvigil::model {
namespace {

bool Closing(const std::string& state) {
  return state == "TIME-WAIT" || state == "FIN-WAIT-1" ||
         state == "FIN-WAIT-2" || state == "CLOSE-WAIT" ||
         state == "LAST-ACK" || state == "CLOSING";
}

}  // namespace

const char* KindName(SocketFactKind kind) {
  switch (kind) {
    case SocketFactKind::kListener:
      return "listener";
    case SocketFactKind::kRemote:
      return "remote";
    case SocketFactKind::kInbound:
      return "inbound";
  }
  return "?";
}

std::optional<SocketFactKind> KindFromName(absl::string_view name) {
  if (name == "listener") return SocketFactKind::kListener;
  if (name == "remote") return SocketFactKind::kRemote;
  if (name == "inbound") return SocketFactKind::kInbound;
  return std::nullopt;
}

std::string OwnerOf(const v1::ProcessRef& p) {
  if (!p.exe().empty()) return p.exe();
  if (!p.name().empty()) return absl::StrCat("[", p.name(), "]");
  return "?";
}

namespace {

// Whether `a` is an IPv4 address as inet_ntop writes it: four decimal
// numbers of at most 255 without leading zeros. The common case, and then
// CanonicalAddress needs no trip through inet_pton and inet_ntop (three
// of them a socket were a tenth of the analysis' time).
bool IsCanonicalIpv4(absl::string_view a) {
  size_t i = 0;
  for (int part = 1;; ++part) {
    const size_t start = i;
    int value = 0;
    while (i < a.size() && i - start < 4 && a[i] >= '0' && a[i] <= '9') {
      value = value * 10 + (a[i] - '0');
      ++i;
    }
    const size_t digits = i - start;
    if (digits == 0 || digits > 3 || (digits > 1 && a[start] == '0') ||
        value > 255) {
      return false;
    }
    if (i == a.size()) return part == 4;
    if (part == 4 || a[i] != '.') return false;
    ++i;
  }
}

}  // namespace

std::string CanonicalAddress(absl::string_view address) {
  if (IsCanonicalIpv4(address)) return std::string(address);
  // Longer than any literal: not one (and inet_pton needs a terminated copy).
  if (address.empty() || address.size() > INET6_ADDRSTRLEN) {
    return std::string(address);
  }
  const std::string text(address);
  char buf[INET6_ADDRSTRLEN];
  in_addr a4;
  if (inet_pton(AF_INET, text.c_str(), &a4) == 1 &&
      inet_ntop(AF_INET, &a4, buf, sizeof(buf)) != nullptr) {
    return buf;
  }
  in6_addr a6;
  if (inet_pton(AF_INET6, text.c_str(), &a6) == 1) {
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
      std::memcpy(&a4, &a6.s6_addr[12], 4);
      if (inet_ntop(AF_INET, &a4, buf, sizeof(buf)) != nullptr) return buf;
    }
    if (inet_ntop(AF_INET6, &a6, buf, sizeof(buf)) != nullptr) return buf;
  }
  return text;
}

bool IsWildcardAddress(absl::string_view a) {
  return a.empty() || a == "*" || a == "0.0.0.0" || a == "::";
}

bool IsLoopbackAddress(absl::string_view a) {
  return absl::StartsWith(a, "127.") || a == "::1";
}

bool IsPrivateAddress(absl::string_view a) {
  if (IsLoopbackAddress(a)) return true;
  in_addr a4;
  const std::string text(a.substr(0, INET6_ADDRSTRLEN));
  if (inet_pton(AF_INET, text.c_str(), &a4) == 1) {
    const uint32_t v = ntohl(a4.s_addr);
    return (v >> 24) == 10 || (v >> 20) == ((172u << 4) | 1) ||
           (v >> 16) == ((192u << 8) | 168) || (v >> 16) == ((169u << 8) | 254);
  }
  in6_addr a6;
  if (inet_pton(AF_INET6, text.c_str(), &a6) == 1) {
    return (a6.s6_addr[0] & 0xfe) == 0xfc ||  // fc00::/7
           (a6.s6_addr[0] == 0xfe &&
            (a6.s6_addr[1] & 0xc0) == 0x80);  // fe80::/10
  }
  return false;
}

std::string HostPort(absl::string_view address, uint32_t port) {
  return address.find(':') != absl::string_view::npos
             ? absl::StrCat("[", address, "]:", port)
             : absl::StrCat(address, ":", port);
}

std::string FactText(const SocketFact& f) {
  const char* proto = f.proto == v1::TRANSPORT_UDP ? "udp" : "tcp";
  switch (f.kind) {
    case SocketFactKind::kListener:
      return absl::StrCat("listener ", proto, " ",
                          HostPort(f.local_address, f.local_port), " ",
                          f.owner);
    case SocketFactKind::kRemote:
      return absl::StrCat("remote ", proto, " ", f.owner, " -> ",
                          HostPort(f.remote_address, f.remote_port));
    case SocketFactKind::kInbound:
      return absl::StrCat("inbound ", proto, " ", f.owner, " :", f.local_port,
                          " <- ", f.remote_address);
  }
  return "?";
}

SocketFacts SocketFactsOf(const v1::SocketSnapshot& snap,
                          const FactOptions& options) {
  auto ephemeral = [&](uint32_t port) {
    return port >= options.ephemeral_port_min &&
           port <= options.ephemeral_port_max;
  };
  // `remote` is the socket's remote address, canonical.
  auto unconnected = [](const v1::SocketEntry& s, const std::string& remote) {
    return IsWildcardAddress(remote) && s.remote_port() == 0;
  };
  // A UDP socket that is unconnected and bound to a fixed port serves.
  auto listener = [&](const v1::SocketEntry& s, const std::string& remote) {
    if (s.proto() == v1::TRANSPORT_TCP) return s.state() == "LISTEN";
    return s.proto() == v1::TRANSPORT_UDP && unconnected(s, remote) &&
           s.local_port() != 0 && !ephemeral(s.local_port());
  };
  // Once a socket: canonical remote addresses, and which sockets serve.
  std::vector<std::string> remotes;
  std::vector<bool> listeners;
  remotes.reserve(snap.sockets_size());
  listeners.reserve(snap.sockets_size());
  // Ports something listens on: a connection to one of them is inbound.
  std::set<std::pair<v1::Transport, uint32_t>> listening;
  for (const v1::SocketEntry& s : snap.sockets()) {
    remotes.push_back(CanonicalAddress(s.remote_address()));
    listeners.push_back(listener(s, remotes.back()));
    if (listeners.back()) listening.insert({s.proto(), s.local_port()});
  }
  SocketFacts out;
  for (int i = 0; i < snap.sockets_size(); ++i) {
    const v1::SocketEntry& s = snap.sockets(i);
    std::string& remote = remotes[i];
    SocketFact f;
    f.proto = s.proto();
    if (listeners[i]) {
      f.kind = SocketFactKind::kListener;
      f.local_address = CanonicalAddress(s.local_address());
      f.local_port = s.local_port();
    } else if (unconnected(s, remote) || s.state() == "LISTEN" ||
               s.remote_port() == 0) {
      continue;  // A client's unconnected UDP socket: nothing to key.
    } else if (s.processes().empty() && Closing(s.state())) {
      continue;  // Seen while it had an owner.
    } else if (listening.count({s.proto(), s.local_port()}) > 0) {
      f.kind = SocketFactKind::kInbound;
      f.local_port = s.local_port();
      f.remote_address = std::move(remote);
    } else {
      f.kind = SocketFactKind::kRemote;
      f.remote_address = std::move(remote);
      f.remote_port = s.remote_port();
    }
    if (s.processes().empty()) {
      f.owner = "?";
      out.emplace(std::move(f), SocketFactInfo{"", s.agent_own()});
      continue;
    }
    for (const v1::ProcessRef& p : s.processes()) {
      f.owner = OwnerOf(p);
      auto [it, fresh] =
          out.emplace(f, SocketFactInfo{p.name(), s.agent_own()});
      // One owner's socket is netvigil's only if every socket with this key
      // is (a stranger's socket to the same place stays visible).
      if (!fresh && !s.agent_own()) it->second.agent_own = false;
    }
  }
  return out;
}

FileFacts FileFactsOf(const v1::FileSnapshot& snap) {
  FileFacts out;
  for (const v1::FileEntry& e : snap.entries()) {
    out.emplace(FileFact{OwnerOf(e.process()), e.path(), e.kind()},
                FileFactInfo{e.process().name(), e.process().uid(), e.deleted(),
                             e.process().exe_deleted()});
  }
  return out;
}

bool IsOwnTraffic(const SocketFact& f, const OwnEndpoints& own) {
  switch (f.kind) {
    case SocketFactKind::kListener:
      return false;
    case SocketFactKind::kRemote:
      return (own.speed_port != 0 && f.remote_port == own.speed_port &&
              own.agents.count(f.remote_address) > 0) ||
             own.servers.count({f.remote_address, f.remote_port}) > 0;
    case SocketFactKind::kInbound:
      return own.speed_port != 0 && f.local_port == own.speed_port &&
             own.agents.count(f.remote_address) > 0;
  }
  return false;
}

}  // namespace netvigil::model
