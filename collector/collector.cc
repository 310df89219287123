#include "collector/collector.h"

#include <malloc.h>

#include "absl/strings/str_cat.h"
#include "common/backoff.h"
#include "common/model/facts.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {
namespace {

// Committed results waiting for analysis before ingest waits for it.
constexpr size_t kAnalysisQueueCapacity = 2'000;

// What the collector knows of netvigil's own traffic: every agent's
// addresses with the one speed port, and the external speed targets. The
// other end of a speed test is thus known even where the agent cannot tell
// it from a stranger's connection.
model::OwnEndpoints OwnEndpointsOf(const CollectorConfig& config,
                                   const std::vector<v1::AgentInfo>& agents) {
  model::OwnEndpoints own;
  if (!config.plan.speed().enabled()) return own;
  own.speed_port = config.speed_port;
  for (const v1::AgentInfo& a : agents) {
    for (const std::string& addr : a.addresses()) {
      own.agents.insert(model::CanonicalAddress(addr));
    }
  }
  for (const auto& t : config.plan.speed().external_targets()) {
    own.servers.insert({model::CanonicalAddress(t.address()), t.port()});
  }
  return own;
}

}  // namespace

Collector::Collector(CollectorConfig config, AnalysisOptions analysis,
                     bool insecure, CollectorParts parts)
    : config_(std::move(config)),
      insecure_(insecure),
      parts_(std::move(parts)),
      clock_(parts_.clock != nullptr ? *parts_.clock : RealClock()),
      analysis_options_(analysis) {}

Collector::~Collector() {
  Shutdown();
  // The ingest writers may be waiting to hand results to analysis: stop it
  // first so they finish, then end them (and their pipeline).
  if (analysis_queue_) analysis_queue_->Stop();
  agent_service_.reset();
}

absl::Status Collector::Start() {
  if (parts_.store == nullptr || parts_.alerts == nullptr ||
      parts_.host == nullptr || (!insecure_ && parts_.certs == nullptr)) {
    return absl::InvalidArgumentError(
        "collector parts missing: a store, an alert store, a service host "
        "and (unless --insecure) a certificate store are required");
  }
  Store& store = *parts_.store;
  // The CA is needed for TLS to agents and for the Query service over TCP
  // (which is TLS even with --insecure: it is never plain text).
  if (!insecure_ || !config_.query_tcp.empty() ||
      (!config_.web_listen.empty() &&
       !web::IsLoopbackListen(config_.web_listen))) {
    absl::StatusOr<ServerPki> p = LoadServerPki(config_.state_dir);
    if (!p.ok()) return p.status();
    pki_ = std::make_unique<ServerPki>(std::move(*p));
  }
  AgentServiceOptions agent_options;
  agent_options.plan = config_.plan;
  agent_options.heartbeat_timeout = config_.heartbeat_timeout;
  agent_options.insecure = insecure_;
  if (!insecure_) agent_options.certs = parts_.certs;
  agent_options.on_clock_offset = [this](const std::string& agent,
                                         absl::Duration offset) {
    if (analyzing_.load()) analyzer_->OnClockOffset(agent, offset);
  };
  // Each agent's own plan (peers, iperf3 users) and iperf3 credentials.
  mesh_plans_ = std::make_unique<MeshPlans>(
      config_.plan, config_.speed_port,
      [this]() -> absl::StatusOr<IperfMeshSecrets> {
        if (!parts_.iperf_secrets) {
          return absl::FailedPreconditionError(
              "no source of iperf3 secrets was given to the collector");
        }
        return parts_.iperf_secrets();
      });
  agent_options.complete_welcome =
      [m = mesh_plans_.get()](const std::string& agent, v1::Welcome* welcome) {
        return m->CompleteWelcome(agent, welcome);
      };
  agent_service_ =
      std::make_unique<AgentService>(agent_options, store, clock_, sessions_);
  QueryServiceOptions query_options;
  query_options.heartbeat_timeout = config_.heartbeat_timeout;
  query_options.raw_retention = absl::Hours(24) * config_.raw_days;
  query_options.speed_port = config_.speed_port;
  query_options.speed_test_duration = config_.speed_test_duration;
  query_options.speed_bitrate_bps = config_.plan.speed().max_bitrate_bps();
  query_service_ = std::make_unique<QueryService>(query_options, store, clock_,
                                                  sessions_, broker_);
  if (config_.plan.speed().enabled()) {
    SpeedSchedulerOptions speed;
    speed.period = config_.speed_period;
    speed.test_duration = config_.speed_test_duration;
    speed.slot_overhead = config_.speed_slot_overhead;
    speed.max_concurrent = config_.max_concurrent_speed_tests;
    speed.port = config_.speed_port;
    speed.bitrate_bps = config_.plan.speed().max_bitrate_bps();
    speed.external_targets.assign(
        config_.plan.speed().external_targets().begin(),
        config_.plan.speed().external_targets().end());
    speed_loop_ = std::make_unique<SpeedLoop>(
        speed, store, broker_, clock_, config_.heartbeat_timeout, &sessions_);
    // Agents learn a new peer (and its iperf3 user) before a test to it.
    speed_loop_->SetAgentsObserver(
        [this](const std::vector<v1::AgentInfo>& agents) {
          if (analyzer_) {
            analyzer_->SetOwnEndpoints(OwnEndpointsOf(config_, agents));
          }
          mesh_plans_->SetAgents(agents);
          return mesh_plans_->PushChanged(sessions_) > 0;
        });
    query_service_->SetNoticeSource([this] { return speed_loop_->notices(); });
  }
  analysis_queue_ = std::make_unique<AnalysisQueue>(
      [this](const std::vector<AnalysisQueue::Item>& results) {
        // Results committed before the baselines were loaded are stored
        // but not compared (a short window at start).
        if (analyzing_.load()) analyzer_->OnResults(results);
      },
      kAnalysisQueueCapacity);
  agent_service_->AddResultObserver(
      [this](const std::string& agent,
             const std::shared_ptr<const v1::Result>& r) {
        broker_.OnResult(agent, *r);
        analysis_queue_->Push(agent, r);
      });
  if (!config_.alert_log.empty()) {
    alert_log_ = std::make_unique<AlertLog>(config_.alert_log);
    if (absl::Status s = alert_log_->Open(); !s.ok()) {
      return absl::Status(
          s.code(),
          absl::StrCat("alert log ", config_.alert_log, ": ", s.message()));
    }
  }
  {
    // Before the analyzer writes its first event: each event then gets its
    // outbox rows in its own transaction.
    auto channels = Notifier::BuildChannels(config_.notify);
    if (!channels.ok()) {
      return absl::Status(
          channels.status().code(),
          absl::StrCat("notify: ", channels.status().message()));
    }
    parts_.alerts->SetOutboxOptions(Notifier::OutboxOptionsFor(config_.notify));
    notifier_ = std::make_unique<Notifier>(config_.notify, std::move(*channels),
                                           *parts_.alerts, clock_);
  }
  analyzer_ =
      std::make_unique<Analyzer>(analysis_options_, *parts_.alerts, clock_);
  notifier_->SetHealthListener(
      [this](const std::string& channel, bool failing, const std::string& why) {
        if (analyzing_.load())
          analyzer_->OnNotifyChannel(channel, failing, why);
      });
  analyzer_->SetOwnEndpoints(OwnEndpointsOf(config_, {}));
  analyzer_->AddListener([this](const v1::AlertEvent& e) {
    watchers_.Publish(e);
    if (alert_log_) {
      absl::Status s = alert_log_->Write(e);
      if (!s.ok()) {
        spdlog::error("alert_log_write_failed error=\"{}\"",
                      std::string(s.message()));
      }
    }
  });
  agent_service_->AddCommandStatusObserver(
      [this](const std::string& agent, const v1::CommandStatus& s) {
        broker_.OnCommandStatus(agent, s);
      });

  if (insecure_) {
    spdlog::warn(
        "insecure_mode agent_listen={} detail=\"plain text without "
        "client certificates: for tests only\"",
        config_.agent_listen);
  }

  if (!insecure_ && !config_.enroll_listen.empty()) {
    EnrollServiceOptions enroll;
    enroll.ca_cert_pem = pki_->ca_cert;
    enroll.ca_key_pem = pki_->ca_key;
    enroll_service_ =
        std::make_unique<EnrollService>(enroll, *parts_.certs, clock_);
  }
  ServiceHost::Services services;
  services.agent = agent_service_.get();
  services.enroll = enroll_service_.get();
  services.query = query_service_.get();
  services.pki = pki_.get();
  services.certs = parts_.certs;
  if (!config_.metrics_listen.empty()) {
    agent_service_->AddResultObserver(
        [this](const std::string&, const std::shared_ptr<const v1::Result>& r) {
          result_counters_.OnResult(*r);
        });
    // The page's latest figures are the Query service's own Overview, so
    // they are what `netvigil overview` shows.
    metrics_ = std::make_unique<metrics::MetricsServer>(
        metrics::MetricsServerOptions{config_.metrics_listen},
        [this]() -> absl::StatusOr<v1::OverviewResponse> {
          grpc::ServerContext ctx;
          v1::OverviewRequest req;
          v1::OverviewResponse resp;
          grpc::Status s = query_service_->Overview(&ctx, &req, &resp);
          if (!s.ok()) return absl::UnavailableError(s.error_message());
          return resp;
        },
        [this] { return agent_service_->ingest_stats(); }, result_counters_);
    if (absl::Status s = metrics_->Start(); !s.ok()) return s;
  }
  if (absl::Status s = parts_.host->Start(services); !s.ok()) return s;
  if (!insecure_) {
    revocations_ =
        std::make_unique<RevocationWatcher>(*parts_.certs, sessions_);
    revocations_->Start();
  }
  if (!config_.web_listen.empty()) {
    web::WebServerOptions web;
    web.listen = config_.web_listen;
    web.session_idle = config_.web_session_idle;
    web.password_file = web::WebPasswordFile(config_);
    web.pki = pki_.get();
    web_server_ =
        std::make_unique<web::WebServer>(web, *query_service_, clock_);
    if (absl::Status s = web_server_->Start(); !s.ok()) return s;
  }
  migrator_ = std::thread([this] { MigrateLoop(); });
  if (speed_loop_) speed_loop_->Start();
  return absl::OkStatus();
}

void Collector::MigrateLoop() {
  Backoff backoff({absl::Milliseconds(500), absl::Seconds(30), 2.0});
  std::string last_error;
  while (!stop_.HasBeenNotified()) {
    absl::Status s =
        parts_.prepare_database ? parts_.prepare_database() : absl::OkStatus();
    if (s.ok()) {
      spdlog::info("database_ready");
      // The analysis needs its baselines from the database; retry like the
      // migrations until they load.
      while (!stop_.HasBeenNotified()) {
        absl::Status a = StartAnalysis();
        if (a.ok()) return;
        spdlog::error("analysis_not_started retrying=yes error=\"{}\"",
                      std::string(a.message()));
        stop_.WaitForNotificationWithTimeout(backoff.Next());
      }
      return;
    }
    if (std::string(s.message()) != last_error) {
      last_error = std::string(s.message());
      spdlog::error("database_unavailable retrying=yes error=\"{}\"",
                    last_error);
    }
    if (absl::IsFailedPrecondition(s) || absl::IsInvalidArgument(s)) {
      // A schema newer than this binary: retrying will not help, but the
      // Query service stays up to say so.
      spdlog::error("database_schema_incompatible error=\"{}\"", last_error);
      return;
    }
    stop_.WaitForNotificationWithTimeout(backoff.Next());
  }
}

absl::Status Collector::StartAnalysis() {
  absl::Status s = analyzer_->Load();
  if (!s.ok()) return s;
  analyzing_.store(true);
  query_service_->SetAlerts(analyzer_.get(), parts_.alerts, &watchers_);
  ticker_ = std::thread([this] { TickLoop(); });
  notifier_->Start();
  spdlog::info("analysis_started open_alerts={}", analyzer_->Open().size());
  return absl::OkStatus();
}

void Collector::ReopenLogs() {
  if (!alert_log_) return;
  absl::Status s = alert_log_->Reopen();
  if (s.ok()) {
    spdlog::info("alert_log_reopened path={}", config_.alert_log);
  } else {
    spdlog::error("alert_log_reopen_failed path={} error=\"{}\"",
                  config_.alert_log, std::string(s.message()));
  }
}

void Collector::TickLoop() {
  // Time-based transitions (settle windows, resolutions) need a clock tick
  // even when no result arrives; retention runs at start and hourly.
  absl::Time next_retention = clock_.Now();
  do {
    analyzer_->Tick();
    if (enroll_service_) enroll_service_->FlushLog();
    // Give freed pages back (glibc keeps them in its arenas): what a burst
    // of large messages used should not stay in the RSS.
    malloc_trim(0);
    if (parts_.retention_interval > absl::ZeroDuration() &&
        clock_.Now() >= next_retention) {
      RunRetention();
      next_retention = clock_.Now() + parts_.retention_interval;
    }
  } while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(5)));
}

void Collector::RunRetention() {
  const absl::Time now = clock_.Now();
  collector::Store::RetentionPolicy policy;
  const absl::Duration day = absl::Hours(24);
  policy.raw = day * config_.raw_days;
  policy.hourly = day * config_.hourly_days;
  policy.results = day * config_.results_days;
  policy.events = day * config_.events_days;
  policy.gone_facts = day * config_.gone_facts_days;
  policy.resolved_alerts = day * config_.resolved_alerts_days;
  policy.gaps = day * config_.gaps_days;
  policy.outbox = day * config_.outbox_days;
  const absl::Time started = absl::Now();
  auto stats = parts_.store->ApplyRetention(policy, now);
  if (!stats.ok()) {
    spdlog::error("retention_failed error=\"{}\"",
                  std::string(stats.status().message()));
    return;
  }
  spdlog::info(
      "retention_done seconds={:.3f} partitions_dropped={} "
      "path_runs_aggregated={} speed_results_aggregated={} facts_deleted={} "
      "alerts_deleted={} rows_deleted={}",
      absl::ToDoubleSeconds(absl::Now() - started), stats->partitions_dropped,
      stats->path_runs_aggregated, stats->speed_results_aggregated,
      stats->facts_deleted, stats->alerts_deleted, stats->rows_deleted);
}

void Collector::Shutdown() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  watchers_.CloseAll();
  if (web_server_) web_server_->Stop();
  if (revocations_) revocations_->Stop();
  // gRPC's deadlines are wall-clock times whatever the collector's clock.
  if (metrics_) metrics_->Stop();
  if (parts_.host) parts_.host->Shutdown(absl::Now() + absl::Seconds(2));
  if (migrator_.joinable()) migrator_.join();
  if (ticker_.joinable()) ticker_.join();
  if (notifier_) notifier_->Stop();
  if (speed_loop_) speed_loop_->Stop();
}

}  // namespace netvigil::collector
