// The collector's CA on disk and the commands that manage it:
// `pki init`, `pki admin NAME`, `enroll NAME`, `revoke NAME`. The CA and the
// server certificate live in <state_dir>/pki, private keys mode 0600; what
// was issued and revoked lives in PostgreSQL (CertStore). Also the server
// credentials the collector's listeners use. Thread-compatible.
#ifndef NETVIGIL_COLLECTOR_ADMIN_PKI_ADMIN_H_
#define NETVIGIL_COLLECTOR_ADMIN_PKI_ADMIN_H_

#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "collector/store/cert_store.h"
#include "grpcpp/security/server_credentials.h"

namespace netvigil::collector {

// The collector's own TLS material, as PEM.
struct ServerPki {
  std::string dir;
  std::string ca_cert;
  std::string ca_key;
  std::string server_cert;
  std::string server_key;
  std::string server_name;     // the name agents pin (first DNS name)
  std::string ca_fingerprint;  // SHA-256, "AB:CD:..."
};

struct PkiInitOptions {
  std::string state_dir;
  std::vector<std::string> dns_names;  // first: the name agents pin
  std::vector<std::string> ip_addresses;
};

// Creates the CA and the server certificate; FAILED_PRECONDITION when the
// folder already has a CA (a new CA would cut every agent off).
absl::StatusOr<ServerPki> InitPki(const PkiInitOptions& options);
// Reads what InitPki wrote; FAILED_PRECONDITION saying to run `pki init`.
absl::StatusOr<ServerPki> LoadServerPki(const std::string& state_dir);

// Agents' listener: TLS that requires a client certificate from our CA.
std::shared_ptr<grpc::ServerCredentials> AgentServerCredentials(
    const ServerPki& pki);
// Enrollment listener: TLS, server authentication only.
std::shared_ptr<grpc::ServerCredentials> EnrollServerCredentials(
    const ServerPki& pki);
// Query over TCP: TLS that requires a client certificate from our CA whose
// role is admin and, when `certs` is given, that is recorded and not
// revoked; any other call is refused with PERMISSION_DENIED.
std::shared_ptr<grpc::ServerCredentials> AdminServerCredentials(
    const ServerPki& pki, CertStore* certs);

// Adds `pki init`, `pki admin`, `enroll` and `revoke` to the command line;
// they read the configuration from *config_path when they run and exit the
// process (0, or 1 with a message on stderr).
void RegisterPkiCommands(CLI::App& app, const std::string* config_path);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_ADMIN_PKI_ADMIN_H_
