#include "collector/cli/commands.h"

#include <cmath>
#include <cstdio>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/probes/file_probe.h"
#include "agent/probes/path_command.h"
#include "agent/probes/socket_probe.h"
#include "agent/probes/speed_command.h"
#include "collector/cli/format.h"
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

std::string Cell(const v1::SpeedCell& c, absl::Time now) {
  if (c.outcome() == v1::SPEED_OUTCOME_OK) {
    return absl::StrCat(HumanBitrate(c.bps()), " (", HumanAgo(c.at(), now),
                        ")");
  }
  const std::string what =
      c.outcome() == v1::SPEED_OUTCOME_SKIPPED ? "skipped" : "failed";
  return absl::StrCat(what, ": ", c.error().substr(0, 40), " (",
                      HumanAgo(c.at(), now), ")");
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

std::string RenderSpeedMatrix(const v1::SpeedMatrixResponse& resp,
                              absl::Time now) {
  std::string out;
  if (resp.cells().empty()) {
    out = "no speed tests yet\n";
  } else {
    std::map<std::pair<std::string, std::string>, const v1::SpeedCell*> cells;
    for (const auto& c : resp.cells()) cells[{c.client(), c.server()}] = &c;
    std::vector<std::string> header = {"FROM \\ TO"};
    for (const auto& h : resp.hosts()) header.push_back(h);
    std::vector<std::vector<std::string>> rows;
    for (const auto& from : resp.hosts()) {
      std::vector<std::string> row = {from};
      for (const auto& to : resp.hosts()) {
        if (from == to) {
          row.push_back("-");
          continue;
        }
        auto it = cells.find({from, to});
        row.push_back(it == cells.end() ? "not yet" : Cell(*it->second, now));
      }
      rows.push_back(std::move(row));
    }
    out = FormatTable(header, rows);
  }
  for (const auto& n : resp.notices()) out += absl::StrCat("note: ", n, "\n");
  return out;
}

std::string RenderOverview(const v1::OverviewResponse& resp, absl::Time now) {
  std::string out = "HOSTS\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& h : resp.hosts()) {
    const auto& a = h.agent();
    if (h.paths().empty()) {
      rows.push_back({a.name(), AgentState(a), HumanAgo(a.last_seen(), now),
                      "-", "-", "-", "-", "-"});
    }
    for (int i = 0; i < h.paths_size(); ++i) {
      const auto& p = h.paths(i);
      const bool first = i == 0;
      rows.push_back(
          {first ? a.name() : "", first ? AgentState(a) : "",
           first ? HumanAgo(a.last_seen(), now) : "", p.target(),
           p.error().empty() ? Percent(p.loss_percent()) : "error",
           p.error().empty() && p.destination_reached() ? Millis(p.avg_ms())
                                                        : "-",
           p.hop_count() ? std::to_string(p.hop_count()) : "-",
           p.error().empty() ? HumanAgo(p.at(), now)
                             : absl::StrCat(p.error().substr(0, 40))});
    }
  }
  if (rows.empty()) {
    out += "no agents have connected yet\n";
  } else {
    out += FormatTable({"HOST", "STATE", "LAST SEEN", "TARGET", "LOSS", "AVG",
                        "HOPS", "MEASURED"},
                       rows);
  }
  out += "\nSPEED (latest, what the server received)\n";
  out += RenderSpeedMatrix(resp.speed(), now);
  out += "\nOPEN ALERTS\n";
  if (resp.open_alerts().empty()) {
    out += "none\n";
  } else {
    std::vector<std::vector<std::string>> arows;
    for (const auto& al : resp.open_alerts()) {
      arows.push_back({std::to_string(al.id()),
                       v1::Severity_Name(al.severity()).substr(9),
                       v1::AlertScope_Name(al.scope()).substr(12),
                       absl::StrJoin(al.hosts(), ","), al.summary(),
                       HumanAgo(al.first_seen(), now)});
    }
    out += FormatTable({"ID", "SEVERITY", "SCOPE", "HOSTS", "SUMMARY", "SINCE"},
                       arows);
  }
  for (const auto& n : resp.notices()) {
    // Speed notices are already under the matrix.
    bool shown = false;
    for (const auto& m : resp.speed().notices()) shown = shown || m == n;
    if (!shown) out += absl::StrCat("note: ", n, "\n");
  }
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
  return absl::StrCat("as of ", HumanAgo(resp.taken_at(), now), "\n",
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
  return FormatTable(
      {"WHEN", "CHANGE", "KIND", "PROTO", "LOCAL", "REMOTE", "EXECUTABLE"},
      rows);
}

std::string RenderFileAccess(const v1::FileAccessResponse& resp,
                             absl::Time now) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& f : resp.facts()) {
    rows.push_back(
        {f.exe(), std::to_string(f.uid()), KindName(f.kind()),
         f.deleted() ? absl::StrCat(f.path(), " (deleted)") : f.path(),
         f.present() ? "now" : HumanAgo(f.last_seen(), now),
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
  return FormatTable(
      {"WHEN", "OUTCOME", "FORWARD", "REVERSE", "RETRANSMITS", "ERROR"}, rows);
}

std::string RenderPathHistory(const v1::PathHistoryResponse& resp,
                              absl::Time now) {
  if (resp.runs().empty()) return "no runs in this period\n";
  std::string out =
      netvigil::agent::FormatPathReport(resp.runs().rbegin()->run());
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
        FormatTable({"WHEN", "LOSS", "AVG", "HOPS", "ERROR"}, rows));
  }
  return out;
}

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
  if (!s.ok()) return ReportError(s, options);
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
  auto stub = MakeStub(longer);
  grpc::ClientContext ctx;
  SetDeadline(ctx, longer);
  v1::ProbeNowResponse resp;
  grpc::Status s = stub->ProbeNow(&ctx, req, &resp);
  if (!s.ok()) return ReportError(s, longer);
  if (json) return Print(ToJson(resp));
  const v1::Result& r = resp.result();
  switch (r.payload_case()) {
    case v1::Result::kPath:
      return Print(netvigil::agent::FormatPathReport(r.path()));
    case v1::Result::kSockets:
      return Print(netvigil::agent::FormatSocketsTable(r.sockets()));
    case v1::Result::kFiles:
      return Print(netvigil::agent::FormatFilesTable(r.files()));
    case v1::Result::kSpeed:
      return Print(netvigil::agent::FormatSpeedTable(r.speed()));
    default:
      return Print(ToJson(resp));
  }
}

}  // namespace netvigil::cli

namespace netvigil::cli {

std::string RenderAlerts(const v1::ListAlertsResponse& resp, absl::Time now) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& a : resp.alerts()) {
    std::string state =
        a.has_resolved_at()
            ? absl::StrCat("resolved ", HumanAgo(a.resolved_at(), now))
            : "open";
    if (a.acknowledged()) state += ", acked";
    rows.push_back(
        {std::to_string(a.id()), v1::Severity_Name(a.severity()).substr(9),
         v1::AlertScope_Name(a.scope()).substr(12), a.kind(),
         absl::StrJoin(a.hosts(), ","), a.summary(),
         HumanAgo(a.first_seen(), now), HumanAgo(a.last_seen(), now), state});
  }
  if (rows.empty()) return "no alerts\n";
  return FormatTable({"ID", "SEVERITY", "SCOPE", "KIND", "HOSTS", "SUMMARY",
                      "FIRST SEEN", "LAST SEEN", "STATE"},
                     rows);
}

std::string RenderAlertEvent(const v1::AlertEvent& e, absl::Time now) {
  const auto& a = e.alert();
  return absl::StrCat(v1::AlertEvent::Type_Name(e.type()).substr(5), " #",
                      a.id(), " ", v1::Severity_Name(a.severity()).substr(9),
                      " ", v1::AlertScope_Name(a.scope()).substr(12), " ",
                      a.kind(), " [", absl::StrJoin(a.hosts(), ","), "] ",
                      a.summary(), "\n");
}

int RunAlerts(const ClientOptions& options, bool json, bool all,
              const std::string& kind, const std::string& host,
              const std::string& since, bool follow) {
  auto stub = MakeStub(options);
  if (follow) {
    grpc::ClientContext ctx;  // No deadline: follows until interrupted.
    v1::WatchAlertsRequest req;
    req.set_include_open(true);
    auto reader = stub->WatchAlerts(&ctx, req);
    v1::AlertEvent e;
    while (reader->Read(&e)) {
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
