// The one fact model: what "the same socket" and "the same file access" are,
// decided once for the store's history (`netvigil sockets --changes`) and
// the analysis (alerts). A snapshot becomes typed facts with canonical
// addresses, and DiffFacts gives what appeared and what went. Nothing else
// decides sameness. Thread-safe (pure functions).
//
// Sameness, in short (README, "Facts: what is the same socket"):
// - A listener is (proto, local address, port, owner): a TCP LISTEN socket,
//   or an unconnected UDP socket on a port outside the ephemeral range. An
//   unconnected UDP socket on an ephemeral port (a resolver's, a client's)
//   is not a fact at all: it churns and names no service.
// - An outbound connection is (proto, owner, remote address, remote port),
//   never the ephemeral local port; an inbound one (a connection to a port
//   the host listens on) is (proto, owner, local port, remote address),
//   never the client's port.
// - Every distinct owner of a shared socket makes its own fact (a socket
//   inherited by a child is the child's too); PIDs never key.
// - The owner is the executable, "[name]" when only the name could be read
//   (kernel threads, another user's process), "?" when nothing was.
// - A connected socket without an owner is skipped when it is closing
//   (TIME-WAIT, FIN-WAIT-*, CLOSE-WAIT, LAST-ACK, CLOSING): it was seen while
//   owned. Otherwise it is owned by "?".
// - Addresses are canonical: one spelling of an IPv6 address, and an IPv4
//   peer of a dual-stack socket (::ffff:a.b.c.d) is a.b.c.d.
#ifndef NETVIGIL_MODEL_FACTS_H_
#define NETVIGIL_MODEL_FACTS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::model {

// Valued in the order of their names, so facts sort as the store's key_kind
// text does.
enum class SocketFactKind { kInbound = 1, kListener = 2, kRemote = 3 };

// "listener", "remote", "inbound": the store's key_kind column.
const char* KindName(SocketFactKind kind);
std::optional<SocketFactKind> KindFromName(absl::string_view name);

struct SocketFact {
  SocketFactKind kind = SocketFactKind::kListener;
  v1::Transport proto = v1::TRANSPORT_UNSPECIFIED;
  std::string local_address;   // listeners only
  uint32_t local_port = 0;     // listeners and inbound
  std::string remote_address;  // remote and inbound
  uint32_t remote_port = 0;    // remote only
  std::string owner;           // OwnerOf()

  auto Tie() const {
    return std::tie(kind, proto, local_address, local_port, remote_address,
                    remote_port, owner);
  }
  bool operator<(const SocketFact& o) const { return Tie() < o.Tie(); }
  bool operator==(const SocketFact& o) const { return Tie() == o.Tie(); }
};

// What goes with a fact but is not part of its sameness.
struct SocketFactInfo {
  std::string process_name;  // of the first owner with this key
  // netvigil's own traffic by the agent's word (SocketEntry.agent_own).
  // History keeps it; the analysis never makes it news.
  bool agent_own = false;
};

using SocketFacts = std::map<SocketFact, SocketFactInfo>;

struct FactOptions {
  // Linux's default ip_local_port_range.
  uint32_t ephemeral_port_min = 32768;
  uint32_t ephemeral_port_max = 60999;
};

SocketFacts SocketFactsOf(const v1::SocketSnapshot& snap,
                          const FactOptions& options = {});

struct FileFact {
  std::string owner;  // OwnerOf()
  std::string path;
  v1::FileAccessKind kind = v1::FILE_ACCESS_UNSPECIFIED;

  auto Tie() const { return std::tie(owner, path, kind); }
  bool operator<(const FileFact& o) const { return Tie() < o.Tie(); }
  bool operator==(const FileFact& o) const { return Tie() == o.Tie(); }
};

struct FileFactInfo {
  std::string process_name;
  uint32_t uid = 0;
  bool deleted = false;
  bool exe_deleted = false;
};

using FileFacts = std::map<FileFact, FileFactInfo>;

FileFacts FileFactsOf(const v1::FileSnapshot& snap);

// The executable that names a process in keys: its exe; "[name]" when the
// exe could not be read; "?" when neither could.
std::string OwnerOf(const v1::ProcessRef& p);

// One spelling per address: inet_ntop's for IPv4 and IPv6 literals, an
// IPv4-mapped IPv6 address as plain IPv4. Anything else (a host name, "*")
// is returned as it is.
std::string CanonicalAddress(absl::string_view address);

bool IsWildcardAddress(absl::string_view canonical);
bool IsLoopbackAddress(absl::string_view canonical);
// RFC 1918, link-local, unique-local (fc00::/7), loopback.
bool IsPrivateAddress(absl::string_view canonical);

// A fact in one line, the same wherever it is printed: "listener tcp
// 0.0.0.0:22 /usr/sbin/sshd", "remote tcp /usr/bin/curl -> 1.2.3.4:443",
// "inbound tcp /usr/sbin/sshd :22 <- 1.2.3.4".
std::string FactText(const SocketFact& f);

// "a.b.c.d:port" or "[v6]:port".
std::string HostPort(absl::string_view address, uint32_t port);

// What appeared and what went between two fact sets (pointers into them).
template <typename Key>
struct FactDiff {
  std::vector<const Key*> appeared;  // in `after`, ordered by key
  std::vector<const Key*> gone;      // in `before`, ordered by key
};

// One ordered walk over both maps (a lookup per key cost most of a batch's
// time in the store).
template <typename Key, typename Info>
FactDiff<Key> DiffFacts(const std::map<Key, Info>& before,
                        const std::map<Key, Info>& after) {
  FactDiff<Key> d;
  auto a = after.begin();
  auto b = before.begin();
  while (a != after.end() || b != before.end()) {
    if (b == before.end() || (a != after.end() && a->first < b->first)) {
      d.appeared.push_back(&(a++)->first);
    } else if (a == after.end() || b->first < a->first) {
      d.gone.push_back(&(b++)->first);
    } else {
      ++a;
      ++b;
    }
  }
  return d;
}

// The endpoints the collector knows to be netvigil's own: every agent's
// addresses with the speed (iperf3) port, the external speed targets. The
// agent's agent_own flag covers its own end of a test; this covers the
// other end, which the agent cannot tell from a stranger (README, "Own
// traffic").
struct OwnEndpoints {
  uint32_t speed_port = 0;       // every agent's iperf3 server
  std::set<std::string> agents;  // canonical addresses of every agent
  std::set<std::pair<std::string, uint32_t>> servers;  // external targets

  bool empty() const { return agents.empty() && servers.empty(); }
};

// Whether `fact` is netvigil's own traffic by what the collector knows: a
// connection to an agent's or an external target's iperf3 server, or a
// connection from an agent into this host's iperf3 server.
bool IsOwnTraffic(const SocketFact& fact, const OwnEndpoints& own);

}  // namespace netvigil::model

#endif  // NETVIGIL_MODEL_FACTS_H_
