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

// The width every table and note is laid out for: a terminal of 100
// columns. Fixed rather than read from the terminal, so that output piped to
// a file or a mail looks the same as on the screen and goldens hold.
inline constexpr size_t kPageWidth = 100;

// FormatTable, with the last column wrapped at spaces so that no line is
// wider than `width` (continuation lines leave the other columns empty). A
// word wider than the room stays whole on a line of its own: no word is
// ever cut. The last column gets at least 24 columns even if that
// overflows `width`.
std::string FormatTableWrapped(
    const std::vector<std::string>& header,
    const std::vector<std::vector<std::string>>& rows,
    size_t width = kPageWidth);

// `text`, shown as common/escape.h's Printable(text) (agents write most
// of what is wrapped), broken at spaces into lines of at most `width`
// columns, each line after the first starting with `indent` spaces; every line
// ends in "\n".
std::string WrapText(const std::string& text, size_t width = kPageWidth,
                     size_t indent = 0);

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

}  // namespace netvigil::cli

#endif  // NETVIGIL_COLLECTOR_CLI_FORMAT_H_
