// How a path run's hops are stored (migration 0018, README "Storage: what is
// kept"): its route -- per hop the TTL, whether it is the destination and the
// addresses that answered -- packed once per agent in path_routes and shared
// by every run that took it; and its figures -- per hop sent, received, the
// five millisecond figures as integer microseconds, loss when it is not the
// one sent and received give, errors -- packed in the run's path_runs row.
// Together with path_runs' columns they rebuild the PathRun the agent sent,
// its figures rounded to the microsecond, so the run keeps no result payload.
// Pure functions, no PostgreSQL (the history mapping's library); thread-safe.
#ifndef NETVIGIL_COLLECTOR_STORE_PATH_PACK_H_
#define NETVIGIL_COLLECTOR_STORE_PATH_PACK_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::collector::history {

// The largest millisecond figure (and interval, in seconds) the pack holds;
// ingest validation allows 1e8 ms and 1e6 s.
inline constexpr double kPathPackMaxMs = 1e9;
inline constexpr double kPathPackMaxSeconds = 1e7;

// The run's route. Format 1: a version byte (1); the hop count; each hop as
// its TTL, a flag varint (bit 0: the destination), its address count and
// each address as two length-prefixed strings (address, hostname). Equal
// routes pack to equal bytes (path_routes keys them by their SHA-256).
std::string PackPathRoute(const v1::PathRun& run);
// The inverse: the hops with ttl, is_destination and addresses (address and
// hostname) set. Bounded by its own length; a value that is not format 1 or
// is cut short is an error naming what is wrong, never a crash.
absl::StatusOr<std::vector<v1::PathHop>> UnpackPathRoute(
    std::string_view packed);

// The run's figures, or FAILED_PRECONDITION naming what the pack cannot hold
// -- a figure that is not a number in 0..kPathPackMaxMs, a destination that
// is not a copy of one of its hops, fields this collector does not know --
// in which case the run keeps its result payload (ingest's validation lets
// none of these through, so for agents' results this does not happen).
//
// Format 1: a version byte (1); run flags (bit 0 started_at set, bit 1
// finished_at set); finished_at in microseconds after started_at (or since
// the epoch when started_at is not set), zigzagged, if set; ip_version,
// count, interval in microseconds, max_ttl, payload_bytes, socket_kind; the
// destination (0: none, k: a copy of hop k-1); the hop count; each hop as
// a flag varint (bit 0 replies: the five figures follow; bit 1 loss: an
// IEEE double follows, the loss not being 100 (sent - received) / sent as
// the probe computes it; bit 2 errors follow; bit 3 each address' replies
// follow, not being "all of them" for a single address), sent, received,
// then best, avg - best, worst - avg, last - best (zigzagged) and stdev in
// microseconds, the loss, the per-address replies, the errors (count, then
// length-prefixed strings). About 12 bytes a hop that answers.
absl::StatusOr<std::string> PackPathFigures(const v1::PathRun& run);

// Fills `run` -- which holds path_runs' columns (target, resolved address,
// started_at, destination_reached, error) -- with its hops from `route`
// (UnpackPathRoute) and `figures` (PackPathFigures), and clears started_at
// if the agent had not set it. An unreadable value, or figures for another
// number of hops than the route has, is an error naming what is wrong.
absl::Status UnpackPathFigures(std::string_view figures,
                               const std::vector<v1::PathHop>& route,
                               v1::PathRun& run);

}  // namespace netvigil::collector::history

#endif  // NETVIGIL_COLLECTOR_STORE_PATH_PACK_H_
