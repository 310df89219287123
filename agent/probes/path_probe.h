// The path probe: mtr done natively. ICMP echo with rising TTL to many
// targets at once over shared sockets, every TTL of a round in flight
// together, replies matched by identifier and sequence. Thread-compatible:
// one Run/RunMany at a time per PathProbe.
//
// Per-probe timeout: a probe not answered within
//   clamp(3 x the highest RTT seen so far on that target's path (any hop),
//         kTimeoutFloor = 100 ms, kTimeoutCap = 2 s)
// counts as lost; until the path has answered at all, kTimeoutCap applies.
// The timeout is re-evaluated as replies come in, so a run ends about one
// short timeout after its last round instead of after mtr's fixed 5 s grace.
//
// Late ICMP errors: a router whose next hop does not answer ARP or
// neighbour discovery queues the probe and sends "host unreachable" only
// when resolution fails, about 3 s later (Linux: 3 solicitations 1 s
// apart). A probe past its timeout is lost, but stays open to an ICMP
// error (unreachable, prohibited) until kPathLateErrorWait after it was
// sent; such an error counts as the hop's answer with its real time, as
// mtr counts it. Late echo and time-exceeded replies stay loss. So a run
// whose destination never answered ends up to kPathLateErrorWait after its
// last round; a run that reached its destination, or got an "unreachable"
// in time (its other probes to that hop lost to ICMP rate limiting), does
// not wait.
#ifndef NETVIGIL_AGENT_PROBES_PATH_PROBE_H_
#define NETVIGIL_AGENT_PROBES_PATH_PROBE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/sys/icmp_socket.h"
#include "common/clock.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::agent {

struct PathOptions {
  uint32_t count = 10;  // rounds
  absl::Duration interval = absl::Seconds(1);
  uint32_t max_ttl = 30;
  uint32_t payload_bytes = 56;  // after the 8-byte ICMP header, as ping's -s
  bool resolve_names = false;   // reverse DNS of hop addresses
  int ip_version = 0;           // 0 any, 4, 6
};

inline constexpr absl::Duration kPathTimeoutFloor = absl::Milliseconds(100);
inline constexpr absl::Duration kPathTimeoutCap = absl::Seconds(2);
// 3 s of failed ARP or neighbour discovery, and slack.
inline constexpr absl::Duration kPathLateErrorWait = absl::Seconds(4);
// A name that has not resolved by then fails its run; the others go on.
inline constexpr absl::Duration kPathResolveTimeout = absl::Seconds(5);
inline constexpr uint32_t kPathMaxCount = 1000;
inline constexpr uint32_t kPathMaxTtl = 64;
inline constexpr uint32_t kPathMaxPayload = 65000;

// Names to addresses and back: the seam for resolution.
class PathNameService {
 public:
  virtual ~PathNameService() = default;
  // A packed address (4 or 16 bytes) for `name` of `ip_version` (0: any).
  // May block; called on a thread of its own, so it must be thread-safe.
  virtual absl::StatusOr<std::string> Resolve(const std::string& name,
                                              int ip_version) = 0;
  // The name of a packed address, or "" when it has none. Called after
  // probing, concurrently for different addresses: must be thread-safe.
  virtual std::string ReverseLookup(absl::string_view packed) = 0;
};

// getaddrinfo/getnameinfo. Thread-safe.
PathNameService& SystemPathNameService();

// The per-probe timeout for a path whose highest RTT so far is `max_rtt`
// (negative: no reply yet). Exposed for tests and documentation.
absl::Duration PathProbeTimeout(absl::Duration max_rtt);

class PathProbe {
 public:
  // Opens the shared sockets (raw, else datagram).
  static absl::StatusOr<std::unique_ptr<PathProbe>> Create();
  static absl::StatusOr<std::unique_ptr<PathProbe>> Create(
      IcmpSocketChoice choice);

  // `clock` and `names` are not owned; `names` must outlive the probe and
  // any resolution it gave up on (SystemPathNameService() is never freed).
  PathProbe(std::unique_ptr<IcmpTransport> transport, Clock& clock,
            PathNameService& names);

  // Runs every target concurrently, all TTLs in flight at once, sharing the
  // sockets, demultiplexed by identifier and sequence; one target's failure
  // never stalls another. One PathRun per target, in the same order.
  std::vector<v1::PathRun> RunMany(const std::vector<std::string>& targets,
                                   const PathOptions& opts);
  v1::PathRun Run(const std::string& target, const PathOptions& opts);

 private:
  std::unique_ptr<IcmpTransport> transport_;
  Clock& clock_;                // Not owned.
  PathNameService& names_;      // Not owned.
  uint16_t next_sequence_ = 0;  // across runs, so late replies never match
};

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_PROBES_PATH_PROBE_H_
