// Conversions between absl::Status (everything inside netvigil) and
// grpc::Status (the wire): the one place a code crosses between the two, at
// the services' edges and in the clients. Thread-safe (pure functions).
#ifndef NETVIGIL_COMMON_GRPC_STATUS_H_
#define NETVIGIL_COMMON_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"

namespace netvigil {

// Both enums number google.rpc.Code; a value either side does not know (a
// future absl code, a corrupt wire value) becomes UNKNOWN, never a cast
// into a value the other side cannot name.
grpc::StatusCode ToGrpcCode(absl::StatusCode code);
absl::StatusCode FromGrpcCode(grpc::StatusCode code);

// `s` with the same code and message; OK drops any message.
grpc::Status ToGrpcStatus(const absl::Status& s);
// The code of `s` with `message` instead of its own (a service naming the
// agent or the request); OK when `s` is OK.
grpc::Status ToGrpcStatus(const absl::Status& s, std::string message);

// `s` as an absl::Status, with `context` (if any) before its message:
// "the collector refused enrollment: " + message.
absl::Status FromGrpcStatus(const grpc::Status& s,
                            absl::string_view context = "");

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_GRPC_STATUS_H_
