// The collector process: store, Agent and Query services, their servers, and
// the background work (migrations with retry). Thread-safe: Start() once,
// then Shutdown() from any thread.
#ifndef NETVIGIL_COLLECTOR_COLLECTOR_H_
#define NETVIGIL_COLLECTOR_COLLECTOR_H_

#include <memory>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "collector/admin/pki_admin.h"
#include "collector/alerts/alert_log.h"
#include "collector/alerts/pg_alert_store.h"
#include "collector/analysis/analysis_queue.h"
#include "collector/analysis/analyzer.h"
#include "collector/connection_gate.h"
#include "collector/ingest/agent_service.h"
#include "collector/ingest/command_broker.h"
#include "collector/ingest/enroll_service.h"
#include "collector/ingest/revocation_watcher.h"
#include "collector/ingest/session_registry.h"
#include "collector/query/alert_watchers.h"
#include "collector/query/query_service.h"
#include "collector/scheduler/mesh_plans.h"
#include "collector/scheduler/speed_loop.h"
#include "collector/store/pg_cert_store.h"
#include "collector/store/pg_store.h"
#include "common/collector_config.h"
#include "grpcpp/server.h"

namespace netvigil::collector {

class Collector {
 public:
  // `analysis` holds the rules' thresholds (parsed from config.analysis).
  // `descriptors` sizes the listeners' connection caps (see
  // RaiseDescriptorLimit in connection_gate.h).
  Collector(CollectorConfig config, AnalysisOptions analysis, bool insecure,
            DescriptorBudget descriptors = RaiseDescriptorLimit());
  ~Collector();

  // Binds both listeners and starts the database work; a database that is
  // down is not an error here (it is retried), a port in use is.
  absl::Status Start();
  void Shutdown();
  // Reopens the alert log (after logrotate moved it; on SIGHUP).
  void ReopenLogs();

 private:
  void MigrateLoop();
  // After the schema is there: load the baselines and open alerts, then let
  // results reach the analysis.
  absl::Status StartAnalysis();
  void TickLoop();
  void RunRetention();

  const CollectorConfig config_;
  const bool insecure_;
  const DescriptorBudget descriptors_;
  PgStore store_;
  PgCertStore cert_store_{store_};
  // The CA and server certificate; null with --insecure and no query_tcp.
  std::unique_ptr<ServerPki> pki_;
  std::unique_ptr<EnrollService> enroll_service_;
  std::unique_ptr<RevocationWatcher> revocations_;
  SessionRegistry sessions_;
  CommandBroker broker_{sessions_, RealClock()};
  std::unique_ptr<MeshPlans> mesh_plans_;
  std::unique_ptr<AgentService> agent_service_;
  std::unique_ptr<QueryService> query_service_;
  std::unique_ptr<SpeedLoop> speed_loop_;
  const AnalysisOptions analysis_options_;
  PgAlertStore alert_store_{store_};
  AlertWatchers watchers_;
  std::unique_ptr<AlertLog> alert_log_;
  std::unique_ptr<Analyzer> analyzer_;
  // Fed by agent_service_'s ingest writers; stopped before they are joined
  // (see ~Collector) and destroyed before the analyzer.
  std::unique_ptr<AnalysisQueue> analysis_queue_;
  std::atomic<bool> analyzing_{false};
  std::thread ticker_;
  // Our own accept loops in front of the servers (caps, deadlines, EMFILE);
  // stopped before the servers shut down.
  std::unique_ptr<ConnectionGate> agent_gate_;
  std::unique_ptr<ConnectionGate> enroll_gate_;
  std::unique_ptr<ConnectionGate> query_unix_gate_;
  std::unique_ptr<ConnectionGate> query_tcp_gate_;
  std::unique_ptr<grpc::Server> agent_server_;
  std::unique_ptr<grpc::Server> enroll_server_;
  std::unique_ptr<grpc::Server> query_server_;
  absl::Notification stop_;
  std::thread migrator_;
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_COLLECTOR_H_
