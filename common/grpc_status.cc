#include "common/grpc_status.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace netvigil {
namespace {

// google.rpc.Code runs from OK (0) to UNAUTHENTICATED (16) on both sides.
static_assert(static_cast<int>(absl::StatusCode::kUnauthenticated) ==
              static_cast<int>(grpc::StatusCode::UNAUTHENTICATED));
static_assert(static_cast<int>(absl::StatusCode::kResourceExhausted) ==
              static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
constexpr int kLastCode = 16;

bool Known(int code) { return code >= 0 && code <= kLastCode; }

}  // namespace

grpc::StatusCode ToGrpcCode(absl::StatusCode code) {
  const int v = static_cast<int>(code);
  return Known(v) ? static_cast<grpc::StatusCode>(v)
                  : grpc::StatusCode::UNKNOWN;
}

absl::StatusCode FromGrpcCode(grpc::StatusCode code) {
  const int v = static_cast<int>(code);
  return Known(v) ? static_cast<absl::StatusCode>(v)
                  : absl::StatusCode::kUnknown;
}

grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(ToGrpcCode(s.code()), std::string(s.message()));
}

grpc::Status ToGrpcStatus(const absl::Status& s, std::string message) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(ToGrpcCode(s.code()), std::move(message));
}

absl::Status FromGrpcStatus(const grpc::Status& s, absl::string_view context) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(FromGrpcCode(s.error_code()),
                      absl::StrCat(context, s.error_message()));
}

}  // namespace netvigil
