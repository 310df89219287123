// The mesh's iperf3 secrets in PostgreSQL (migration 0008_iperf_auth.sql),
// through PgStore's connection pool. Thread-safe.
#ifndef NETVIGIL_COLLECTOR_STORE_PG_IPERF_AUTH_H_
#define NETVIGIL_COLLECTOR_STORE_PG_IPERF_AUTH_H_

#include <string>

#include "absl/status/statusor.h"
#include "collector/store/pg_store.h"

namespace netvigil::collector {

// What every collector sharing the database issues iperf3 credentials from.
struct IperfMeshSecrets {
  std::string rsa_private_pem;
  std::string rsa_public_pem;
  std::string user_secret;  // raw bytes
};

// The stored secrets; when there are none yet, new ones are made and stored
// (a concurrent collector's, if it stored first, win: both then return
// those). Unavailable while the database is.
absl::StatusOr<IperfMeshSecrets> LoadOrCreateIperfSecrets(PgStore& pg);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_STORE_PG_IPERF_AUTH_H_
