#include "common/report/human_text.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/human_units.h"
#include "common/proto_time.h"

namespace netvigil::report {
std::string AbsoluteTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone());
}

std::string AbsoluteTime(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "never";
  return AbsoluteTime(FromProtoTime(t));
}

std::string HumanizeDurations(const std::string& text) {
  std::string out;
  for (absl::string_view token : absl::StrSplit(text, ' ')) {
    // Punctuation around a duration stays: "(1m56.98s)," keeps "(" and ")".
    size_t b = 0, e = token.size();
    while (b < e && !absl::ascii_isalnum(token[b])) ++b;
    while (e > b && !absl::ascii_isalnum(token[e - 1])) --e;
    absl::string_view core = token.substr(b, e - b);
    absl::Duration d;
    // A bare "0" parses as a duration too; a count is not one.
    bool is_duration =
        !core.empty() && absl::ascii_isdigit(core[0]) &&
        core.find_first_of("hmsun") != absl::string_view::npos &&
        core.find_first_not_of("0123456789.hmsun") == absl::string_view::npos &&
        absl::ParseDuration(core, &d);
    std::string piece(token);
    if (is_duration) {
      piece =
          absl::StrCat(token.substr(0, b), HumanDuration(d), token.substr(e));
    }
    out += piece;
    out += ' ';
  }
  if (!out.empty()) out.pop_back();
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

}  // namespace netvigil::report
