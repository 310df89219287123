// Figures in the words a person reads: "1m57s" rather than absl's
// "1m56.983384057s", "47.9 Mbit/s" rather than "4.79e+07 bit/s". Used by the
// CLI's tables and by every string the collector writes for people (alert
// evidence, notices), so one figure reads the same wherever it appears.
// Thread-safe (pure functions).
#ifndef NETVIGIL_COMMON_HUMAN_UNITS_H_
#define NETVIGIL_COMMON_HUMAN_UNITS_H_

#include <string>

#include "absl/time/time.h"

namespace netvigil {

// Two units at most, rounded to the smaller one: "0s", "350ms", "4s",
// "1m57s", "2h5m", "3d4h". Under 1 s in whole milliseconds; under 10 s
// with a tenth ("4.2s"). Negative durations get a "-"; an infinite one is
// "forever".
std::string HumanDuration(absl::Duration d);

// Three significant digits in the largest unit below the value:
// "940 bit/s", "12.3 kbit/s", "47.9 Mbit/s", "1.00 Gbit/s", "17.6 Gbit/s".
// Not a number or negative: "?".
std::string HumanBitrate3(double bits_per_second);

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_HUMAN_UNITS_H_
