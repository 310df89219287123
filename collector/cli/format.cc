#include "collector/cli/format.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/escape.h"
#include "common/human_units.h"
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

namespace {

// `text` in lines of at most `first_room` columns, then `rest_room`, broken
// at spaces; the spaces inside a line are kept as they were. A word wider
// than its line stays whole on a line of its own: a cut word is worse than
// a long line.
std::vector<std::string> WrapWords(absl::string_view text, size_t first_room,
                                   size_t rest_room) {
  std::vector<std::string> lines;
  std::string line;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (start < text.size() && text[start] == ' ') ++start;
    if (start == text.size()) break;  // trailing spaces
    size_t end = start;
    while (end < text.size() && text[end] != ' ') ++end;
    const absl::string_view spaces = text.substr(i, start - i);
    const absl::string_view word = text.substr(start, end - start);
    const size_t room = lines.empty() ? first_room : rest_room;
    if (line.empty()) {
      line = std::string(word);
    } else if (line.size() + spaces.size() + word.size() <= room) {
      absl::StrAppend(&line, spaces, word);
    } else {
      lines.push_back(std::move(line));
      line = std::string(word);
    }
    i = end;
  }
  if (!line.empty() || lines.empty()) lines.push_back(std::move(line));
  return lines;
}

}  // namespace

std::string FormatTableWrapped(
    const std::vector<std::string>& header,
    const std::vector<std::vector<std::string>>& rows, size_t width) {
  if (header.empty()) return FormatTable(header, rows);
  const size_t last = header.size() - 1;
  size_t prefix = 0;
  for (size_t i = 0; i < last; ++i) {
    size_t w = header[i].size();
    for (const auto& r : rows) {
      if (i < r.size()) w = std::max(w, r[i].size());
    }
    prefix += w + 2;
  }
  const size_t room = width > prefix + 24 ? width - prefix : 24;
  std::vector<std::vector<std::string>> wrapped;
  for (const auto& r : rows) {
    if (r.size() <= last) {
      wrapped.push_back(r);
      continue;
    }
    std::vector<std::string> pieces = WrapWords(r[last], room, room);
    std::vector<std::string> first = r;
    first[last] = pieces[0];
    wrapped.push_back(std::move(first));
    for (size_t i = 1; i < pieces.size(); ++i) {
      std::vector<std::string> more(header.size());
      more[last] = pieces[i];
      wrapped.push_back(std::move(more));
    }
  }
  return FormatTable(header, wrapped);
}

std::string WrapText(const std::string& raw, size_t width, size_t indent) {
  const std::string text = Printable(raw);
  // Leading spaces are the first line's own indent.
  const size_t lead = std::min(text.find_first_not_of(' '), text.size());
  const std::vector<std::string> lines =
      WrapWords(absl::string_view(text).substr(lead),
                width > lead + 20 ? width - lead : 20,
                width > indent + 20 ? width - indent : 20);
  std::string out = std::string(lead, ' ') + lines[0] + "\n";
  for (size_t i = 1; i < lines.size(); ++i) {
    absl::StrAppend(&out, std::string(indent, ' '), lines[i], "\n");
  }
  return out;
}

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

}  // namespace netvigil::cli
