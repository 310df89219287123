// Checks every message an agent sends against documented limits before
// anything is written. Limits are generous for a home LAN and tight enough
// that a lying peer cannot make the collector allocate or store without
// bound. Beyond the limits, whatever passes must be storable, or the agent
// would resend it forever: no string holds a NUL, every enum holds a value
// this collector knows, every time is one google.protobuf.Timestamp allows.
// Thread-safe (pure functions).
#ifndef NETVIGIL_COLLECTOR_INGEST_VALIDATION_H_
#define NETVIGIL_COLLECTOR_INGEST_VALIDATION_H_

#include <cstddef>

#include "absl/status/status.h"
#include "netvigil/v1/agent.pb.h"

namespace netvigil::collector {

struct Limits {
  size_t max_name = 64;           // agent names: [A-Za-z0-9._-]
  size_t max_short_string = 256;  // versions, boot ids, states, targets
  size_t max_path = 4096;
  size_t max_addresses = 64;
  size_t max_hops = 64;
  size_t max_sockets = 200'000;
  size_t max_file_entries = 500'000;
  size_t max_message_bytes = 64 << 20;
  // Results may be produced up to this far in the future (clock skew) and
  // this far in the past (a long outage spooled on the agent).
  int64_t max_future_skew_s = 300;
  int64_t max_age_s = 366LL * 24 * 3600;
};

const Limits& DefaultLimits();

// A valid agent name: 1..64 of [A-Za-z0-9._-], not starting with '.' or '-'.
absl::Status ValidateAgentName(const std::string& name, const Limits& limits);
absl::Status ValidateHello(const v1::Hello& hello, const Limits& limits);
absl::Status ValidateHeartbeat(const v1::Heartbeat& hb, const Limits& limits);
// `now_unix_s` bounds produced_at.
absl::Status ValidateResult(const v1::Result& result, int64_t now_unix_s,
                            const Limits& limits);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_INGEST_VALIDATION_H_
