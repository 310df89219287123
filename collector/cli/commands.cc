#include "collector/cli/commands.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/probes/file_probe.h"
#include "agent/probes/path_command.h"
#include "agent/probes/socket_probe.h"
#include "agent/probes/speed_command.h"
#include "collector/cli/format.h"
#include "common/escape.h"
#include "common/proto_time.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace netvigil::cli {

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

int RunAgents(const ClientOptions& options, bool json) {
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::ListAgentsResponse resp;
  grpc::Status s = stub->ListAgents(&ctx, v1::ListAgentsRequest(), &resp);
  if (!s.ok()) return ReportError(s, options);
  const std::string out = json ? ToJson(resp) : RenderAgents(resp, absl::Now());
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

}  // namespace netvigil::cli

// ---------------------------------------------------------------- more views

namespace netvigil::cli {
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

// The longest look-back --since takes: anything further back than this is
// before any history netvigil can hold, and a bound keeps `now - d` inside
// what absl and protobuf represent (a year 0 or negative time aborts them).
constexpr absl::Duration kMaxLookBack = absl::Hours(24 * 366 * 100);

// Parses a look-back such as "1h", "90m", "7d" or "2w" into a Timestamp
// `now - d`. absl's units plus d (24h) and w (7d), which a person types.
bool SinceToTimestamp(const std::string& since, absl::Time now,
                      google::protobuf::Timestamp* out) {
  if (since.empty()) return true;
  absl::Duration d;
  bool ok = false;
  if (since.size() >= 2 && (since.back() == 'd' || since.back() == 'w')) {
    double n = 0;
    if (absl::SimpleAtod(since.substr(0, since.size() - 1), &n) &&
        std::isfinite(n) && n > 0 && n <= 36600 * 7) {
      d = absl::Hours(n * (since.back() == 'd' ? 24 : 24 * 7));
      ok = true;
    }
  } else {
    ok = absl::ParseDuration(since, &d);
  }
  if (!ok || d <= absl::ZeroDuration() || d > kMaxLookBack) {
    std::fprintf(stderr,
                 "netvigil: --since wants a duration back from now between "
                 "1s and 100 years, such as 30m, 6h, 7d or 2w, got '%s'\n",
                 since.c_str());
    return false;
  }
  *out = ToProtoTime(now - d);
  return true;
}

int Print(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  return kExitOk;
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
  for (const auto& h : m.hosts()) header.push_back(h);
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

std::string RenderSocketFacts(const v1::CurrentSocketsResponse& resp,
                              absl::Time now) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& f : resp.facts()) {
    rows.push_back({f.key_kind(), ProtoName(f.proto()),
                    f.key_kind() == "remote"
                        ? "-"
                        : Endpoint(f.local_address(), f.local_port()),
                    f.key_kind() == "listener"
                        ? "-"
                        : Endpoint(f.remote_address(), f.remote_port()),
                    f.exe(), HumanAgo(f.first_seen(), now)});
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
    rows.push_back(
        {HumanAgo(c.at(), now), c.change(), f.key_kind(), ProtoName(f.proto()),
         f.key_kind() == "remote" ? "-"
                                  : Endpoint(f.local_address(), f.local_port()),
         f.key_kind() == "listener"
             ? "-"
             : Endpoint(f.remote_address(), f.remote_port()),
         f.exe()});
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

std::string RenderSpeedHistory(const v1::SpeedHistoryResponse& resp,
                               absl::Time now) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : resp.results()) {
    rows.push_back({HumanAgo(r.started_at(), now),
                    v1::SpeedOutcome_Name(r.outcome()).substr(14),
                    r.outcome() == v1::SPEED_OUTCOME_OK
                        ? HumanBitrate(r.forward().received_bps())
                        : "-",
                    r.reverse_figures().received_bps() > 0
                        ? HumanBitrate(r.reverse_figures().received_bps())
                        : "-",
                    std::to_string(r.forward().retransmits()), r.error()});
  }
  if (rows.empty()) return "no speed results for this pair in this period\n";
  return FormatTableWrapped(
      {"WHEN", "OUTCOME", "FORWARD", "REVERSE", "RETRANSMITS", "ERROR"}, rows);
}

std::string RenderPathHistory(const v1::PathHistoryResponse& resp,
                              absl::Time now) {
  if (resp.runs().empty()) return "no runs in this period\n";
  const v1::StoredPathRun& latest = *resp.runs().rbegin();
  std::string out =
      netvigil::agent::FormatPathReport(latest.run(), latest.agent());
  if (resp.runs_size() > 1) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& s : resp.runs()) {
      const auto& r = s.run();
      rows.push_back(
          {HumanAgo(r.started_at(), now),
           r.error().empty() ? Percent(r.destination().loss_percent())
                             : "error",
           r.destination_reached() ? Millis(r.destination().avg_ms()) : "-",
           std::to_string(r.hops_size()), r.error()});
    }
    out += absl::StrCat(
        "\nHISTORY (", resp.runs_size(), " runs)\n",
        FormatTableWrapped({"WHEN", "LOSS", "AVG", "HOPS", "ERROR"}, rows));
  }
  return out;
}

namespace {

// Whether an agent (online or not, revoked or not) has the name `name`.
grpc::Status KnownAgent(v1::Query::Stub& stub, const ClientOptions& options,
                        const std::string& name, bool* known) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::ListAgentsResponse agents;
  grpc::Status s = stub.ListAgents(&ctx, v1::ListAgentsRequest(), &agents);
  *known = false;
  for (const auto& a : agents.agents()) *known = *known || a.name() == name;
  return s;
}

int NoSuchAgent(const std::string& name) {
  std::fprintf(stderr,
               "netvigil: no agent named '%s' (`netvigil agents` lists "
               "them)\n",
               name.c_str());
  return kExitNotFound;
}

struct ProbeOutcome {
  grpc::Status status;
  v1::ProbeNowResponse resp;
};

ProbeOutcome ProbeOnce(const ClientOptions& options,
                       const v1::ProbeNowRequest& req) {
  ProbeOutcome out;
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  out.status = stub->ProbeNow(&ctx, req, &out.resp);
  return out;
}

// The path targets `host` has run, from the overview: the collector's
// Query service does not list a plan's targets, but every target of the
// plan shows there after its first run.
grpc::Status PathTargetsOf(const ClientOptions& options,
                           const std::string& host,
                           std::vector<std::string>* targets) {
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::OverviewResponse o;
  grpc::Status s = stub->Overview(&ctx, v1::OverviewRequest(), &o);
  if (!s.ok()) return s;
  for (const auto& h : o.hosts()) {
    if (h.agent().name() != host) continue;
    for (const auto& p : h.paths()) targets->push_back(p.target());
  }
  return grpc::Status::OK;
}

std::string ProbeText(const v1::ProbeNowResponse& resp,
                      const std::string& host) {
  const v1::Result& r = resp.result();
  switch (r.payload_case()) {
    case v1::Result::kPath:
      return netvigil::agent::FormatPathReport(r.path(), host);
    case v1::Result::kSockets:
      return netvigil::agent::FormatSocketsTable(r.sockets());
    case v1::Result::kFiles:
      return netvigil::agent::FormatFilesTable(r.files());
    case v1::Result::kSpeed:
      return netvigil::agent::FormatSpeedTable(r.speed());
    default:
      return ToJson(resp);
  }
}

}  // namespace

int RunOverview(const ClientOptions& options, bool json) {
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::OverviewResponse resp;
  grpc::Status s = stub->Overview(&ctx, v1::OverviewRequest(), &resp);
  if (!s.ok()) return ReportError(s, options);
  return Print(json ? ToJson(resp) : RenderOverview(resp, absl::Now()));
}

int RunPath(const ClientOptions& options, bool json, const std::string& host,
            const std::string& target, const std::string& since) {
  v1::PathHistoryRequest req;
  req.set_host(host);
  req.set_target(target);
  if (!SinceToTimestamp(since, absl::Now(), req.mutable_since()))
    return kExitUsage;
  // Without --since only the latest run is wanted; with it, every run in
  // the range (the service's default of 1,000 would cut a day of one-minute
  // runs to its newest 16.7 hours without saying so). 100,000 is the
  // service's ceiling: 69 days of one-minute runs.
  req.set_limit(since.empty() ? 1 : 100000);
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::PathHistoryResponse resp;
  grpc::Status s = stub->PathHistory(&ctx, req, &resp);
  if (!s.ok()) return ReportError(s, options);
  return Print(json ? ToJson(resp) : RenderPathHistory(resp, absl::Now()));
}

int RunSockets(const ClientOptions& options, bool json, const std::string& host,
               bool changes, const std::string& since) {
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  if (changes) {
    v1::SocketChangesRequest req;
    req.set_host(host);
    if (!SinceToTimestamp(since, absl::Now(), req.mutable_since()))
      return kExitUsage;
    v1::SocketChangesResponse resp;
    grpc::Status s = stub->SocketChanges(&ctx, req, &resp);
    if (!s.ok()) return ReportError(s, options);
    return Print(json ? ToJson(resp) : RenderSocketChanges(resp, absl::Now()));
  }
  v1::CurrentSocketsRequest req;
  req.set_host(host);
  v1::CurrentSocketsResponse resp;
  grpc::Status s = stub->CurrentSockets(&ctx, req, &resp);
  if (!s.ok()) return ReportError(s, options);
  return Print(json ? ToJson(resp) : RenderSocketFacts(resp, absl::Now()));
}

int RunFiles(const ClientOptions& options, bool json, const std::string& host,
             const std::string& since) {
  v1::FileAccessRequest req;
  req.set_host(host);
  if (!SinceToTimestamp(since, absl::Now(), req.mutable_since()))
    return kExitUsage;
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::FileAccessResponse resp;
  grpc::Status s = stub->FileAccess(&ctx, req, &resp);
  if (!s.ok()) return ReportError(s, options);
  return Print(json ? ToJson(resp) : RenderFileAccess(resp, absl::Now()));
}

int RunSpeedMatrix(const ClientOptions& options, bool json) {
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::SpeedMatrixResponse resp;
  grpc::Status s = stub->SpeedMatrix(&ctx, v1::SpeedMatrixRequest(), &resp);
  if (!s.ok()) return ReportError(s, options);
  return Print(json ? ToJson(resp) : RenderSpeedMatrix(resp, absl::Now()));
}

int RunSpeedHistory(const ClientOptions& options, bool json,
                    const std::string& client, const std::string& server,
                    const std::string& since) {
  v1::SpeedHistoryRequest req;
  req.set_client(client);
  req.set_server(server);
  if (!SinceToTimestamp(since, absl::Now(), req.mutable_since()))
    return kExitUsage;
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::SpeedHistoryResponse resp;
  grpc::Status s = stub->SpeedHistory(&ctx, req, &resp);
  if (!s.ok()) return ReportError(s, options);  // an unknown client: 5
  if (resp.results().empty()) {
    // Nothing in the period. A server no agent is named after and that has
    // never had a result is a name nobody knows: say so, exit 5.
    bool known = false;
    s = KnownAgent(*stub, options, server, &known);
    if (!s.ok()) return ReportError(s, options);
    if (!known) {
      v1::SpeedHistoryRequest ever = req;
      *ever.mutable_since() = ToProtoTime(absl::FromUnixSeconds(946684800));
      ever.set_limit(1);
      grpc::ClientContext ctx2;
      SetDeadline(ctx2, options);
      v1::SpeedHistoryResponse any;
      s = stub->SpeedHistory(&ctx2, ever, &any);
      if (!s.ok()) return ReportError(s, options);
      if (any.results().empty()) {
        std::fprintf(stderr,
                     "netvigil: %s has never tested a server named '%s': it "
                     "is neither an agent nor an external target with "
                     "results (`netvigil speed matrix` lists the pairs)\n",
                     client.c_str(), server.c_str());
        return kExitNotFound;
      }
    }
  }
  return Print(json ? ToJson(resp) : RenderSpeedHistory(resp, absl::Now()));
}

int RunProbe(const ClientOptions& options, bool json, const std::string& host,
             const std::string& kind, const std::string& target,
             double deadline_s) {
  v1::ProbeNowRequest req;
  req.set_host(host);
  req.set_target(target);
  if (kind == "path") {
    req.set_probe(v1::PROBE_KIND_PATH);
  } else if (kind == "sockets") {
    req.set_probe(v1::PROBE_KIND_SOCKETS);
  } else if (kind == "files") {
    req.set_probe(v1::PROBE_KIND_FILES);
  } else if (kind == "speed") {
    req.set_probe(v1::PROBE_KIND_SPEED);
  } else {
    std::fprintf(
        stderr,
        "netvigil: probe must be path, sockets, files or speed, got '%s'\n",
        kind.c_str());
    return kExitUsage;
  }
  *req.mutable_deadline() =
      google::protobuf::util::TimeUtil::MillisecondsToDuration(
          static_cast<int64_t>(deadline_s * 1000));
  ClientOptions longer = options;
  longer.timeout = absl::Seconds(deadline_s + 5);

  // A path probe without a target runs every target. The collector answers
  // a probe-now with the first result that carries its command's id, so the
  // CLI asks once per target (the agent runs at most 4 commands at once;
  // 3 here leaves room for a scheduled speed test).
  std::vector<std::string> targets = {target};
  if (kind == "path" && target.empty()) {
    std::vector<std::string> known;
    grpc::Status s = PathTargetsOf(options, host, &known);
    if (!s.ok()) return ReportError(s, options);
    if (!known.empty()) targets = known;
  }
  std::vector<ProbeOutcome> outcomes(targets.size());
  constexpr size_t kAtOnce = 3;
  for (size_t first = 0; first < targets.size(); first += kAtOnce) {
    std::vector<std::thread> workers;
    for (size_t i = first; i < targets.size() && i < first + kAtOnce; ++i) {
      workers.emplace_back([&, i] {
        v1::ProbeNowRequest one = req;
        one.set_target(targets[i]);
        outcomes[i] = ProbeOnce(longer, one);
      });
    }
    for (auto& w : workers) w.join();
  }
  int rc = kExitOk;
  std::string out;
  const bool array = json && targets.size() > 1;
  if (array) out = "[\n";
  bool first_json = true;
  for (size_t i = 0; i < targets.size(); ++i) {
    const ProbeOutcome& o = outcomes[i];
    if (!o.status.ok()) {
      if (targets.size() > 1) {
        std::fprintf(stderr, "netvigil: target %s:\n", targets[i].c_str());
      }
      const int code = ReportError(o.status, longer);
      if (rc == kExitOk) rc = code;
      continue;
    }
    // A probe that ran but could not do all it was asked (a watched folder
    // that is not there) still prints what it found; the reason goes to
    // stderr and the exit status says the answer is partial.
    const v1::Result& r = o.resp.result();
    if (r.has_files() && !r.files().error().empty()) {
      std::fprintf(stderr, "netvigil: files probe on %s: %s\n",
                   Printable(host).c_str(),
                   Printable(r.files().error()).c_str());
      if (rc == kExitOk) rc = kExitFailure;
    }
    if (json) {
      std::string j = ToJson(o.resp);
      if (array) {
        if (!first_json) out += ",\n";
        j.pop_back();  // its newline; the array's comma follows
      }
      first_json = false;
      out += j;
    } else {
      if (!out.empty()) out += "\n";
      out += ProbeText(o.resp, host);
    }
  }
  if (array) out += "\n]\n";
  if (array || !out.empty()) Print(out);
  return rc;
}

}  // namespace netvigil::cli

namespace netvigil::cli {
namespace {

// The kinds of alert the collector raises (collector/analysis/analyzer.cc's
// k* names). `alerts --kind` checks against them so that a typo is an error,
// not an empty list.
constexpr const char* kAlertKinds[] = {
    "path_loss",  "path_latency", "route_change",     "new_listener",
    "new_remote", "new_inbound",  "new_file_process", "hidden_exe",
    "speed_low",  "results_lost", "clock_skew"};

bool KnownKind(const std::string& kind) {
  for (const char* k : kAlertKinds) {
    if (kind == k) return true;
  }
  return false;
}

bool AlertMatches(const v1::Alert& a, const std::string& kind,
                  const std::string& host) {
  if (!kind.empty() && a.kind() != kind) return false;
  if (host.empty()) return true;
  for (const auto& h : a.hosts()) {
    if (h == host) return true;
  }
  return false;
}

std::string ScopeWord(v1::AlertScope s) {
  const std::string& name = v1::AlertScope_Name(s);
  return absl::AsciiStrToLower(name.size() > 12 ? name.substr(12) : "unknown");
}

constexpr int kEvidenceShown = 3;

}  // namespace

std::vector<std::string> AlertKinds() {
  return {std::begin(kAlertKinds), std::end(kAlertKinds)};
}

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

int RunAlerts(const ClientOptions& options, bool json, bool all,
              const std::string& kind, const std::string& host,
              const std::string& since, bool follow) {
  if (!kind.empty() && !KnownKind(kind)) {
    std::fprintf(stderr, "netvigil: no alert kind '%s'; the kinds are %s\n",
                 kind.c_str(), absl::StrJoin(AlertKinds(), ", ").c_str());
    return kExitInvalid;
  }
  auto stub = MakeStub(options);
  if (!host.empty()) {
    bool known = false;
    grpc::Status s = KnownAgent(*stub, options, host, &known);
    if (!s.ok()) return ReportError(s, options);
    if (!known) return NoSuchAgent(host);
  }
  if (follow) {
    grpc::ClientContext ctx;  // No deadline: follows until interrupted.
    v1::WatchAlertsRequest req;
    req.set_include_open(true);
    auto reader = stub->WatchAlerts(&ctx, req);
    // The collector sends its header at once, open alerts or not; until
    // then (or a failure) there is nothing to say.
    reader->WaitForInitialMetadata();
    std::fprintf(stderr,
                 "netvigil: following alerts at %s: the open ones first, "
                 "then each event as it happens (Ctrl-C stops)\n",
                 Target(options).c_str());
    v1::AlertEvent e;
    while (reader->Read(&e)) {
      if (!AlertMatches(e.alert(), kind, host)) continue;
      const std::string out =
          json ? ToJson(e) : RenderAlertEvent(e, absl::Now());
      std::fwrite(out.data(), 1, out.size(), stdout);
      std::fflush(stdout);
    }
    grpc::Status s = reader->Finish();
    return s.ok() ? kExitOk : ReportError(s, options);
  }
  v1::ListAlertsRequest req;
  req.set_open_only(!all);
  req.set_kind(kind);
  req.set_host(host);
  if (!SinceToTimestamp(since, absl::Now(), req.mutable_since()))
    return kExitUsage;
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::ListAlertsResponse resp;
  grpc::Status s = stub->ListAlerts(&ctx, req, &resp);
  if (!s.ok()) return ReportError(s, options);
  return Print(json ? ToJson(resp) : RenderAlerts(resp, absl::Now()));
}

int RunAck(const ClientOptions& options, bool json, int64_t id,
           const std::string& by) {
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::AckRequest req;
  req.set_alert_id(id);
  req.set_by(by);
  v1::AckResponse resp;
  grpc::Status s = stub->Ack(&ctx, req, &resp);
  if (!s.ok()) return ReportError(s, options);
  if (json) return Print(ToJson(resp));
  return Print(absl::StrCat("acknowledged #", resp.alert().id(), " (",
                            resp.alert().kind(), " ", resp.alert().subject(),
                            "): it is part of the baseline now\n"));
}

}  // namespace netvigil::cli
