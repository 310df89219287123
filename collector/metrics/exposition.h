// Prometheus text exposition format 0.0.4: metric families rendered as the
// page /metrics serves, with HELP and TYPE lines and escaped label values.
// Pure functions; thread-safe.
#ifndef NETVIGIL_COLLECTOR_METRICS_EXPOSITION_H_
#define NETVIGIL_COLLECTOR_METRICS_EXPOSITION_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace netvigil::collector::metrics {

struct Sample {
  // Appended to the family's name: "" for a gauge or counter sample,
  // "_bucket", "_sum" or "_count" for a histogram's.
  std::string suffix;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

struct Family {
  std::string name;  // [a-zA-Z_:][a-zA-Z0-9_:]*, checked by Render
  std::string help;
  std::string type;  // "counter", "gauge" or "histogram"
  std::vector<Sample> samples;
};

// A label value as the format wants it inside double quotes: backslash,
// double quote and line feed escaped (\\ \" \n), and bytes that are not
// UTF-8 first written as \xNN (common/utf8.h's ToValidUtf8, the notation
// the CLI and the alert log use), so a hostile agent name cannot end the
// value, start a new line or break the page's encoding.
std::string EscapeLabelValue(absl::string_view value);

// HELP text: backslash and line feed escaped.
std::string EscapeHelp(absl::string_view help);

// A sample value: NaN, +Inf, -Inf, or the shortest text that reads back to
// the same double.
std::string FormatValue(double v);

// The whole page. A family or label with a name the format does not allow
// is a programming error: it is skipped (never a broken page).
std::string Render(const std::vector<Family>& families);

}  // namespace netvigil::collector::metrics

#endif  // NETVIGIL_COLLECTOR_METRICS_EXPOSITION_H_
