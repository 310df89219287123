#include "collector/pg_parts.h"

#include "collector/store/pg_iperf_auth.h"
#include "common/model/facts.h"

namespace netvigil::collector {
namespace {

constexpr int kStorePoolSize = 6;  // 4 ingest writers, queries, analysis

}  // namespace

PgParts::PgParts(const std::string& dsn, const AnalysisOptions& analysis,
                 const std::string& read_dsn)
    : store_(dsn, kStorePoolSize) {
  store_.SetReadDsn(read_dsn, kStorePoolSize);
  model::FactOptions facts;
  facts.ephemeral_port_min = analysis.ephemeral_port_min;
  facts.ephemeral_port_max = analysis.ephemeral_port_max;
  store_.SetFactOptions(facts);
}

CollectorParts PgParts::Parts(Clock& clock, std::unique_ptr<ServiceHost> host) {
  CollectorParts p;
  p.store = &store_;
  p.alerts = &alerts_;
  p.certs = &certs_;
  p.clock = &clock;
  p.prepare_database = [this] { return store_.Migrate(); };
  p.iperf_secrets = [this] { return LoadOrCreateIperfSecrets(store_); };
  p.host = std::move(host);
  return p;
}

}  // namespace netvigil::collector
