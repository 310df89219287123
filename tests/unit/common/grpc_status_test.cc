// Status <-> grpc::Status (common/grpc_status.h): every code both ways,
// codes neither side knows, and the messages kept or replaced.
#include "common/grpc_status.h"

#include "gtest/gtest.h"

namespace netvigil {
namespace {

TEST(GrpcStatusTest, EveryCodeRoundTripsWithItsName) {
  for (int v = 0; v <= 16; ++v) {
    const auto code = static_cast<absl::StatusCode>(v);
    const grpc::StatusCode g = ToGrpcCode(code);
    EXPECT_EQ(static_cast<int>(g), v);
    EXPECT_EQ(FromGrpcCode(g), code);
  }
  EXPECT_EQ(ToGrpcCode(absl::StatusCode::kNotFound),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(FromGrpcCode(grpc::StatusCode::UNAVAILABLE),
            absl::StatusCode::kUnavailable);
}

TEST(GrpcStatusTest, UnknownCodesBecomeUnknown) {
  EXPECT_EQ(ToGrpcCode(static_cast<absl::StatusCode>(17)),
            grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(ToGrpcCode(static_cast<absl::StatusCode>(-3)),
            grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(FromGrpcCode(grpc::StatusCode::DO_NOT_USE),
            absl::StatusCode::kUnknown);
  EXPECT_EQ(FromGrpcCode(static_cast<grpc::StatusCode>(1000)),
            absl::StatusCode::kUnknown);
}

TEST(GrpcStatusTest, MessagesAreKeptReplacedOrPrefixed) {
  const grpc::Status g = ToGrpcStatus(absl::NotFoundError("no host 'x'"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(g.error_message(), "no host 'x'");
  const grpc::Status r =
      ToGrpcStatus(absl::InvalidArgumentError("bad"), "agent 'a': bad");
  EXPECT_EQ(r.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(r.error_message(), "agent 'a': bad");
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus(), "ignored").ok());
  const absl::Status a = FromGrpcStatus(
      grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "used token"),
      "the collector refused enrollment: ");
  EXPECT_EQ(a.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(a.message(), "the collector refused enrollment: used token");
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

}  // namespace
}  // namespace netvigil
