// The collector process: Agent, Enroll and Query services over a store,
// the ingest pipeline, the analysis and alerts, and the background work
// (database preparation with retry, ticks, retention, speed tests), built
// from injected parts (CollectorParts): the stores, the clock and the host
// that serves the services. collector_main.cc wires the production parts
// (PgParts, NetworkHost); tests wire fakes and an in-process host.
// Thread-safe: Start() once, then Shutdown() from any thread.
#ifndef NETVIGIL_COLLECTOR_COLLECTOR_H_
#define NETVIGIL_COLLECTOR_COLLECTOR_H_

#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "collector/admin/pki_admin.h"
#include "collector/alerts/alert_log.h"
#include "collector/alerts/alert_store.h"
#include "collector/analysis/analysis_queue.h"
#include "collector/analysis/analyzer.h"
#include "collector/ingest/agent_service.h"
#include "collector/ingest/command_broker.h"
#include "collector/ingest/enroll_service.h"
#include "collector/ingest/revocation_watcher.h"
#include "collector/ingest/session_registry.h"
#include "collector/metrics/collector_metrics.h"
#include "collector/metrics/metrics_server.h"
#include "collector/notify/notifier.h"
#include "collector/query/alert_watchers.h"
#include "collector/query/query_service.h"
#include "collector/scheduler/mesh_plans.h"
#include "collector/scheduler/speed_loop.h"
#include "collector/service_host.h"
#include "collector/store/cert_store.h"
#include "collector/store/store.h"
#include "collector/web/web_admin.h"
#include "collector/web/web_server.h"
#include "common/clock.h"
#include "common/collector_config.h"

namespace netvigil::collector {

// What a Collector is built from: everything that touches the world. The
// pointers are not owned and must outlive the Collector; the host is.
struct CollectorParts {
  Store* store = nullptr;        // results and history; required
  AlertStore* alerts = nullptr;  // alerts and analysis baselines; required
  // Agents' and admins' certificates, enrollment tokens; required unless
  // --insecure.
  CertStore* certs = nullptr;
  Clock* clock = nullptr;  // null: RealClock()
  // Brings the database's schema up to date; called with backoff until it
  // returns OK. FAILED_PRECONDITION or INVALID_ARGUMENT (a schema newer
  // than this binary) is not retried. Unset: nothing to prepare.
  std::function<absl::Status()> prepare_database;
  // The mesh's iperf3 secrets (see MeshPlans); called until it succeeds.
  MeshPlans::SecretsLoader iperf_secrets;
  // Serves the services; required.
  std::unique_ptr<ServiceHost> host;
  // Retention runs at start and then this often; zero: never.
  absl::Duration retention_interval = absl::Hours(1);
};

class Collector {
 public:
  // `analysis` holds the rules' thresholds (parsed from config.analysis).
  // INVALID_ARGUMENT from Start() when a required part is missing.
  Collector(CollectorConfig config, AnalysisOptions analysis, bool insecure,
            CollectorParts parts);
  ~Collector();

  // Starts serving and the database work; a database that is down is not
  // an error here (it is retried), a port in use is.
  absl::Status Start();
  void Shutdown();
  // Reopens the alert log (after logrotate moved it; on SIGHUP).
  void ReopenLogs();

  // For tests and stats: the Agent service (null before Start), and
  // whether the analysis has started (the database came up).
  AgentService* agent_service() { return agent_service_.get(); }
  bool analyzing() const { return analyzing_.load(); }

 private:
  void MigrateLoop();
  // After the schema is there: load the baselines and open alerts, then let
  // results reach the analysis.
  absl::Status StartAnalysis();
  void TickLoop();
  void RunRetention();

  const CollectorConfig config_;
  const bool insecure_;
  CollectorParts parts_;
  Clock& clock_;
  // The CA and server certificate; null with --insecure and no query_tcp.
  std::unique_ptr<ServerPki> pki_;
  std::unique_ptr<EnrollService> enroll_service_;
  std::unique_ptr<RevocationWatcher> revocations_;
  SessionRegistry sessions_;
  CommandBroker broker_{sessions_, clock_};
  std::unique_ptr<MeshPlans> mesh_plans_;
  std::unique_ptr<AgentService> agent_service_;
  std::unique_ptr<QueryService> query_service_;
  // /metrics, when listen.metrics is set; stopped before the services.
  metrics::ResultCounters result_counters_;
  std::unique_ptr<metrics::MetricsServer> metrics_;
  // The dashboard (listen.web); null when not configured.
  std::unique_ptr<web::WebServer> web_server_;
  std::unique_ptr<SpeedLoop> speed_loop_;
  const AnalysisOptions analysis_options_;
  AlertWatchers watchers_;
  std::unique_ptr<AlertLog> alert_log_;
  std::unique_ptr<Analyzer> analyzer_;
  // Sends the notification outbox (README "Notifications"); started with
  // the analysis, once the database is there.
  std::unique_ptr<Notifier> notifier_;
  // Fed by agent_service_'s ingest writers; stopped before they are joined
  // (see ~Collector) and destroyed before the analyzer.
  std::unique_ptr<AnalysisQueue> analysis_queue_;
  std::atomic<bool> analyzing_{false};
  std::thread ticker_;
  absl::Notification stop_;
  std::thread migrator_;
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_COLLECTOR_H_
