// The Query service: what the CLI, grpcurl and scripts ask the collector.
// Served on a UNIX socket by default (file permissions are the access
// control). Thread-safe.
#ifndef NETVIGIL_COLLECTOR_QUERY_QUERY_SERVICE_H_
#define NETVIGIL_COLLECTOR_QUERY_QUERY_SERVICE_H_

#include <functional>

#include "collector/alerts/alert_store.h"
#include "collector/analysis/analyzer.h"
#include "collector/ingest/command_broker.h"
#include "collector/ingest/session_registry.h"
#include "collector/query/alert_watchers.h"
#include "collector/store/store.h"
#include "common/clock.h"
#include "netvigil/v1/query.grpc.pb.h"

namespace netvigil::collector {

struct QueryServiceOptions {
  absl::Duration heartbeat_timeout = absl::Seconds(20);
  // What a speed test asked for through ProbeNow runs: to the peer's
  // first address, on this port, for this long, at this bitrate (0: no
  // limit), as the scheduler's do.
  uint32_t speed_port = 5201;
  absl::Duration speed_test_duration = absl::Seconds(10);
  uint64_t speed_bitrate_bps = 0;
  // How long raw path runs and speed results are kept (retention.raw_days):
  // a RAW history request from before it is refused.
  absl::Duration raw_retention = absl::Hours(24 * 7);
};

class QueryService final : public v1::Query::Service {
 public:
  // Nothing is owned; everything must outlive the service.
  QueryService(QueryServiceOptions options, Store& store, Clock& clock,
               SessionRegistry& sessions, CommandBroker& broker);

  // Extra notices for Overview and SpeedMatrix (e.g. a speed mesh that does
  // not fit its period). Set before the server starts.
  void SetNoticeSource(std::function<std::vector<std::string>()> fn) {
    notices_ = std::move(fn);
  }

  grpc::Status ListAgents(grpc::ServerContext* ctx,
                          const v1::ListAgentsRequest* req,
                          v1::ListAgentsResponse* resp) override;
  grpc::Status Overview(grpc::ServerContext* ctx,
                        const v1::OverviewRequest* req,
                        v1::OverviewResponse* resp) override;
  grpc::Status PathHistory(grpc::ServerContext* ctx,
                           const v1::PathHistoryRequest* req,
                           v1::PathHistoryResponse* resp) override;
  grpc::Status CurrentSockets(grpc::ServerContext* ctx,
                              const v1::CurrentSocketsRequest* req,
                              v1::CurrentSocketsResponse* resp) override;
  grpc::Status SocketChanges(grpc::ServerContext* ctx,
                             const v1::SocketChangesRequest* req,
                             v1::SocketChangesResponse* resp) override;
  grpc::Status FileAccess(grpc::ServerContext* ctx,
                          const v1::FileAccessRequest* req,
                          v1::FileAccessResponse* resp) override;
  grpc::Status SpeedMatrix(grpc::ServerContext* ctx,
                           const v1::SpeedMatrixRequest* req,
                           v1::SpeedMatrixResponse* resp) override;
  grpc::Status SpeedHistory(grpc::ServerContext* ctx,
                            const v1::SpeedHistoryRequest* req,
                            v1::SpeedHistoryResponse* resp) override;
  // The alert side; until it is set (the database has not come up yet)
  // the alert methods answer UNAVAILABLE. Not owned.
  void SetAlerts(Analyzer* analyzer, AlertStore* store, AlertWatchers* watchers)
      ABSL_LOCKS_EXCLUDED(alerts_mu_);

  grpc::Status ListAlerts(grpc::ServerContext* ctx,
                          const v1::ListAlertsRequest* req,
                          v1::ListAlertsResponse* resp) override;
  grpc::Status WatchAlerts(grpc::ServerContext* ctx,
                           const v1::WatchAlertsRequest* req,
                           grpc::ServerWriter<v1::AlertEvent>* writer) override;
  grpc::Status Ack(grpc::ServerContext* ctx, const v1::AckRequest* req,
                   v1::AckResponse* resp) override;
  grpc::Status ProbeNow(grpc::ServerContext* ctx,
                        const v1::ProbeNowRequest* req,
                        v1::ProbeNowResponse* resp) override;

 private:
  grpc::Status HistoryResolution(v1::Resolution resolution, uint32_t max_points,
                                 int64_t since_us, const char* what,
                                 Store::HistoryQuery* q);

  const QueryServiceOptions options_;
  Store& store_;
  Clock& clock_;
  SessionRegistry& sessions_;
  CommandBroker& broker_;
  absl::Mutex alerts_mu_;
  Analyzer* analyzer_ ABSL_GUARDED_BY(alerts_mu_) = nullptr;
  AlertStore* alert_store_ ABSL_GUARDED_BY(alerts_mu_) = nullptr;
  AlertWatchers* watchers_ ABSL_GUARDED_BY(alerts_mu_) = nullptr;
  std::function<std::vector<std::string>()> notices_;
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_QUERY_QUERY_SERVICE_H_
