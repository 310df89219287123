#include "collector/cli/format.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/escape.h"
#include "common/proto_time.h"
#include "google/protobuf/util/time_util.h"

namespace netvigil::cli {

std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& cells) {
  // Every cell goes through the one escaping (common/escape.h), once, here:
  // agents control most cells, and a newline or an ESC in one would forge a
  // row or take over the terminal. Widths are of the escaped text.
  std::vector<std::vector<std::string>> rows;
  rows.reserve(cells.size());
  for (const auto& r : cells) {
    std::vector<std::string>& shown = rows.emplace_back();
    shown.reserve(r.size());
    for (const std::string& cell : r) shown.push_back(Printable(cell));
  }
  std::vector<size_t> width(header.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  };
  measure(header);
  for (const auto& r : rows) measure(r);
  std::string out;
  auto emit = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < width.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      if (i + 1 == width.size()) {
        line += cell;
      } else {
        line += cell + std::string(width[i] - cell.size() + 2, ' ');
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  };
  emit(header);
  for (const auto& r : rows) emit(r);
  return out;
}

std::string HumanAgo(const google::protobuf::Timestamp& t, absl::Time now) {
  if (t.seconds() == 0 && t.nanos() == 0) return "never";
  const absl::Time then = FromProtoTime(t);
  absl::Duration d = now - then;
  const bool future = d < absl::ZeroDuration();
  if (future) d = -d;
  std::string amount;
  if (d < absl::Seconds(5)) return "just now";
  if (d < absl::Minutes(1)) {
    amount = absl::StrCat(absl::ToInt64Seconds(d), " s");
  } else if (d < absl::Hours(1)) {
    amount = absl::StrCat(absl::ToInt64Minutes(d), " min");
  } else if (d < absl::Hours(48)) {
    amount = absl::StrCat(absl::ToInt64Hours(d), " h");
  } else {
    amount = absl::StrCat(absl::ToInt64Hours(d) / 24, " days");
  }
  return future ? absl::StrCat("in ", amount) : absl::StrCat(amount, " ago");
}

std::string HumanBitrate(double bps) {
  if (bps < 1e3) return absl::StrFormat("%.0f bit/s", bps);
  if (bps < 1e6) return absl::StrFormat("%.1f kbit/s", bps / 1e3);
  if (bps < 1e9) return absl::StrFormat("%.1f Mbit/s", bps / 1e6);
  return absl::StrFormat("%.1f Gbit/s", bps / 1e9);
}

std::string Percent(double p) { return absl::StrFormat("%.1f%%", p); }

std::string Millis(double ms) {
  if (ms < 10) return absl::StrFormat("%.2f ms", ms);
  if (ms < 1000) return absl::StrFormat("%.1f ms", ms);
  return absl::StrFormat("%.0f ms", ms);
}

}  // namespace netvigil::cli
