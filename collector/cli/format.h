// Formatting for people: aligned tables, human times ("3 min ago") and units
// ("94.1 Mbit/s"). Thread-safe (pure functions).
#ifndef NETVIGIL_COLLECTOR_CLI_FORMAT_H_
#define NETVIGIL_COLLECTOR_CLI_FORMAT_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace netvigil::cli {

// Columns padded to the widest cell, two spaces apart, header first; the
// last column is not padded. Each cell is shown as common/escape.h's
// Printable(cell): no cell can break a line or hold a terminal control.
std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

// "just now", "42 s ago", "3 min ago", "5 h ago", "2 days ago"; "never" for
// an unset time; "in 3 min" for a time ahead of `now`.
std::string HumanAgo(const google::protobuf::Timestamp& t, absl::Time now);

// "940 bit/s", "12.3 kbit/s", "94.1 Mbit/s", "17.6 Gbit/s".
std::string HumanBitrate(double bits_per_second);

// "0.0%", "12.5%".
std::string Percent(double p);

// "0.42 ms", "12.3 ms", "1204 ms".
std::string Millis(double ms);

}  // namespace netvigil::cli

#endif  // NETVIGIL_COLLECTOR_CLI_FORMAT_H_
