// collector/cli/query_client.h's FromGrpc: each gRPC failure becomes the
// Status code its exit code goes with (cli_main.cc maps the codes), with one
// line for people in which the collector's (and agents') words are escaped.
#include "collector/cli/query_client.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace netvigil::cli {
namespace {

using ::testing::HasSubstr;

ClientOptions NoSocket() {
  ClientOptions o;
  o.socket = "/nonexistent/netvigil-test/query.sock";
  return o;
}

TEST(FromGrpcTest, NoSocketIsUnreachable) {
  const absl::Status s =
      FromGrpc(grpc::Status(grpc::StatusCode::UNAVAILABLE, "failed to connect"),
               NoSocket());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("cannot reach the collector at "
                                     "/nonexistent/netvigil-test/query.sock"));
  EXPECT_THAT(s.message(), HasSubstr("no such socket"));
}

TEST(FromGrpcTest, TcpTransportFailureIsUnreachable) {
  ClientOptions o;
  o.collector = "192.0.2.1:7443";
  const absl::Status s = FromGrpc(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "Connection refused"), o);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("192.0.2.1:7443"));
}

TEST(FromGrpcTest, TheCollectorsOwnUnavailableMeansItCannotServe) {
  ClientOptions o;
  o.collector = "192.0.2.1:7443";
  const absl::Status s = FromGrpc(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "agent nas is not connected"),
      o);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "agent nas is not connected");
}

TEST(FromGrpcTest, DeadlinesTellTheClientsFromTheCollectors) {
  const absl::Status mine = FromGrpc(
      grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded"),
      NoSocket());
  EXPECT_EQ(mine.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(mine.message(), HasSubstr("did not answer within 10s"));
  const absl::Status agents =
      FromGrpc(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                            "agent nas did not answer within 60s"),
               NoSocket());
  EXPECT_EQ(agents.code(), absl::StatusCode::kFailedPrecondition);
}

TEST(FromGrpcTest, RefusalsNotFoundAndTheRest) {
  const ClientOptions o = NoSocket();
  for (grpc::StatusCode c : {grpc::StatusCode::INVALID_ARGUMENT,
                             grpc::StatusCode::FAILED_PRECONDITION,
                             grpc::StatusCode::OUT_OF_RANGE}) {
    EXPECT_EQ(FromGrpc(grpc::Status(c, "not in the plan"), o).code(),
              absl::StatusCode::kOutOfRange);
  }
  EXPECT_EQ(FromGrpc(grpc::Status(grpc::StatusCode::NOT_FOUND, "no host x"), o)
                .code(),
            absl::StatusCode::kNotFound);
  const absl::Status denied =
      FromGrpc(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no"), o);
  EXPECT_EQ(denied.code(), absl::StatusCode::kUnknown);
  EXPECT_THAT(denied.message(), HasSubstr("refused: no"));
  EXPECT_EQ(FromGrpc(grpc::Status(grpc::StatusCode::INTERNAL, ""), o).message(),
            "the request failed");
  EXPECT_TRUE(FromGrpc(grpc::Status::OK, o).ok());
}

TEST(FromGrpcTest, TheCollectorsWordsAreEscaped) {
  const absl::Status s =
      FromGrpc(grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                            "target evil\nnetvigil: forged\x1b[2J"),
               NoSocket());
  EXPECT_EQ(s.message(), "target evil\\nnetvigil: forged\\x1B[2J");
}

}  // namespace
}  // namespace netvigil::cli
