// A client's TLS material in one folder (an agent's state folder, an admin's
// folder from `netvigil-collector pki admin`): ca.crt (the collector's CA,
// pinned), client.crt and client.key (mode 0600), server_name (the name the
// collector's certificate must carry, whatever address is dialled).
// Thread-compatible: values.
#ifndef NETVIGIL_COMMON_TLS_CLIENT_H_
#define NETVIGIL_COMMON_TLS_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace netvigil {

struct ClientTls {
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
  std::string server_name;
};

// Reads the four files; NOT_FOUND naming the missing one.
absl::StatusOr<ClientTls> LoadClientTls(const std::string& dir);
// Writes them (the key 0600, the rest 0644), creating `dir` (0700). Run as
// root into a folder someone else owns, the files are given to that owner.
absl::Status SaveClientTls(const std::string& dir, const ClientTls& tls);

// mTLS credentials trusting only the CA, presenting the client certificate.
std::shared_ptr<grpc::ChannelCredentials> ClientCredentials(
    const ClientTls& tls);
// Pins the collector's name: the certificate is checked against
// `server_name`, not against the address dialled.
void PinServerName(const ClientTls& tls, grpc::ChannelArguments& args);

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_TLS_CLIENT_H_
