#include "common/report/query_views.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/escape.h"
#include "common/proto_time.h"
#include "common/report/human_text.h"
#include "common/report/path_report.h"
#include "common/report/table.h"
#include "common/wire_kinds.h"
#include "google/protobuf/util/json_util.h"

namespace netvigil::report {
std::string ToJson(const google::protobuf::Message& msg) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.preserve_proto_field_names = false;
  (void)google::protobuf::util::MessageToJsonString(msg, &out, opts);
  return out.empty() || out.back() != '\n' ? out + "\n" : out;
}

namespace {

// An agent's STATE column: revoked outranks online/offline (a revoked agent
// is offline anyway, and that it cannot come back is the news).
std::string AgentState(const v1::AgentInfo& a) {
  if (a.revoked()) return "revoked";
  return a.online() ? "online" : "offline";
}

}  // namespace

std::string RenderAgents(const v1::ListAgentsResponse& resp, absl::Time now) {
  std::vector<std::vector<std::string>> rows;
  // The agent's clock against the collector's ("+2h": ahead), rounded to
  // the second; "-" while offline or before its first heartbeat.
  auto clock = [](const v1::AgentInfo& a) -> std::string {
    if (!a.has_clock_offset_ms()) return "-";
    const absl::Duration d = absl::Milliseconds(a.clock_offset_ms());
    const absl::Duration size = absl::Floor(
        absl::AbsDuration(d) + absl::Milliseconds(500), absl::Seconds(1));
    if (size == absl::ZeroDuration()) return "0s";
    return absl::StrCat(d > absl::ZeroDuration() ? "+" : "-",
                        absl::FormatDuration(size));
  };
  for (const v1::AgentInfo& a : resp.agents()) {
    rows.push_back(
        {a.name(),
         a.addresses().empty() ? "-" : absl::StrJoin(a.addresses(), ","),
         a.version().empty() ? "-" : a.version(), AgentState(a),
         HumanAgo(a.last_seen(), now), clock(a)});
  }
  if (rows.empty()) return "no agents have connected yet\n";
  return FormatTable(
      {"NAME", "ADDRESS", "VERSION", "STATE", "LAST SEEN", "CLOCK"}, rows);
}

namespace {

std::string ProtoName(v1::Transport t) {
  return t == v1::TRANSPORT_TCP ? "tcp" : t == v1::TRANSPORT_UDP ? "udp" : "?";
}

std::string Endpoint(const std::string& addr, uint32_t port) {
  if (addr.empty() && port == 0) return "-";
  const std::string a = addr.empty() ? "*" : addr;
  const std::string shown =
      a.find(':') != std::string::npos ? absl::StrCat("[", a, "]") : a;
  return port == 0 ? shown : absl::StrCat(shown, ":", port);
}

std::string KindName(v1::FileAccessKind k) {
  switch (k) {
    case v1::FILE_ACCESS_FD:
      return "fd";
    case v1::FILE_ACCESS_CWD:
      return "cwd";
    case v1::FILE_ACCESS_EXE:
      return "exe";
    case v1::FILE_ACCESS_MMAP:
      return "mmap";
    case v1::FILE_ACCESS_ROOT:
      return "root";
    default:
      return "?";
  }
}

}  // namespace

namespace {

std::string SeverityWord(v1::Severity s) {
  const std::string& name = v1::Severity_Name(s);
  return name.size() > 9 ? name.substr(9) : "UNSPECIFIED";
}

// A pair's place in the matrix and what a person should know about it.
struct PairView {
  const v1::SpeedCell* cell = nullptr;
  bool slow = false;
  double usual_bps = 0;  // median of the pairs sharing a host with it
};

// Slow: below half the median of the other measured pairs that share its
// sender or its receiver (at least two of them). The matrix carries no
// baseline of its own, so "usual" is what the same hosts reach with their
// other peers: a host's bad link shows on its row and column alike, one bad
// pair stands out on both.
// Linear in the cells per host: a mesh of 200 hosts has 39,800 pairs.
std::map<std::pair<std::string, std::string>, PairView> ViewPairs(
    const v1::SpeedMatrixResponse& m) {
  std::map<std::pair<std::string, std::string>, PairView> out;
  std::map<std::string, std::vector<const v1::SpeedCell*>> measured;
  for (const auto& c : m.cells()) {
    out[{c.client(), c.server()}].cell = &c;
    if (c.outcome() != v1::SPEED_OUTCOME_OK) continue;
    measured[c.client()].push_back(&c);
    if (c.server() != c.client()) measured[c.server()].push_back(&c);
  }
  std::vector<double> others;
  for (auto& [key, v] : out) {
    if (v.cell->outcome() != v1::SPEED_OUTCOME_OK) continue;
    const auto& [a, b] = key;
    others.clear();
    for (const v1::SpeedCell* c : measured[a]) {
      if (c != v.cell) others.push_back(c->bps());
    }
    for (const v1::SpeedCell* c : measured[b]) {
      // A cell between a and b is in a's list already.
      const bool has_a = c->client() == a || c->server() == a;
      if (c != v.cell && !has_a) others.push_back(c->bps());
    }
    if (others.size() < 2) continue;
    const size_t n = others.size();
    std::sort(others.begin(), others.end());
    const double median =
        n % 2 ? others[n / 2] : (others[n / 2 - 1] + others[n / 2]) / 2;
    v.usual_bps = median;
    v.slow = v.cell->bps() < 0.5 * median;
  }
  return out;
}

std::string PairCell(const PairView& v) {
  switch (v.cell->outcome()) {
    case v1::SPEED_OUTCOME_OK:
      return HumanBitrate(v.cell->bps()) + (v.slow ? " !" : "");
    case v1::SPEED_OUTCOME_SKIPPED:
      return "skipped";
    default:
      return "failed";
  }
}

// One line on a pair that is not fine, or "" for a fine one.
std::string PairNote(const PairView& v, absl::Time now) {
  const v1::SpeedCell& c = *v.cell;
  const std::string who = absl::StrCat(c.client(), " to ", c.server());
  if (c.outcome() == v1::SPEED_OUTCOME_OK) {
    if (!v.slow) return "";
    return absl::StrCat("! ", who, ": ", HumanBitrate(c.bps()),
                        ", under half the ", HumanBitrate(v.usual_bps),
                        " their other pairs reach (", HumanAgo(c.at(), now),
                        ")");
  }
  const char* what =
      c.outcome() == v1::SPEED_OUTCOME_SKIPPED ? "skipped" : "failed";
  return absl::StrCat(who, " ", what, " ", HumanAgo(c.at(), now), ": ",
                      c.error().empty() ? "no reason given" : c.error());
}

// "measured 3 min ago" or "measured 3 min to 2 h ago", from the cells' times.
std::string MeasuredRange(const v1::SpeedMatrixResponse& m, absl::Time now) {
  absl::Time newest = absl::InfinitePast(), oldest = absl::InfiniteFuture();
  for (const auto& c : m.cells()) {
    if (c.at().seconds() == 0 && c.at().nanos() == 0) continue;
    const absl::Time t = FromProtoTime(c.at());
    newest = std::max(newest, t);
    oldest = std::min(oldest, t);
  }
  if (newest == absl::InfinitePast()) return "";
  const std::string a = HumanAgo(ToProtoTime(newest), now);
  const std::string b = HumanAgo(ToProtoTime(oldest), now);
  if (a == b) return absl::StrCat("measured ", a, "\n");
  // "just now to 2 h ago" reads oddly; "2 h ago to just now" reads fine.
  return absl::StrCat("measured between ", b, " and ", a, "\n");
}

bool FitsPage(const std::string& table) {
  for (absl::string_view line : absl::StrSplit(table, '\n')) {
    if (line.size() > kPageWidth) return false;
  }
  return true;
}

std::string Notices(const google::protobuf::RepeatedPtrField<std::string>& n) {
  std::string out;
  for (const auto& text : n) {
    out += WrapText(absl::StrCat("note: ", HumanizeDurations(text)), kPageWidth,
                    6);
  }
  return out;
}

// The speed section. The matrix when it fits a page; otherwise, in the
// overview, a count and the pairs that need a look (`netvigil speed matrix`
// lists them all), and for `speed matrix` one line per pair.
std::string RenderSpeed(const v1::SpeedMatrixResponse& m, absl::Time now,
                        bool overview) {
  if (m.cells().empty()) return "no speed tests yet\n" + Notices(m.notices());
  const auto pairs = ViewPairs(m);
  std::vector<std::string> header = {"FROM \\ TO"};
  // Host names are agents' words: a header is shown as given, so they are
  // escaped here.
  for (const auto& h : m.hosts()) header.push_back(Printable(h));
  std::vector<std::vector<std::string>> rows;
  for (const auto& from : m.hosts()) {
    std::vector<std::string> row = {from};
    for (const auto& to : m.hosts()) {
      auto it = pairs.find({from, to});
      row.push_back(from == to          ? "-"
                    : it == pairs.end() ? "not yet"
                                        : PairCell(it->second));
    }
    rows.push_back(std::move(row));
  }
  std::string notes;
  size_t fine = 0, slow = 0, failed = 0, skipped = 0, untested = 0, total = 0;
  std::vector<std::vector<std::string>> attention, every;
  for (const auto& from : m.hosts()) {
    for (const auto& to : m.hosts()) {
      if (from == to) continue;
      ++total;
      auto it = pairs.find({from, to});
      if (it == pairs.end()) {
        ++untested;
        attention.push_back({from, to, "not yet", "-", "no test yet"});
        every.push_back(attention.back());
        continue;
      }
      const PairView& v = it->second;
      const std::string note = PairNote(v, now);
      if (!note.empty()) notes += WrapText(note, kPageWidth, 2);
      std::vector<std::string> line = {
          from, to, PairCell(v), HumanAgo(v.cell->at(), now),
          v.cell->outcome() == v1::SPEED_OUTCOME_OK
              ? (v.slow ? absl::StrCat("under half the usual ",
                                       HumanBitrate(v.usual_bps))
                        : "")
              : v.cell->error()};
      every.push_back(line);
      if (v.cell->outcome() == v1::SPEED_OUTCOME_SKIPPED) {
        ++skipped;
      } else if (v.cell->outcome() != v1::SPEED_OUTCOME_OK) {
        ++failed;
      } else if (v.slow) {
        ++slow;
      } else {
        ++fine;
        continue;
      }
      attention.push_back(std::move(line));
    }
  }
  // Pairs of hosts that left the matrix's host list are not in it; they
  // have no row to sit in.
  std::string out;
  const std::string matrix = FormatTable(header, rows);
  if (FitsPage(matrix)) {
    out = matrix + MeasuredRange(m, now) + notes;
  } else if (overview) {
    out = WrapText(absl::StrCat(
        total, " pairs: ", fine, " fine, ", slow, " slow, ", failed,
        " failed, ", skipped, " skipped, ", untested,
        " not tested yet (the matrix of ", m.hosts_size(),
        " hosts is wider than the page; `netvigil speed matrix` lists every "
        "pair)"));
    // The overview stays an overview: the first pairs that need a look,
    // failures and slow ones before the untested (which a new mesh has by
    // the hundred).
    constexpr size_t kShown = 20;
    std::stable_partition(
        attention.begin(), attention.end(),
        [](const std::vector<std::string>& r) { return r[2] != "not yet"; });
    const size_t more =
        attention.size() > kShown ? attention.size() - kShown : 0;
    attention.resize(attention.size() - more);
    if (!attention.empty()) {
      out += FormatTableWrapped({"FROM", "TO", "SPEED", "MEASURED", "WHY"},
                                attention);
    }
    if (more > 0) {
      out += absl::StrCat("... and ", more,
                          " more (`netvigil speed matrix` lists them)\n");
    }
  } else {
    out =
        FormatTableWrapped({"FROM", "TO", "SPEED", "MEASURED", "NOTE"}, every);
  }
  return out + Notices(m.notices());
}

// "-", or how many open alerts involve `host` and the worst severity.
std::string HostAlerts(const v1::OverviewResponse& resp,
                       const std::string& host) {
  int count = 0;
  v1::Severity worst = v1::SEVERITY_UNSPECIFIED;
  for (const auto& a : resp.open_alerts()) {
    for (const auto& h : a.hosts()) {
      if (h != host) continue;
      ++count;
      worst = std::max(worst, a.severity());
      break;
    }
  }
  if (count == 0) return "-";
  return absl::StrCat(count, " (", absl::AsciiStrToLower(SeverityWord(worst)),
                      ")");
}

// Alerts in the order a person deals with them: the most severe first, and
// among equals the newest first.
std::vector<const v1::Alert*> BySeverity(
    const google::protobuf::RepeatedPtrField<v1::Alert>& alerts) {
  std::vector<const v1::Alert*> out;
  for (const auto& a : alerts) out.push_back(&a);
  std::stable_sort(out.begin(), out.end(),
                   [](const v1::Alert* x, const v1::Alert* y) {
                     if (x->severity() != y->severity()) {
                       return x->severity() > y->severity();
                     }
                     const absl::Time tx = FromProtoTime(x->first_seen());
                     const absl::Time ty = FromProtoTime(y->first_seen());
                     if (tx != ty) return tx > ty;
                     return x->id() > y->id();
                   });
  return out;
}

}  // namespace

std::string RenderSpeedMatrix(const v1::SpeedMatrixResponse& resp,
                              absl::Time now) {
  return RenderSpeed(resp, now, /*overview=*/false);
}

std::string RenderOverview(const v1::OverviewResponse& resp, absl::Time now) {
  const bool stamped =
      resp.generated_at().seconds() != 0 || resp.generated_at().nanos() != 0;
  std::string out = absl::StrCat(
      "netvigil overview as of ",
      stamped ? AbsoluteTime(resp.generated_at()) : AbsoluteTime(now), "\n\n");
  int online = 0;
  for (const auto& h : resp.hosts()) online += h.agent().online() ? 1 : 0;
  out +=
      absl::StrCat("HOSTS (", online, " of ", resp.hosts_size(), " online)\n");
  std::vector<std::vector<std::string>> rows;
  std::string errors;
  for (const auto& h : resp.hosts()) {
    const auto& a = h.agent();
    const std::string alerts = HostAlerts(resp, a.name());
    if (h.paths().empty()) {
      rows.push_back({a.name(), AgentState(a), HumanAgo(a.last_seen(), now),
                      alerts, "-", "-", "-", "-", "-"});
    }
    for (int i = 0; i < h.paths_size(); ++i) {
      const auto& p = h.paths(i);
      const bool first = i == 0;
      rows.push_back(
          {first ? a.name() : "", first ? AgentState(a) : "",
           first ? HumanAgo(a.last_seen(), now) : "", first ? alerts : "",
           p.target(), p.error().empty() ? Percent(p.loss_percent()) : "error",
           p.error().empty() && p.destination_reached() ? Millis(p.avg_ms())
                                                        : "-",
           p.hop_count() ? std::to_string(p.hop_count()) : "-",
           HumanAgo(p.at(), now)});
      if (!p.error().empty()) {
        errors += WrapText(absl::StrCat("error: ", a.name(), " to ", p.target(),
                                        ": ", p.error()),
                           kPageWidth, 2);
      }
    }
  }
  if (rows.empty()) {
    out += "no agents have connected yet\n";
  } else {
    out += FormatTable({"HOST", "STATE", "LAST SEEN", "ALERTS", "TARGET",
                        "LOSS", "AVG", "HOPS", "MEASURED"},
                       rows);
    out += errors;
  }
  out +=
      "\nSPEED (latest test of each pair: FROM sends, TO counts what "
      "arrived; ! = slow)\n";
  out += RenderSpeed(resp.speed(), now, /*overview=*/true);
  out += "\nOPEN ALERTS\n";
  if (resp.open_alerts().empty()) {
    out += "none\n";
  } else {
    // Each alert's summary goes on a line of its own under its row: beside
    // five columns a sentence gets a third of the page and wraps to three
    // lines, under them it gets the page.
    std::vector<std::vector<std::string>> arows;
    std::vector<const v1::Alert*> sorted = BySeverity(resp.open_alerts());
    for (const v1::Alert* al : sorted) {
      arows.push_back({std::to_string(al->id()), SeverityWord(al->severity()),
                       al->kind(), HumanAgo(al->first_seen(), now),
                       absl::StrJoin(al->hosts(), ", ")});
    }
    const std::string table =
        FormatTableWrapped({"ID", "SEVERITY", "KIND", "SINCE", "HOSTS"}, arows);
    // FormatTableWrapped gives the header, then each row's first line and
    // its continuations (which start with a space: the ID column is empty).
    size_t next = 0;
    bool header = true;
    for (absl::string_view line :
         absl::StrSplit(table, '\n', absl::SkipEmpty())) {
      const bool continuation = !line.empty() && line[0] == ' ';
      if (!header && !continuation && next > 0) {
        out += WrapText("    " + sorted[next - 1]->summary(), kPageWidth, 4);
      }
      absl::StrAppend(&out, line, "\n");
      if (!header && !continuation) ++next;
      header = false;
    }
    if (next > 0) {
      out += WrapText("    " + sorted[next - 1]->summary(), kPageWidth, 4);
    }
  }
  google::protobuf::RepeatedPtrField<std::string> rest;
  for (const auto& n : resp.notices()) {
    // Speed notices are already under the matrix.
    bool shown = false;
    for (const auto& m : resp.speed().notices()) shown = shown || m == n;
    if (!shown) *rest.Add() = n;
  }
  out += Notices(rest);
  return out;
}

namespace {

// A socket fact's KIND, PROTO, LOCAL and REMOTE cells: a listener has no
// remote end and an outbound connection's local port is ephemeral (not
// kept).
std::vector<std::string> FactCells(const v1::SocketFact& f) {
  std::string kind = SocketKeyKindName(f.key_kind());
  if (kind.empty()) kind = "?";
  return {kind, ProtoName(f.proto()),
          f.key_kind() == v1::SOCKET_KEY_KIND_REMOTE
              ? "-"
              : Endpoint(f.local_address(), f.local_port()),
          f.key_kind() == v1::SOCKET_KEY_KIND_LISTENER
              ? "-"
              : Endpoint(f.remote_address(), f.remote_port())};
}

}  // namespace

std::string RenderSocketFacts(const v1::CurrentSocketsResponse& resp,
                              absl::Time now) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& f : resp.facts()) {
    std::vector<std::string> row = FactCells(f);
    row.push_back(f.exe());
    row.push_back(HumanAgo(f.first_seen(), now));
    rows.push_back(std::move(row));
  }
  if (rows.empty()) return "no sockets recorded for this host yet\n";
  return absl::StrCat("as of ", AbsoluteTime(resp.taken_at()), " (",
                      HumanAgo(resp.taken_at(), now), ")\n",
                      FormatTable({"KIND", "PROTO", "LOCAL", "REMOTE",
                                   "EXECUTABLE", "FIRST SEEN"},
                                  rows));
}

std::string RenderSocketChanges(const v1::SocketChangesResponse& resp,
                                absl::Time now) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : resp.changes()) {
    const auto& f = c.fact();
    std::vector<std::string> row = {HumanAgo(c.at(), now), c.change()};
    for (std::string& cell : FactCells(f)) row.push_back(std::move(cell));
    row.push_back(f.exe());
    rows.push_back(std::move(row));
  }
  if (rows.empty()) return "no socket changes in this period\n";
  return FormatTableWrapped(
      {"WHEN", "CHANGE", "KIND", "PROTO", "LOCAL", "REMOTE", "EXECUTABLE"},
      rows);
}

std::string RenderFileAccess(const v1::FileAccessResponse& resp,
                             absl::Time now) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& f : resp.facts()) {
    rows.push_back(
        {f.exe_deleted() ? absl::StrCat(f.exe(), " (deleted)") : f.exe(),
         std::to_string(f.uid()), KindName(f.kind()),
         f.deleted() ? absl::StrCat(f.path(), " (deleted)") : f.path(),
         // "in last scan" rather than "now": the scan may be minutes old,
         // and "just now" is what HumanAgo says of a few seconds.
         f.present() ? "in last scan" : HumanAgo(f.last_seen(), now),
         HumanAgo(f.first_seen(), now)});
  }
  if (rows.empty())
    return "no file access recorded under the watched folders\n";
  return FormatTable(
      {"EXECUTABLE", "UID", "KIND", "PATH", "LAST SEEN", "FIRST SEEN"}, rows);
}

namespace {

// A point's resolution in a table cell: "raw", "1h", "6h", "2d".
std::string ResolutionCell(v1::Resolution r, uint32_t bucket_seconds) {
  if (r == v1::RESOLUTION_RAW) return "raw";
  if (bucket_seconds % 86400 == 0)
    return absl::StrCat(bucket_seconds / 86400, "d");
  return absl::StrCat(bucket_seconds / 3600, "h");
}

// The line under a history table's heading that says its resolution.
template <typename Response>
std::string ResolutionLine(const Response& resp, size_t n) {
  const std::string points = absl::StrCat(n, n == 1 ? " point" : " points");
  switch (resp.resolution()) {
    case v1::RESOLUTION_MIXED:
      return absl::StrCat(
          points, ": ",
          ResolutionCell(v1::RESOLUTION_HOURLY, resp.bucket_seconds()),
          " aggregates before ", AbsoluteTime(resp.raw_since()),
          " (raw rows are kept retention.raw_days), raw from then on");
    case v1::RESOLUTION_HOURLY:
    case v1::RESOLUTION_COARSE:
      return absl::StrCat(
          points, ": aggregates of ",
          ResolutionCell(resp.resolution(), resp.bucket_seconds()),
          " each (median, spread, loss and extremes of the runs in them)");
    default:
      return absl::StrCat(points, ", raw");
  }
}

}  // namespace

std::string RenderSpeedHistory(const v1::SpeedHistoryResponse& resp,
                               absl::Time now) {
  std::vector<std::vector<std::string>> rows;
  // A response from a collector before resolutions has results only.
  google::protobuf::RepeatedPtrField<v1::SpeedHistoryPoint> legacy;
  const auto* points = &resp.points();
  if (resp.points().empty()) {
    for (const auto& r : resp.results()) {
      v1::SpeedHistoryPoint* p = legacy.Add();
      *p->mutable_at() = r.started_at();
      p->set_resolution(v1::RESOLUTION_RAW);
      *p->mutable_result() = r;
    }
    points = &legacy;
  }
  for (const auto& p : *points) {
    if (p.resolution() != v1::RESOLUTION_RAW) {
      const auto& a = p.aggregate();
      rows.push_back({HumanAgo(p.at(), now),
                      ResolutionCell(p.resolution(), a.bucket_seconds()),
                      absl::StrCat(a.ok_runs(), "/", a.runs(), " OK"),
                      a.ok_runs() > 0 ? HumanBitrate(a.median_bps()) : "-",
                      a.ok_runs() > 0 ? HumanBitrate(a.spread_bps()) : "-",
                      a.ok_runs() > 0
                          ? absl::StrCat(HumanBitrate(a.min_bps()), " - ",
                                         HumanBitrate(a.max_bps()))
                          : "-",
                      "", ""});
      continue;
    }
    const auto& r = p.result();
    rows.push_back({HumanAgo(r.started_at(), now), "raw",
                    v1::SpeedOutcome_Name(r.outcome()).substr(14),
                    r.outcome() == v1::SPEED_OUTCOME_OK
                        ? HumanBitrate(r.forward().received_bps())
                        : "-",
                    "",
                    r.reverse_figures().received_bps() > 0
                        ? HumanBitrate(r.reverse_figures().received_bps())
                        : "-",
                    std::to_string(r.forward().retransmits()), r.error()});
  }
  if (rows.empty()) return "no speed results for this pair in this period\n";
  return absl::StrCat(
      ResolutionLine(resp, rows.size()), "\n",
      FormatTableWrapped({"WHEN", "RES", "OUTCOME", "FORWARD", "SPREAD",
                          "REVERSE / RANGE", "RETRANS", "ERROR"},
                         rows));
}

std::string RenderPathHistory(const v1::PathHistoryResponse& resp,
                              absl::Time now) {
  if (resp.runs().empty()) return "no runs in this period\n";
  const v1::StoredPathRun& latest = *resp.runs().rbegin();
  std::string out;
  if (latest.resolution() == v1::RESOLUTION_RAW ||
      latest.resolution() == v1::RESOLUTION_AUTO) {
    out = FormatPathReport(latest.run(), latest.agent());
  }
  if (resp.runs_size() > 1 || latest.has_aggregate()) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& s : resp.runs()) {
      const auto& r = s.run();
      if (s.has_aggregate()) {
        const auto& a = s.aggregate();
        const bool reached = a.reached_runs() > 0;
        rows.push_back({HumanAgo(r.started_at(), now),
                        ResolutionCell(s.resolution(), a.bucket_seconds()),
                        std::to_string(a.runs()),
                        absl::StrCat(Percent(a.avg_loss_percent()), " (max ",
                                     Percent(a.max_loss_percent()), ")"),
                        reached ? Millis(a.median_ms()) : "-",
                        reached ? Millis(a.spread_ms()) : "-",
                        reached ? absl::StrCat(Millis(a.best_ms()), " - ",
                                               Millis(a.worst_ms()))
                                : "-",
                        ""});
        continue;
      }
      rows.push_back(
          {HumanAgo(r.started_at(), now), "raw", "1",
           r.error().empty() ? Percent(r.destination().loss_percent())
                             : "error",
           r.destination_reached() ? Millis(r.destination().avg_ms()) : "-", "",
           absl::StrCat(r.hops_size(), r.hops_size() == 1 ? " hop" : " hops"),
           r.error()});
    }
    if (!out.empty()) out += "\n";
    out += absl::StrCat(
        "HISTORY (", ResolutionLine(resp, resp.runs_size()), ")\n",
        FormatTableWrapped({"WHEN", "RES", "RUNS", "LOSS", "AVG/MEDIAN",
                            "SPREAD", "HOPS / RANGE", "ERROR"},
                           rows));
  }
  return out;
}

namespace {

std::string ScopeWord(v1::AlertScope s) {
  const std::string& name = v1::AlertScope_Name(s);
  return absl::AsciiStrToLower(name.size() > 12 ? name.substr(12) : "unknown");
}

constexpr int kEvidenceShown = 3;

}  // namespace

std::string RenderAlerts(const v1::ListAlertsResponse& resp, absl::Time now) {
  if (resp.alerts().empty()) return "no alerts\n";
  // One block per alert, not a table: a summary is a sentence, and with
  // nine columns beside it a table is wider than any terminal.
  std::string out;
  for (const v1::Alert* a : BySeverity(resp.alerts())) {
    if (!out.empty()) out += "\n";
    std::string state =
        a->has_resolved_at()
            ? absl::StrCat("resolved ", HumanAgo(a->resolved_at(), now))
            : "open";
    if (a->acknowledged()) {
      absl::StrAppend(&state, ", acknowledged",
                      a->acknowledged_by().empty()
                          ? ""
                          : absl::StrCat(" by ", a->acknowledged_by()));
    }
    out += WrapText(
        absl::StrCat("#", a->id(), " ", SeverityWord(a->severity()), " ",
                     a->kind(), " (", ScopeWord(a->scope()), ") on ",
                     absl::StrJoin(a->hosts(), ", "), ": ", state),
        kPageWidth, 2);
    out += WrapText("  " + a->summary(), kPageWidth, 2);
    out +=
        WrapText(absl::StrCat("  first seen ", AbsoluteTime(a->first_seen()),
                              " (", HumanAgo(a->first_seen(), now),
                              "), last seen ", HumanAgo(a->last_seen(), now)),
                 kPageWidth, 2);
    const int n = a->evidence_size();
    for (int i = std::max(0, n - kEvidenceShown); i < n; ++i) {
      const v1::Evidence& e = a->evidence(i);
      out += WrapText(absl::StrCat("  evidence ", AbsoluteTime(e.at()), " ",
                                   e.agent(), ": ", e.note()),
                      kPageWidth, 4);
    }
    if (n > kEvidenceShown) {
      out += absl::StrCat("  (", n - kEvidenceShown,
                          " older evidence: --json has it all)\n");
    }
  }
  return out;
}

std::string RenderAlertEvent(const v1::AlertEvent& e, absl::Time now) {
  const auto& a = e.alert();
  const bool stamped = e.at().seconds() != 0 || e.at().nanos() != 0;
  // One line per event, whole, so that a follower can grep it; what an
  // agent's data put in the kind, hosts or summary cannot break the line.
  return absl::StrCat(stamped ? AbsoluteTime(e.at()) : AbsoluteTime(now), " ",
                      v1::AlertEvent::Type_Name(e.type()).substr(5), " #",
                      a.id(), " ", SeverityWord(a.severity()), " ",
                      Printable(a.kind()), " [",
                      Printable(absl::StrJoin(a.hosts(), ",")), "] ",
                      Printable(a.summary()), "\n");
}

}  // namespace netvigil::report
