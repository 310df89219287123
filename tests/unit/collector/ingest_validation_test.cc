// Tests of the checks on agents' messages; the refused inputs are the ones
// tests/fuzz/validation_fuzz.cc found passing validation while the store
// could not write them (the agent would have resent them forever).
#include <string>

#include "collector/ingest/validation.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::netvigil::testing::IsOk;
using ::netvigil::testing::StatusIs;

constexpr int64_t kNow = 1'790'000'000;

v1::Result Dated() {
  v1::Result r;
  r.set_seq(7);
  *r.mutable_produced_at() = TimeUtil::SecondsToTimestamp(kNow - 60);
  return r;
}

v1::Result Sockets() {
  v1::Result r = Dated();
  v1::SocketEntry& e = *r.mutable_sockets()->add_sockets();
  e.set_proto(v1::TRANSPORT_TCP);
  e.set_state("LISTEN");
  e.set_local_address("0.0.0.0");
  e.set_local_port(22);
  v1::ProcessRef& p = *e.add_processes();
  p.set_name("sshd");
  p.set_exe("/usr/sbin/sshd");
  return r;
}

absl::Status Validate(const v1::Result& r) {
  return ValidateResult(r, kNow, DefaultLimits());
}

TEST(IngestValidationTest, PlainSnapshotPasses) {
  EXPECT_THAT(Validate(Sockets()), IsOk());
}

TEST(IngestValidationTest, NulInAnyStringIsRefused) {
  v1::Result r = Sockets();
  r.mutable_sockets()->mutable_sockets(0)->mutable_processes(0)->set_name(
      std::string("ss\0hd", 5));
  EXPECT_THAT(Validate(r), StatusIs(absl::StatusCode::kInvalidArgument,
                                    "sockets.processes.name: contains NUL"));

  v1::Result path = Dated();
  path.mutable_path()->set_target("dns");
  path.mutable_path()->add_hops()->add_errors(std::string("\0", 1));
  EXPECT_THAT(Validate(path), StatusIs(absl::StatusCode::kInvalidArgument,
                                       "path.hops.errors: contains NUL"));

  v1::Hello hello;
  hello.set_agent_name("nas");
  hello.set_hostname(std::string("nas\0", 4));
  EXPECT_THAT(ValidateHello(hello, DefaultLimits()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(IngestValidationTest, UnknownEnumValuesAreRefused) {
  v1::Result r = Sockets();
  r.mutable_sockets()->mutable_sockets(0)->set_proto(v1::Transport(100000));
  EXPECT_THAT(Validate(r), StatusIs(absl::StatusCode::kInvalidArgument,
                                    "sockets.proto: unknown value 100000"));

  v1::Result files = Dated();
  files.mutable_files()->add_entries()->set_kind(v1::FileAccessKind(-40000));
  EXPECT_THAT(Validate(files), StatusIs(absl::StatusCode::kInvalidArgument));

  v1::Result speed = Dated();
  speed.mutable_speed()->set_outcome(v1::SpeedOutcome(9));
  EXPECT_THAT(Validate(speed), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(IngestValidationTest, SecondaryTimesMustBeValidTimestamps) {
  v1::Result r = Sockets();
  r.mutable_sockets()->mutable_taken_at()->set_seconds(INT64_MAX);
  EXPECT_THAT(Validate(r), StatusIs(absl::StatusCode::kInvalidArgument,
                                    "sockets.taken_at: not a valid time"));

  v1::Result gap = Dated();
  gap.mutable_gap()->set_first_seq(1);
  gap.mutable_gap()->set_last_seq(2);
  gap.mutable_gap()->set_count(2);
  gap.mutable_gap()->mutable_last_produced_at()->set_nanos(-1);
  EXPECT_THAT(Validate(gap), StatusIs(absl::StatusCode::kInvalidArgument,
                                      "gap.last_produced_at"));

  // Old but real times stay: a gap may cover a long outage.
  *gap.mutable_gap()->mutable_last_produced_at() =
      TimeUtil::SecondsToTimestamp(kNow - 3 * 366 * 86400);
  EXPECT_THAT(Validate(gap), IsOk());
}

TEST(IngestValidationTest, DestinationHopIsCheckedLikeTheOthers) {
  v1::Result r = Dated();
  r.mutable_path()->set_target("dns");
  r.mutable_path()->mutable_destination()->set_loss_percent(250);
  EXPECT_THAT(Validate(r),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "path.destination.loss_percent: outside 0..100"));
}

}  // namespace
}  // namespace netvigil::collector
