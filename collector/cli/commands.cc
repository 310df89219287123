#include "collector/cli/commands.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/escape.h"
#include "common/proto_time.h"
#include "common/report/files_table.h"
#include "common/report/path_report.h"
#include "common/report/query_views.h"
#include "common/report/sockets_table.h"
#include "common/report/speed_table.h"
#include "common/status_macros.h"
#include "common/wire_kinds.h"
#include "google/protobuf/util/time_util.h"

namespace netvigil::cli {

using ::netvigil::report::RenderAgents;
using ::netvigil::report::RenderAlertEvent;
using ::netvigil::report::RenderAlerts;
using ::netvigil::report::RenderFileAccess;
using ::netvigil::report::RenderOverview;
using ::netvigil::report::RenderPathHistory;
using ::netvigil::report::RenderSocketChanges;
using ::netvigil::report::RenderSocketFacts;
using ::netvigil::report::RenderSpeedHistory;
using ::netvigil::report::RenderSpeedMatrix;
using ::netvigil::report::ToJson;

absl::Status RunAgents(const ClientOptions& options, bool json) {
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::ListAgentsResponse resp;
  grpc::Status s = stub->ListAgents(&ctx, v1::ListAgentsRequest(), &resp);
  if (!s.ok()) return FromGrpc(s, options);
  const std::string out = json ? ToJson(resp) : RenderAgents(resp, absl::Now());
  std::fwrite(out.data(), 1, out.size(), stdout);
  return absl::OkStatus();
}

namespace {

// The longest look-back --since takes: anything further back than this is
// before any history netvigil can hold, and a bound keeps `now - d` inside
// what absl and protobuf represent (a year 0 or negative time aborts them).
constexpr absl::Duration kMaxLookBack = absl::Hours(24 * 366 * 100);

// Parses a look-back such as "1h", "90m", "7d" or "2w" into a Timestamp
// `now - d`. absl's units plus d (24h) and w (7d), which a person types.
// --resolution's word into a history request.
template <typename Request>
absl::Status ParseResolution(const std::string& word, Request* req) {
  if (word == "auto" || word.empty()) {
    req->set_resolution(v1::RESOLUTION_AUTO);
  } else if (word == "raw") {
    req->set_resolution(v1::RESOLUTION_RAW);
  } else if (word == "hourly") {
    req->set_resolution(v1::RESOLUTION_HOURLY);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--resolution wants auto, raw or hourly, not '", word, "'"));
  }
  return absl::OkStatus();
}

absl::Status SinceToTimestamp(const std::string& since, absl::Time now,
                              google::protobuf::Timestamp* out) {
  if (since.empty()) return absl::OkStatus();
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
    return absl::InvalidArgumentError(absl::StrCat(
        "--since wants a duration back from now between 1s and 100 years, "
        "such as 30m, 6h, 7d or 2w, got '",
        since, "'"));
  }
  *out = ToProtoTime(now - d);
  return absl::OkStatus();
}

absl::Status Print(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  return absl::OkStatus();
}

}  // namespace

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

absl::Status NoSuchAgent(const std::string& name) {
  return absl::NotFoundError(absl::StrCat("no agent named '", name,
                                          "' (`netvigil agents` lists them)"));
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
      return report::FormatPathReport(r.path(), host);
    case v1::Result::kSockets:
      return report::FormatSocketsTable(r.sockets());
    case v1::Result::kFiles:
      return report::FormatFilesTable(r.files());
    case v1::Result::kSpeed:
      return report::FormatSpeedTable(r.speed());
    default:
      return ToJson(resp);
  }
}

}  // namespace

absl::Status RunOverview(const ClientOptions& options, bool json) {
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::OverviewResponse resp;
  grpc::Status s = stub->Overview(&ctx, v1::OverviewRequest(), &resp);
  if (!s.ok()) return FromGrpc(s, options);
  return Print(json ? ToJson(resp) : RenderOverview(resp, absl::Now()));
}

absl::Status RunPath(const ClientOptions& options, bool json,
                     const std::string& host, const std::string& target,
                     const std::string& since, const std::string& resolution) {
  v1::PathHistoryRequest req;
  req.set_host(host);
  req.set_target(target);
  NV_RETURN_IF_ERROR(SinceToTimestamp(since, absl::Now(), req.mutable_since()));
  NV_RETURN_IF_ERROR(ParseResolution(resolution, &req));
  // Without --since only the latest run is wanted; with it, every point in
  // the range (the service's default of 1,000 would cut a day of one-minute
  // runs to its newest 16.7 hours without saying so). 100,000 is the
  // service's ceiling: past it the service answers in coarser buckets, so
  // `--since 90d` is 7 days of raw runs and 83 of hours.
  req.set_limit(since.empty() ? 1 : 100000);
  req.set_max_points(100000);
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::PathHistoryResponse resp;
  grpc::Status s = stub->PathHistory(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s, options);
  return Print(json ? ToJson(resp) : RenderPathHistory(resp, absl::Now()));
}

absl::Status RunSockets(const ClientOptions& options, bool json,
                        const std::string& host, bool changes,
                        const std::string& since) {
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  if (changes) {
    v1::SocketChangesRequest req;
    req.set_host(host);
    NV_RETURN_IF_ERROR(
        SinceToTimestamp(since, absl::Now(), req.mutable_since()));
    v1::SocketChangesResponse resp;
    grpc::Status s = stub->SocketChanges(&ctx, req, &resp);
    if (!s.ok()) return FromGrpc(s, options);
    return Print(json ? ToJson(resp) : RenderSocketChanges(resp, absl::Now()));
  }
  v1::CurrentSocketsRequest req;
  req.set_host(host);
  v1::CurrentSocketsResponse resp;
  grpc::Status s = stub->CurrentSockets(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s, options);
  return Print(json ? ToJson(resp) : RenderSocketFacts(resp, absl::Now()));
}

absl::Status RunFiles(const ClientOptions& options, bool json,
                      const std::string& host, const std::string& since) {
  v1::FileAccessRequest req;
  req.set_host(host);
  NV_RETURN_IF_ERROR(SinceToTimestamp(since, absl::Now(), req.mutable_since()));
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::FileAccessResponse resp;
  grpc::Status s = stub->FileAccess(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s, options);
  return Print(json ? ToJson(resp) : RenderFileAccess(resp, absl::Now()));
}

absl::Status RunSpeedMatrix(const ClientOptions& options, bool json) {
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::SpeedMatrixResponse resp;
  grpc::Status s = stub->SpeedMatrix(&ctx, v1::SpeedMatrixRequest(), &resp);
  if (!s.ok()) return FromGrpc(s, options);
  return Print(json ? ToJson(resp) : RenderSpeedMatrix(resp, absl::Now()));
}

absl::Status RunSpeedHistory(const ClientOptions& options, bool json,
                             const std::string& client,
                             const std::string& server,
                             const std::string& since,
                             const std::string& resolution) {
  v1::SpeedHistoryRequest req;
  req.set_client(client);
  req.set_server(server);
  NV_RETURN_IF_ERROR(SinceToTimestamp(since, absl::Now(), req.mutable_since()));
  NV_RETURN_IF_ERROR(ParseResolution(resolution, &req));
  req.set_limit(100000);
  req.set_max_points(100000);
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::SpeedHistoryResponse resp;
  grpc::Status s = stub->SpeedHistory(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s, options);  // an unknown client: 5
  if (resp.points().empty()) {
    // Nothing in the period. A server no agent is named after and that has
    // never had a result is a name nobody knows: say so, exit 5.
    bool known = false;
    s = KnownAgent(*stub, options, server, &known);
    if (!s.ok()) return FromGrpc(s, options);
    if (!known) {
      v1::SpeedHistoryRequest ever = req;
      *ever.mutable_since() = ToProtoTime(absl::FromUnixSeconds(946684800));
      ever.set_limit(1);
      ever.set_resolution(v1::RESOLUTION_AUTO);
      grpc::ClientContext ctx2;
      SetDeadline(ctx2, options);
      v1::SpeedHistoryResponse any;
      s = stub->SpeedHistory(&ctx2, ever, &any);
      if (!s.ok()) return FromGrpc(s, options);
      if (any.points().empty()) {
        return absl::NotFoundError(absl::StrCat(
            client, " has never tested a server named '", server,
            "': it is neither an agent nor an external target with results "
            "(`netvigil speed matrix` lists the pairs)"));
      }
    }
  }
  return Print(json ? ToJson(resp) : RenderSpeedHistory(resp, absl::Now()));
}

absl::Status RunProbe(const ClientOptions& options, bool json,
                      const std::string& host, const std::string& kind,
                      const std::string& target, double deadline_s) {
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
    return absl::InvalidArgumentError(absl::StrCat(
        "probe must be path, sockets, files or speed, got '", kind, "'"));
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
    if (!s.ok()) return FromGrpc(s, options);
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
  // The first failure's code; every failure's reason, a line or two each.
  absl::StatusCode code = absl::StatusCode::kOk;
  std::vector<std::string> reasons;
  auto fail = [&](absl::StatusCode c, std::string reason) {
    if (code == absl::StatusCode::kOk) code = c;
    reasons.push_back(std::move(reason));
  };
  std::string out;
  const bool array = json && targets.size() > 1;
  if (array) out = "[\n";
  bool first_json = true;
  for (size_t i = 0; i < targets.size(); ++i) {
    const ProbeOutcome& o = outcomes[i];
    if (!o.status.ok()) {
      const absl::Status failed = FromGrpc(o.status, longer);
      fail(failed.code(), targets.size() > 1
                              ? absl::StrCat("target ", Printable(targets[i]),
                                             ":\n", failed.message())
                              : std::string(failed.message()));
      continue;
    }
    // A probe that ran but could not do all it was asked (a watched folder
    // that is not there) still prints what it found; the reason goes to
    // stderr and the exit status says the answer is partial.
    const v1::Result& r = o.resp.result();
    if (r.has_files() && !r.files().error().empty()) {
      fail(absl::StatusCode::kUnknown,
           absl::StrCat("files probe on ", Printable(host), ": ",
                        Printable(r.files().error())));
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
  if (array || !out.empty()) (void)Print(out);
  if (code == absl::StatusCode::kOk) return absl::OkStatus();
  return absl::Status(code, absl::StrJoin(reasons, "\n"));
}

}  // namespace netvigil::cli

namespace netvigil::cli {
namespace {

bool AlertMatches(const v1::Alert& a, v1::AlertKind kind,
                  const std::string& host) {
  if (kind != v1::ALERT_KIND_UNSPECIFIED && a.alert_kind() != kind) {
    return false;
  }
  if (host.empty()) return true;
  for (const auto& h : a.hosts()) {
    if (h == host) return true;
  }
  return false;
}

}  // namespace

absl::Status RunAlerts(const ClientOptions& options, bool json, bool all,
                       const std::string& kind, const std::string& host,
                       const std::string& since, bool follow) {
  // The kinds are the AlertKind enum's (common/wire_kinds.h), which is the
  // analyzer's list (collector/analysis/rules/condition.h): a typo is a usage
  // error naming them, not an empty list.
  const v1::AlertKind wanted = AlertKindFromName(kind);
  if (!kind.empty() && wanted == v1::ALERT_KIND_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat("no alert kind '", Printable(kind), "'; the kinds are ",
                     absl::StrJoin(AlertKindNames(), ", ")));
  }
  auto stub = MakeStub(options);
  if (!host.empty()) {
    bool known = false;
    grpc::Status s = KnownAgent(*stub, options, host, &known);
    if (!s.ok()) return FromGrpc(s, options);
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
      if (!AlertMatches(e.alert(), wanted, host)) continue;
      const std::string out =
          json ? ToJson(e) : RenderAlertEvent(e, absl::Now());
      std::fwrite(out.data(), 1, out.size(), stdout);
      std::fflush(stdout);
    }
    grpc::Status s = reader->Finish();
    return s.ok() ? absl::OkStatus() : FromGrpc(s, options);
  }
  v1::ListAlertsRequest req;
  req.set_open_only(!all);
  req.set_kind(wanted);
  req.set_host(host);
  NV_RETURN_IF_ERROR(SinceToTimestamp(since, absl::Now(), req.mutable_since()));
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::ListAlertsResponse resp;
  grpc::Status s = stub->ListAlerts(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s, options);
  return Print(json ? ToJson(resp) : RenderAlerts(resp, absl::Now()));
}

absl::Status RunAck(const ClientOptions& options, bool json, int64_t id,
                    const std::string& by) {
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::AckRequest req;
  req.set_alert_id(id);
  req.set_by(by);
  v1::AckResponse resp;
  grpc::Status s = stub->Ack(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s, options);
  if (json) return Print(ToJson(resp));
  // The subject is an agent's text (a process, an address): escaped.
  return Print(absl::StrCat("acknowledged #", resp.alert().id(), " (",
                            Printable(resp.alert().kind()), " ",
                            Printable(resp.alert().subject()),
                            "): it is part of the baseline now\n"));
}

}  // namespace netvigil::cli
