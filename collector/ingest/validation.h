// Checks every message an agent sends against documented limits before
// anything is written, and binds it to its sender and plan. Limits are generous
// for a home LAN and tight enough that a lying peer cannot make the collector
// allocate or store without bound. Beyond the limits, whatever passes must be
// storable, or the agent would resend it forever: no string holds a NUL, every
// enum holds a value this collector knows, every time is one
// google.protobuf.Timestamp allows. Thread-safe (pure functions).
#ifndef NETVIGIL_COLLECTOR_INGEST_VALIDATION_H_
#define NETVIGIL_COLLECTOR_INGEST_VALIDATION_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netvigil/v1/agent.pb.h"

namespace netvigil::collector {

// The one limit on sequence numbers, everywhere they appear (result.seq, a
// gap's range, hello.next_seq): 1 .. 2^62-1. Far above what an agent can
// use up, and it leaves PostgreSQL's bigint and every seq+1 room.
inline constexpr uint64_t kMaxSeq = (uint64_t{1} << 62) - 1;

struct Limits {
  size_t max_name = 64;           // agent names: [A-Za-z0-9._-]
  size_t max_short_string = 256;  // versions, boot ids, states, targets
  size_t max_path = 4096;
  size_t max_addresses = 64;
  size_t max_hops = 64;
  size_t max_sockets = 200'000;
  size_t max_file_entries = 500'000;
  size_t max_message_bytes = 64 << 20;
  // The window of believable times around the collector's receipt of a
  // result: up to this far in the future (clock skew) and this far in the
  // past (a long outage spooled on the agent). Outside it the agent's clock
  // is not believed (see NormaliseResultTimes).
  int64_t max_future_skew_s = 300;
  int64_t max_age_s = 366LL * 24 * 3600;
  // Figures: milliseconds (RTTs, jitter, durations) and seconds.
  double max_ms = 1e8;
  double max_seconds = 1e6;
  double max_bps = 1e13;
};

const Limits& DefaultLimits();

// A valid agent name: 1..64 of [A-Za-z0-9._-], not starting with '.' or '-'.
absl::Status ValidateAgentName(const std::string& name, const Limits& limits);
absl::Status ValidateHello(const v1::Hello& hello, const Limits& limits);
absl::Status ValidateHeartbeat(const v1::Heartbeat& hb, const Limits& limits);
// `now_unix_s` (the receipt time) bounds produced_at and every other time
// in the result to the window of Limits.
absl::Status ValidateResult(const v1::Result& result, int64_t now_unix_s,
                            const Limits& limits);

// Judges the result's times by the collector's clock where the agent's is
// not believable. `agent_offset` is the agent's wall clock minus the
// collector's as its heartbeats measured it (zero if unknown). Two steps:
//  1. An agent whose clock is off by more than max_future_skew_s (a bad NTP
//     step, a dead RTC) has every time in the result moved back by that
//     offset, so its results land when they happened on the collector's
//     clock.
//  2. A produced_at that is then still missing or outside the window around
//     `receipt` becomes `receipt`, and the other times move with it (their
//     spacing is the agent's truth).
// Returns how far produced_at moved: zero when untouched, InfiniteDuration
// when it was missing or not a time. Times still outside the window are
// left for ValidateResult to refuse.
absl::Duration NormaliseResultTimes(v1::Result* result, absl::Time receipt,
                                    absl::Duration agent_offset,
                                    const Limits& limits);

// What a result is checked against besides its own content: who sent it
// (from its certificate) and the plan the collector gave that agent.
struct SenderContext {
  std::string agent;
  bool speed_enabled = false;
  // The highest number the agent is known to have given out: its hello's
  // next_seq - 1, or the highest seq it has sent on this stream since.
  uint64_t highest_seq = 0;
  // How far past that a gap's range may reach: a spool's open gap grows
  // while the agent produces (2^20 numbers: days of results of a busy
  // agent), and nothing beyond.
  static constexpr uint64_t kGapSlack = uint64_t{1} << 20;
};

// A speed result must name its sender as the client, and arrive only while
// speed tests are in the sender's plan. A gap's range must stay within the
// numbers the agent can have given out (no "2^60 results lost").
absl::Status CheckBinding(const v1::Result& result, const SenderContext& ctx);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_INGEST_VALIDATION_H_
