#include "collector/query/query_service.h"

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/proto_time.h"
#include "common/wire_kinds.h"
#include "google/protobuf/util/time_util.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {
namespace {

using google::protobuf::util::TimeUtil;

// UNAVAILABLE from the store means the database is down: say so plainly.
grpc::Status StoreError(const absl::Status& s) {
  if (absl::IsUnavailable(s)) {
    return grpc::Status(
        grpc::StatusCode::UNAVAILABLE,
        absl::StrCat("the collector's database is down: ", s.message()));
  }
  return ToGrpcStatus(s);
}

// Inside the collector an alert's kind is its stable name (the alert log,
// the database, fail2ban's filter); every alert that leaves through this
// service also carries it as the enum (common/wire_kinds.h), set here.
v1::Alert ForClient(v1::Alert a) {
  a.set_alert_kind(AlertKindFromName(a.kind()));
  return a;
}

grpc::Status Invalid(const std::string& why) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, why);
}

constexpr uint32_t kDefaultLimit = 1000;
constexpr uint32_t kMaxLimit = 100000;
// Earliest time a request may name: nothing was stored before netvigil.
const absl::Time kEpoch = absl::FromUnixSeconds(946684800);  // 2000-01-01

// Resolves a [since, until) request range: unset until = now, unset since =
// now - `default_span`. Reversed, pre-2000 or far-future ranges are refused.
grpc::Status Range(const google::protobuf::Timestamp& since,
                   const google::protobuf::Timestamp& until, absl::Time now,
                   absl::Duration default_span, int64_t* since_us,
                   int64_t* until_us) {
  const bool has_until = until.seconds() != 0 || until.nanos() != 0;
  const bool has_since = since.seconds() != 0 || since.nanos() != 0;
  for (const auto* t : {&since, &until}) {
    if (t->nanos() < 0 || t->nanos() > 999'999'999) {
      return Invalid("timestamp nanos out of range");
    }
  }
  const absl::Time u =
      has_until ? FromProtoTime(until) : now + absl::Seconds(1);
  const absl::Time s = has_since ? FromProtoTime(since) : u - default_span;
  if (has_since && s < kEpoch) {
    return Invalid(absl::StrCat("since ", absl::FormatTime(s),
                                " is before 2000: not a time netvigil has"));
  }
  if (has_until && u > now + absl::Hours(24)) {
    return Invalid(absl::StrCat("until ", absl::FormatTime(u),
                                " is more than a day in the future"));
  }
  if (s >= u) {
    return Invalid(absl::StrCat("since (", absl::FormatTime(s),
                                ") is not before until (", absl::FormatTime(u),
                                ")"));
  }
  *since_us = absl::ToUnixMicros(s);
  *until_us = absl::ToUnixMicros(u);
  return grpc::Status::OK;
}

grpc::Status Limit(uint32_t requested, uint32_t* limit) {
  if (requested > kMaxLimit) {
    return Invalid(absl::StrCat("limit ", requested, " is above ", kMaxLimit));
  }
  *limit = requested == 0 ? kDefaultLimit : requested;
  return grpc::Status::OK;
}

constexpr uint32_t kDefaultMaxPoints = 10000;

}  // namespace

// A history request's resolution and max_points into `q`. RAW from before
// the raw retention is refused rather than answered with the few raw rows
// retention has not reached yet, which would read as "nothing happened".
grpc::Status QueryService::HistoryResolution(v1::Resolution resolution,
                                             uint32_t max_points,
                                             int64_t since_us, const char* what,
                                             Store::HistoryQuery* q) {
  if (resolution != v1::RESOLUTION_AUTO && resolution != v1::RESOLUTION_RAW &&
      resolution != v1::RESOLUTION_HOURLY) {
    return Invalid(absl::StrCat(
        "resolution ", static_cast<int>(resolution),
        " cannot be asked for: use RESOLUTION_AUTO, RESOLUTION_RAW or "
        "RESOLUTION_HOURLY"));
  }
  if (max_points > kMaxLimit) {
    return Invalid(
        absl::StrCat("max_points ", max_points, " is above ", kMaxLimit));
  }
  const absl::Time raw_start = clock_.Now() - options_.raw_retention;
  if (resolution == v1::RESOLUTION_RAW &&
      absl::FromUnixMicros(since_us) < raw_start) {
    return grpc::Status(
        grpc::StatusCode::OUT_OF_RANGE,
        absl::StrCat("raw ", what, " are kept for ",
                     absl::FormatDuration(options_.raw_retention),
                     " (retention.raw_days): since ",
                     absl::FormatTime("%Y-%m-%d %H:%M:%S UTC",
                                      absl::FromUnixMicros(since_us),
                                      absl::UTCTimeZone()),
                     " is before ",
                     absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", raw_start,
                                      absl::UTCTimeZone()),
                     "; ask for RESOLUTION_HOURLY or RESOLUTION_AUTO"));
  }
  q->resolution = resolution;
  q->max_points = max_points == 0 ? kDefaultMaxPoints : max_points;
  return grpc::Status::OK;
}

namespace {

grpc::Status RequireHost(const std::string& host) {
  if (host.empty()) return Invalid("host is required");
  if (host.size() > 64) return Invalid("host name longer than 64 bytes");
  return grpc::Status::OK;
}

}  // namespace

QueryService::QueryService(QueryServiceOptions options, Store& store,
                           Clock& clock, SessionRegistry& sessions,
                           CommandBroker& broker)
    : options_(options),
      store_(store),
      clock_(clock),
      sessions_(sessions),
      broker_(broker) {}

grpc::Status QueryService::ListAgents(grpc::ServerContext* ctx,
                                      const v1::ListAgentsRequest* req,
                                      v1::ListAgentsResponse* resp) {
  auto agents = store_.ListAgents(options_.heartbeat_timeout);
  if (!agents.ok()) return StoreError(agents.status());
  sessions_.MarkLive(&*agents, clock_.Now(), clock_.MonotonicNow(),
                     options_.heartbeat_timeout);
  for (auto& a : *agents) {
    // The clock offset lives with the live session (from its heartbeats).
    absl::Duration offset;
    if (auto s = sessions_.Find(a.name()); s && s->clock_offset(&offset)) {
      a.set_clock_offset_ms(absl::ToInt64Milliseconds(offset));
    }
    *resp->add_agents() = std::move(a);
  }
  return grpc::Status::OK;
}

grpc::Status QueryService::Overview(grpc::ServerContext* ctx,
                                    const v1::OverviewRequest* req,
                                    v1::OverviewResponse* resp) {
  *resp->mutable_generated_at() =
      TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(clock_.Now()));
  auto agents = store_.ListAgents(options_.heartbeat_timeout);
  if (!agents.ok()) return StoreError(agents.status());
  sessions_.MarkLive(&*agents, clock_.Now(), clock_.MonotonicNow(),
                     options_.heartbeat_timeout);
  // One read for every host's latest paths: one per host made Overview
  // dozens of round trips, which a busy machine stretches.
  auto paths = store_.LatestPathsOfAll();
  if (!paths.ok()) return StoreError(paths.status());
  for (auto& a : *agents) {
    v1::HostOverview* h = resp->add_hosts();
    auto it = paths->find(a.name());
    if (it != paths->end()) {
      for (auto& p : it->second) *h->add_paths() = std::move(p);
    }
    *h->mutable_agent() = std::move(a);
  }
  auto matrix = store_.SpeedMatrix();
  if (!matrix.ok()) return StoreError(matrix.status());
  *resp->mutable_speed() = std::move(*matrix);
  {
    absl::MutexLock l(&alerts_mu_);
    if (analyzer_ != nullptr) {
      for (auto& a : analyzer_->Open()) {
        *resp->add_open_alerts() = ForClient(std::move(a));
      }
    } else {
      resp->add_notices("alerts are not available yet (database starting)");
    }
  }
  if (notices_) {
    for (auto& n : notices_()) {
      resp->add_notices(n);
      resp->mutable_speed()->add_notices(n);
    }
  }
  return grpc::Status::OK;
}

grpc::Status QueryService::PathHistory(grpc::ServerContext* ctx,
                                       const v1::PathHistoryRequest* req,
                                       v1::PathHistoryResponse* resp) {
  if (auto s = RequireHost(req->host()); !s.ok()) return s;
  if (req->target().empty()) return Invalid("target is required");
  int64_t since, until;
  uint32_t limit;
  if (auto s = Range(req->since(), req->until(), clock_.Now(), absl::Hours(24),
                     &since, &until);
      !s.ok()) {
    return s;
  }
  if (auto s = Limit(req->limit(), &limit); !s.ok()) return s;
  Store::HistoryQuery q{since, until, limit};
  if (auto s = HistoryResolution(req->resolution(), req->max_points(), since,
                                 "path runs", &q);
      !s.ok()) {
    return s;
  }
  q.without_hops = req->without_hops();
  q.with_routes = req->with_routes();
  auto r = store_.PathHistory(req->host(), req->target(), q);
  if (!r.ok()) return StoreError(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status QueryService::CurrentSockets(grpc::ServerContext* ctx,
                                          const v1::CurrentSocketsRequest* req,
                                          v1::CurrentSocketsResponse* resp) {
  if (auto s = RequireHost(req->host()); !s.ok()) return s;
  auto r = store_.CurrentSockets(req->host());
  if (!r.ok()) return StoreError(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status QueryService::SocketChanges(grpc::ServerContext* ctx,
                                         const v1::SocketChangesRequest* req,
                                         v1::SocketChangesResponse* resp) {
  if (auto s = RequireHost(req->host()); !s.ok()) return s;
  int64_t since, until;
  if (auto s = Range(req->since(), {}, clock_.Now(), absl::Hours(24), &since,
                     &until);
      !s.ok()) {
    return s;
  }
  auto r = store_.SocketChanges(req->host(), since);
  if (!r.ok()) return StoreError(r.status());
  *resp = std::move(*r);
  resp->set_resolution(v1::RESOLUTION_RAW);  // events are never aggregated
  return grpc::Status::OK;
}

grpc::Status QueryService::FileAccess(grpc::ServerContext* ctx,
                                      const v1::FileAccessRequest* req,
                                      v1::FileAccessResponse* resp) {
  if (auto s = RequireHost(req->host()); !s.ok()) return s;
  int64_t since, until;
  if (auto s = Range(req->since(), {}, clock_.Now(), absl::Hours(24), &since,
                     &until);
      !s.ok()) {
    return s;
  }
  auto r = store_.FileAccess(req->host(), since);
  if (!r.ok()) return StoreError(r.status());
  *resp = std::move(*r);
  resp->set_resolution(v1::RESOLUTION_RAW);  // facts keep exact times
  return grpc::Status::OK;
}

grpc::Status QueryService::SpeedMatrix(grpc::ServerContext* ctx,
                                       const v1::SpeedMatrixRequest* req,
                                       v1::SpeedMatrixResponse* resp) {
  auto r = store_.SpeedMatrix();
  if (!r.ok()) return StoreError(r.status());
  *resp = std::move(*r);
  if (notices_) {
    for (auto& n : notices_()) resp->add_notices(n);
  }
  return grpc::Status::OK;
}

grpc::Status QueryService::SpeedHistory(grpc::ServerContext* ctx,
                                        const v1::SpeedHistoryRequest* req,
                                        v1::SpeedHistoryResponse* resp) {
  if (auto s = RequireHost(req->client()); !s.ok()) return s;
  if (req->server().empty()) return Invalid("server is required");
  int64_t since, until;
  uint32_t limit;
  if (auto s = Range(req->since(), req->until(), clock_.Now(),
                     absl::Hours(24 * 30), &since, &until);
      !s.ok()) {
    return s;
  }
  if (auto s = Limit(req->limit(), &limit); !s.ok()) return s;
  Store::HistoryQuery q{since, until, limit};
  if (auto s = HistoryResolution(req->resolution(), req->max_points(), since,
                                 "speed results", &q);
      !s.ok()) {
    return s;
  }
  auto r = store_.SpeedHistory(req->client(), req->server(), q);
  if (!r.ok()) return StoreError(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

void QueryService::SetAlerts(Analyzer* analyzer, AlertStore* store,
                             AlertWatchers* watchers) {
  absl::MutexLock l(&alerts_mu_);
  analyzer_ = analyzer;
  alert_store_ = store;
  watchers_ = watchers;
}

namespace {

grpc::Status AlertsNotReady() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "alerts are not available yet: the collector's "
                      "database is down or still starting");
}

bool Matches(const v1::Alert& a, const v1::ListAlertsRequest& req) {
  if (req.kind() != v1::ALERT_KIND_UNSPECIFIED &&
      a.alert_kind() != req.kind()) {
    return false;
  }
  if (!req.host().empty()) {
    bool found = false;
    for (const auto& h : a.hosts()) found = found || h == req.host();
    if (!found) return false;
  }
  return true;
}

}  // namespace

grpc::Status QueryService::ListAlerts(grpc::ServerContext* ctx,
                                      const v1::ListAlertsRequest* req,
                                      v1::ListAlertsResponse* resp) {
  Analyzer* analyzer;
  AlertStore* store;
  {
    absl::MutexLock l(&alerts_mu_);
    analyzer = analyzer_;
    store = alert_store_;
  }
  if (analyzer == nullptr) return AlertsNotReady();
  // proto3 enums are open: a number this collector does not know would
  // match nothing, which reads as "no such alerts" rather than "unknown".
  if (AlertKindName(req->kind()).empty() &&
      req->kind() != v1::ALERT_KIND_UNSPECIFIED) {
    return Invalid(absl::StrCat("kind: no alert kind numbered ",
                                static_cast<int>(req->kind())));
  }
  uint32_t limit;
  if (auto s = Limit(req->limit(), &limit); !s.ok()) return s;
  int64_t since, until;
  if (auto s = Range(req->since(), {}, clock_.Now(), absl::Hours(24 * 30),
                     &since, &until);
      !s.ok()) {
    return s;
  }
  std::vector<v1::Alert> alerts;
  if (req->open_only()) {
    alerts = analyzer->Open();
  } else {
    auto recent = store->RecentAlerts(since, limit);
    if (!recent.ok()) return StoreError(recent.status());
    alerts = std::move(*recent);
  }
  for (auto& a : alerts) {
    a = ForClient(std::move(a));
    if (Matches(a, *req) &&
        static_cast<uint32_t>(resp->alerts_size()) < limit) {
      *resp->add_alerts() = std::move(a);
    }
  }
  return grpc::Status::OK;
}

grpc::Status QueryService::WatchAlerts(
    grpc::ServerContext* ctx, const v1::WatchAlertsRequest* req,
    grpc::ServerWriter<v1::AlertEvent>* writer) {
  Analyzer* analyzer;
  AlertWatchers* watchers;
  {
    absl::MutexLock l(&alerts_mu_);
    analyzer = analyzer_;
    watchers = watchers_;
  }
  if (analyzer == nullptr) return AlertsNotReady();
  // Subscribe first so nothing falls between the open list and the stream.
  auto w = watchers->Subscribe();
  // The header goes out first, at once, so a client sees the stream is up
  // even while nothing is open; gRPC's sync writer must not be asked for it
  // after a Write (that is an assertion in the library, not an error).
  writer->SendInitialMetadata();
  if (req->include_open()) {
    for (auto& a : analyzer->Open()) {
      v1::AlertEvent e;
      e.set_type(v1::AlertEvent::TYPE_OPENED);
      *e.mutable_at() = a.last_seen();
      *e.mutable_alert() = ForClient(std::move(a));
      if (!writer->Write(e)) break;
    }
  }
  // Send events until the client goes away or the collector stops.
  while (!ctx->IsCancelled()) {
    v1::AlertEvent e;
    if (watchers->Next(w, absl::Milliseconds(500), &e)) {
      *e.mutable_alert() = ForClient(std::move(*e.mutable_alert()));
      if (!writer->Write(e)) break;
    } else if (w->closed) {
      break;
    }
  }
  watchers->Unsubscribe(w);
  return grpc::Status::OK;
}

grpc::Status QueryService::Ack(grpc::ServerContext* ctx,
                               const v1::AckRequest* req,
                               v1::AckResponse* resp) {
  Analyzer* analyzer;
  {
    absl::MutexLock l(&alerts_mu_);
    analyzer = analyzer_;
  }
  if (analyzer == nullptr) return AlertsNotReady();
  if (req->alert_id() <= 0)
    return Invalid("alert_id must be a positive number");
  if (req->by().size() > 256) return Invalid("by: longer than 256 bytes");
  auto a =
      analyzer->Ack(req->alert_id(), req->by().empty() ? "cli" : req->by());
  if (!a.ok()) return StoreError(a.status());
  *resp->mutable_alert() = ForClient(std::move(*a));
  return grpc::Status::OK;
}

grpc::Status QueryService::ProbeNow(grpc::ServerContext* ctx,
                                    const v1::ProbeNowRequest* req,
                                    v1::ProbeNowResponse* resp) {
  if (auto s = RequireHost(req->host()); !s.ok()) return s;
  absl::Duration deadline = absl::Seconds(60);
  if (req->has_deadline()) {
    deadline = FromProtoDuration(req->deadline());
    if (deadline <= absl::ZeroDuration() || deadline > absl::Minutes(10)) {
      return Invalid("deadline must be between 0 and 10 minutes");
    }
  }
  v1::Command command;
  switch (req->probe()) {
    case v1::PROBE_KIND_PATH:
    case v1::PROBE_KIND_SOCKETS:
    case v1::PROBE_KIND_FILES:
      command.mutable_probe_now()->set_kind(req->probe());
      command.mutable_probe_now()->set_target(req->target());
      break;
    case v1::PROBE_KIND_SPEED: {
      if (req->target().empty()) {
        return Invalid("a speed test needs a target: a peer agent's name");
      }
      auto* t = command.mutable_speed_test();
      t->set_peer_agent(req->target());
      break;
    }
    default:
      return Invalid("probe must be path, sockets, files or speed");
  }
  auto agents = store_.ListAgents(options_.heartbeat_timeout);
  if (!agents.ok()) return StoreError(agents.status());
  bool known = false;
  for (const auto& a : *agents) known = known || a.name() == req->host();
  if (!known) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("unknown host '", req->host(), "'"));
  }
  if (command.has_speed_test()) {
    // The agent runs it only to a peer at an address its plan lists for
    // that peer: the first one the peer reported, as the scheduler uses.
    v1::SpeedTest* t = command.mutable_speed_test();
    const v1::AgentInfo* peer = nullptr;
    for (const auto& a : *agents) {
      if (a.name() == req->target()) peer = &a;
    }
    if (peer == nullptr) {
      return grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrCat("unknown peer agent '", req->target(), "'"));
    }
    if (peer->addresses().empty()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("peer agent '", req->target(),
                                       "' has reported no address"));
    }
    t->set_address(peer->addresses(0));
    t->set_port(options_.speed_port);
    *t->mutable_duration() = TimeUtil::NanosecondsToDuration(
        absl::ToInt64Nanoseconds(options_.speed_test_duration));
    t->set_bitrate_bps(options_.speed_bitrate_bps);
  }
  auto result = broker_.Run(req->host(), command, deadline);
  if (!result.ok()) return StoreError(result.status());
  *resp->mutable_result() = std::move(*result);
  return grpc::Status::OK;
}

}  // namespace netvigil::collector
