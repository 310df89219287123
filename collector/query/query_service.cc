#include "collector/query/query_service.h"

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {
namespace {

// UNAVAILABLE from the store means the database is down: say so plainly.
grpc::Status StoreError(const absl::Status& s) {
  if (absl::IsUnavailable(s)) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat("the collector's database is down: ",
                                     s.message()));
  }
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

}  // namespace

QueryService::QueryService(QueryServiceOptions options, Store& store,
                           Clock& clock, SessionRegistry& sessions)
    : options_(options), store_(store), clock_(clock), sessions_(sessions) {}

grpc::Status QueryService::ListAgents(grpc::ServerContext* ctx,
                                      const v1::ListAgentsRequest* req,
                                      v1::ListAgentsResponse* resp) {
  auto agents = store_.ListAgents(options_.heartbeat_timeout);
  if (!agents.ok()) return StoreError(agents.status());
  for (auto& a : *agents) *resp->add_agents() = std::move(a);
  return grpc::Status::OK;
}

}  // namespace netvigil::collector
