// The Query service: what the CLI, grpcurl and scripts ask the collector.
// Served on a UNIX socket by default (file permissions are the access
// control). Thread-safe.
#ifndef NETVIGIL_COLLECTOR_QUERY_QUERY_SERVICE_H_
#define NETVIGIL_COLLECTOR_QUERY_QUERY_SERVICE_H_

#include "collector/ingest/session_registry.h"
#include "collector/store/store.h"
#include "common/clock.h"
#include "netvigil/v1/query.grpc.pb.h"

namespace netvigil::collector {

struct QueryServiceOptions {
  absl::Duration heartbeat_timeout = absl::Seconds(20);
};

class QueryService final : public v1::Query::Service {
 public:
  // Nothing is owned; everything must outlive the service.
  QueryService(QueryServiceOptions options, Store& store, Clock& clock,
               SessionRegistry& sessions);

  grpc::Status ListAgents(grpc::ServerContext* ctx,
                          const v1::ListAgentsRequest* req,
                          v1::ListAgentsResponse* resp) override;

 private:
  const QueryServiceOptions options_;
  Store& store_;
  Clock& clock_;
  SessionRegistry& sessions_;
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_QUERY_QUERY_SERVICE_H_
