// The CLI's connection to the collector's Query service: a UNIX socket by
// default. Turns gRPC failures into one clear line and an exit code.
// Thread-compatible.
#ifndef NETVIGIL_COLLECTOR_CLI_QUERY_CLIENT_H_
#define NETVIGIL_COLLECTOR_CLI_QUERY_CLIENT_H_

#include <memory>
#include <string>

#include "common/tls_client.h"
#include "grpcpp/grpcpp.h"
#include "netvigil/v1/query.grpc.pb.h"

namespace netvigil::cli {

// Exit codes of the `netvigil` command (README's table says the same).
enum ExitCode {
  kExitOk = 0,
  kExitFailure = 1,      // the request failed for another reason
  kExitUsage = 2,        // bad flags or arguments, an unknown command
  kExitUnreachable = 3,  // no collector at the socket or address
  // The collector answered but cannot serve: its database is down, or the
  // agent asked to probe is not connected or did not answer in time.
  kExitUnavailable = 4,
  kExitNotFound = 5,  // an unknown host, target, server or alert id
  // Refused as asked: by the collector (a bad time range) or by the agent
  // (a target not in its plan, a probe its plan disables); an unknown kind.
  kExitInvalid = 6,
};

struct ClientOptions {
  std::string socket = "/run/netvigil/query.sock";
  absl::Duration timeout = absl::Seconds(10);
  // Query over TCP instead of the socket: host:port, with TLS and an admin
  // certificate (tls: from `netvigil-collector pki admin`).
  std::string collector;
  std::shared_ptr<const ClientTls> tls;
};

// "unix:/run/..." or the TCP address: what the CLI talks to.
std::string Target(const ClientOptions& options);

// The default socket: $NETVIGIL_QUERY_SOCKET, else /run/netvigil/query.sock.
std::string DefaultSocket();

std::unique_ptr<v1::Query::Stub> MakeStub(const ClientOptions& options);

// Sets a deadline on `ctx` from the options.
void SetDeadline(grpc::ClientContext& ctx, const ClientOptions& options);

// One line for stderr and the exit code that goes with the status.
int ReportError(const grpc::Status& status, const ClientOptions& options);

}  // namespace netvigil::cli

#endif  // NETVIGIL_COLLECTOR_CLI_QUERY_CLIENT_H_
