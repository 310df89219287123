// The collector's production stores: PostgreSQL behind every store seam
// (results and history, certificates, alerts) over one connection pool,
// and the iperf3 secrets kept there. Owns them; hands out CollectorParts
// that point at them. Thread-safe (as the stores are).
#ifndef NETVIGIL_COLLECTOR_PG_PARTS_H_
#define NETVIGIL_COLLECTOR_PG_PARTS_H_

#include <memory>
#include <string>

#include "collector/alerts/pg_alert_store.h"
#include "collector/analysis/analysis_options.h"
#include "collector/collector.h"
#include "collector/store/pg_cert_store.h"
#include "collector/store/pg_store.h"

namespace netvigil::collector {

class PgParts {
 public:
  // Does not connect (the first use does). The store's history decides
  // sameness with the analysis' ephemeral port range.
  // `read_dsn`, when not empty, is where the Query service reads
  // (PgStore::SetReadDsn).
  PgParts(const std::string& dsn, const AnalysisOptions& analysis,
          const std::string& read_dsn = "");

  // Parts for a Collector: these stores, migrations as its database
  // preparation, `clock` and `host`. This object must outlive the
  // Collector.
  CollectorParts Parts(Clock& clock, std::unique_ptr<ServiceHost> host);

 private:
  PgStore store_;
  PgCertStore certs_{store_};
  PgAlertStore alerts_{store_};
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_PG_PARTS_H_
