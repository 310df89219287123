// The short table of one speed test (iperf3 client), as `netvigil-agent
// probe speed` and `netvigil probe HOST speed PEER` print it. Thread-safe
// (pure).
#ifndef NETVIGIL_COMMON_REPORT_SPEED_TABLE_H_
#define NETVIGIL_COMMON_REPORT_SPEED_TABLE_H_

#include <string>

#include "netvigil/v1/probes.pb.h"

namespace netvigil::report {

// A line naming the server, then one row per direction tested (sent,
// received, retransmits; for UDP jitter and loss), or "FAILED: reason".
std::string FormatSpeedTable(const v1::SpeedResult& result);

}  // namespace netvigil::report

#endif  // NETVIGIL_COMMON_REPORT_SPEED_TABLE_H_
