// The CLI's connection to the collector's Query service: a UNIX socket by
// default. Turns a gRPC failure into a Status with one clear line for
// people and the code below. Thread-compatible.
#ifndef NETVIGIL_COLLECTOR_CLI_QUERY_CLIENT_H_
#define NETVIGIL_COLLECTOR_CLI_QUERY_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/tls_client.h"
#include "grpcpp/grpcpp.h"
#include "netvigil/v1/query.grpc.pb.h"

namespace netvigil::cli {

// What went wrong, as the absl::StatusCode every command returns; only
// cli_main.cc turns it into the exit code (the README's table):
//   kInvalidArgument     2  usage: a bad flag or argument, caught here
//   kUnavailable         3  no collector answered at the socket or address,
//                           or not within --timeout
//   kFailedPrecondition  4  the collector answered but cannot serve: its
//                           database is down, or the agent asked to probe is
//                           not connected or did not answer in time
//   kNotFound            5  an unknown host, target, server or alert id
//   kOutOfRange          6  refused as asked: by the collector (a bad time
//                           range), by the agent (a target not in its plan,
//                           a probe its plan disables); an unknown kind
//   any other            1  the request failed for another reason

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

// The status as the table above codes it, its message one line for people
// (the collector's words escaped: they may quote an agent's).
absl::Status FromGrpc(const grpc::Status& status, const ClientOptions& options);

}  // namespace netvigil::cli

#endif  // NETVIGIL_COLLECTOR_CLI_QUERY_CLIENT_H_
