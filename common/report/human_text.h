// Times and figures as people read them in reports: "3 min ago",
// "2026-12-05 13:10:04 UTC", "94.1 Mbit/s", "12.5%", "0.42 ms". Thread-safe
// (pure functions).
#ifndef NETVIGIL_COMMON_REPORT_HUMAN_TEXT_H_
#define NETVIGIL_COMMON_REPORT_HUMAN_TEXT_H_

#include <string>

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace netvigil::report {

// "2026-12-05 13:10:04 UTC": times for people are UTC, as in the alert log
// and the collector's logs, so they compare at a glance. "never" if unset.
std::string AbsoluteTime(const google::protobuf::Timestamp& t);
std::string AbsoluteTime(absl::Time t);

// Rewrites every duration absl printed inside `text` ("1m56.983384057s")
// the way HumanDuration says it ("1m57s"). For notices written elsewhere
// in the collector, so a person never reads nanoseconds.
std::string HumanizeDurations(const std::string& text);

// "just now", "42 s ago", "3 min ago", "5 h ago", "2 days ago"; "never" for
// an unset time; "in 3 min" for a time ahead of `now`.
std::string HumanAgo(const google::protobuf::Timestamp& t, absl::Time now);

// "940 bit/s", "12.3 kbit/s", "94.1 Mbit/s", "17.6 Gbit/s".
std::string HumanBitrate(double bits_per_second);

// "0.0%", "12.5%".
std::string Percent(double p);

// "0.42 ms", "12.3 ms", "1204 ms".
std::string Millis(double ms);

}  // namespace netvigil::report

#endif  // NETVIGIL_COMMON_REPORT_HUMAN_TEXT_H_
