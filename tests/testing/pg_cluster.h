// A private PostgreSQL cluster for C++ tests: deploy/pgcluster.sh in a temp
// folder under /var/tmp (UNIX socket only), stopped and removed at the end.
// Thread-compatible.
#ifndef NETVIGIL_TESTS_TESTING_PG_CLUSTER_H_
#define NETVIGIL_TESTS_TESTING_PG_CLUSTER_H_

#include <string>

#include "absl/status/statusor.h"

namespace netvigil::testing {

class PgCluster {
 public:
  // Creates and starts a cluster; an error says why it could not.
  static absl::StatusOr<PgCluster*> Start();
  ~PgCluster();

  const std::string& dsn() const { return dsn_; }
  const std::string& dir() const { return dir_; }

 private:
  PgCluster() = default;
  std::string dir_;
  std::string dsn_;
};

// Runs a shell command; its stdout (trailing newlines removed) or an error
// with its exit status.
absl::StatusOr<std::string> Shell(const std::string& command);

}  // namespace netvigil::testing

#endif  // NETVIGIL_TESTS_TESTING_PG_CLUSTER_H_
