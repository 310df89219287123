// Tests of the checks on agents' messages; the refused inputs are the ones
// tests/fuzz/validation_fuzz.cc found passing validation while the store
// could not write them (the agent would have resent them forever).
#include "collector/ingest/validation.h"

#include <cmath>
#include <functional>
#include <string>
#include <vector>

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
                                    "sockets.taken_at: outside the "
                                    "window of believable times"));

  v1::Result gap = Dated();
  gap.mutable_gap()->set_first_seq(1);
  gap.mutable_gap()->set_last_seq(2);
  gap.mutable_gap()->set_count(2);
  gap.mutable_gap()->mutable_last_produced_at()->set_nanos(-1);
  EXPECT_THAT(Validate(gap), StatusIs(absl::StatusCode::kInvalidArgument,
                                      "gap.last_produced_at"));

  // Old but real times are kept to the window, not refused: a gap may cover
  // a long outage, and its count must not be lost.
  *gap.mutable_gap()->mutable_last_produced_at() =
      TimeUtil::SecondsToTimestamp(kNow - 3 * 366 * 86400);
  gap.set_seq(9);
  EXPECT_EQ(NormaliseResultTimes(&gap, absl::FromUnixSeconds(kNow),
                                 absl::ZeroDuration(), DefaultLimits()),
            absl::ZeroDuration());
  EXPECT_EQ(gap.gap().last_produced_at().seconds(),
            kNow - DefaultLimits().max_age_s);
  EXPECT_THAT(Validate(gap), IsOk());
}

// ------------------------------------------------------------------ times

TEST(IngestValidationTest, AYear9999StartIsRefused) {
  v1::Result r = Dated();
  r.mutable_path()->set_target("dns");
  *r.mutable_path()->mutable_started_at() =
      TimeUtil::SecondsToTimestamp(253402300799);  // 9999-12-31T23:59:59Z
  EXPECT_THAT(Validate(r), StatusIs(absl::StatusCode::kInvalidArgument,
                                    "path.started_at: outside"));
}

TEST(IngestValidationTest, AClockFarAheadIsJudgedByReceipt) {
  // The agent's clock is two hours ahead and it said so in no heartbeat:
  // produced_at becomes the receipt time and taken_at keeps its spacing.
  v1::Result r = Sockets();
  *r.mutable_produced_at() = TimeUtil::SecondsToTimestamp(kNow + 7200);
  *r.mutable_sockets()->mutable_taken_at() =
      TimeUtil::SecondsToTimestamp(kNow + 7200 - 3);
  EXPECT_THAT(Validate(r), StatusIs(absl::StatusCode::kInvalidArgument));
  const absl::Duration moved = NormaliseResultTimes(
      &r, absl::FromUnixSeconds(kNow), absl::ZeroDuration(), DefaultLimits());
  EXPECT_EQ(moved, absl::Seconds(-7200));
  EXPECT_EQ(r.produced_at().seconds(), kNow);
  EXPECT_EQ(r.sockets().taken_at().seconds(), kNow - 3);
  EXPECT_THAT(Validate(r), IsOk());
}

TEST(IngestValidationTest, AKnownOffsetIsTakenOffEveryTime) {
  // Three days behind, as its heartbeats showed: inside the window, but not
  // when it happened. A backlog result from a minute ago lands a minute ago.
  const absl::Duration behind = absl::Hours(-72);
  v1::Result r = Sockets();
  *r.mutable_produced_at() =
      TimeUtil::SecondsToTimestamp(kNow - 60 - 72 * 3600);
  *r.mutable_sockets()->mutable_taken_at() = r.produced_at();
  NormaliseResultTimes(&r, absl::FromUnixSeconds(kNow), behind,
                       DefaultLimits());
  EXPECT_EQ(r.produced_at().seconds(), kNow - 60);
  EXPECT_EQ(r.sockets().taken_at().seconds(), kNow - 60);

  // A small offset (NTP's ordinary wobble) changes nothing.
  v1::Result s = Sockets();
  EXPECT_EQ(NormaliseResultTimes(&s, absl::FromUnixSeconds(kNow),
                                 absl::Seconds(2), DefaultLimits()),
            absl::ZeroDuration());
  EXPECT_EQ(s.produced_at().seconds(), kNow - 60);
}

TEST(IngestValidationTest, AMissingProducedAtTakesTheReceiptTime) {
  v1::Result r = Sockets();
  r.clear_produced_at();
  EXPECT_EQ(NormaliseResultTimes(&r, absl::FromUnixSeconds(kNow),
                                 absl::ZeroDuration(), DefaultLimits()),
            absl::InfiniteDuration());
  EXPECT_EQ(r.produced_at().seconds(), kNow);
  EXPECT_THAT(Validate(r), IsOk());
}

// ---------------------------------------------------------------- figures

// Every double in a result, found by reflection so a field added later is
// covered too: NaN, +inf and -inf are each refused wherever they are.
void ForEachDouble(
    google::protobuf::Message* m, const std::string& path,
    const std::function<void(google::protobuf::Message*,
                             const google::protobuf::FieldDescriptor*,
                             const std::string&)>& fn) {
  const auto* d = m->GetDescriptor();
  const auto* refl = m->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    if (f->is_repeated()) continue;
    const std::string name = path + "." + f->name();
    if (f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_DOUBLE) {
      fn(m, f, name);
    } else if (f->cpp_type() ==
                   google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE &&
               f->message_type()->full_name() != "google.protobuf.Timestamp") {
      ForEachDouble(refl->MutableMessage(m, f), name, fn);
    }
  }
}

TEST(IngestValidationTest, EveryFigureMustBeFinite) {
  v1::Result path = Dated();
  path.mutable_path()->set_target("dns");
  path.mutable_path()->add_hops();
  v1::Result speed = Dated();
  speed.mutable_speed()->set_client("nas");
  v1::Result files = Dated();
  files.mutable_files();
  int checked = 0;
  for (v1::Result base : {path, speed, Sockets(), files}) {
    ASSERT_THAT(Validate(base), IsOk());
    for (double bad : {std::nan(""), HUGE_VAL, -HUGE_VAL, -1.0}) {
      v1::Result probe = base;
      std::vector<std::string> names;
      ForEachDouble(&probe, "result",
                    [&](google::protobuf::Message* m,
                        const google::protobuf::FieldDescriptor* f,
                        const std::string& name) { names.push_back(name); });
      for (const std::string& want : names) {
        v1::Result r = base;
        ForEachDouble(&r, "result",
                      [&](google::protobuf::Message* m,
                          const google::protobuf::FieldDescriptor* f,
                          const std::string& name) {
                        if (name == want)
                          m->GetReflection()->SetDouble(m, f, bad);
                      });
        EXPECT_THAT(Validate(r), StatusIs(absl::StatusCode::kInvalidArgument))
            << want << " = " << bad;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 40);
}

TEST(IngestValidationTest, FiguresHaveRanges) {
  v1::Result r = Dated();
  r.mutable_speed()->mutable_forward()->set_lost_percent(101);
  EXPECT_THAT(Validate(r),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "speed.forward.lost_percent: outside 0..100"));
}

// ------------------------------------------------------------ sequences

TEST(IngestValidationTest, OneSequenceLimitEverywhere) {
  v1::Result r = Sockets();
  r.set_seq(kMaxSeq);
  EXPECT_THAT(Validate(r), IsOk());
  r.set_seq(kMaxSeq + 1);
  EXPECT_THAT(Validate(r), StatusIs(absl::StatusCode::kInvalidArgument));
  r.set_seq(uint64_t{1} << 62);  // accepted before: one past the limit now
  EXPECT_THAT(Validate(r), StatusIs(absl::StatusCode::kInvalidArgument));

  v1::Hello hello;
  hello.set_agent_name("nas");
  hello.set_next_seq(kMaxSeq + 1);
  EXPECT_THAT(ValidateHello(hello, DefaultLimits()), IsOk());
  hello.set_next_seq(kMaxSeq + 2);
  EXPECT_THAT(ValidateHello(hello, DefaultLimits()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// ------------------------------------------------------------------ gaps

v1::Result Gap(uint64_t seq, uint64_t first, uint64_t last, uint64_t count) {
  v1::Result r = Dated();
  r.set_seq(seq);
  r.mutable_gap()->set_first_seq(first);
  r.mutable_gap()->set_last_seq(last);
  r.mutable_gap()->set_count(count);
  r.mutable_gap()->set_reason("spool_over_cap");
  return r;
}

TEST(IngestValidationTest, AGapIsCheckedAgainstItsRange) {
  EXPECT_THAT(Validate(Gap(20, 5, 10, 6)), IsOk());
  EXPECT_THAT(Validate(Gap(20, 5, 10, 7)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "gap.count: more than the range"));
  EXPECT_THAT(Validate(Gap(20, 1, 19, uint64_t{1} << 60)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Validate(Gap(20, 0, 3, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Validate(Gap(20, 1, kMaxSeq + 1, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // A spool's open gap grows past its own number as it drops more.
  EXPECT_THAT(Validate(Gap(7, 1, 12, 12)), IsOk());
}

TEST(IngestValidationTest, AGapStaysWithinTheNumbersGivenOut) {
  SenderContext ctx{"nas", false, 100};
  EXPECT_THAT(CheckBinding(Gap(20, 1, 100 + SenderContext::kGapSlack, 5), ctx),
              IsOk());
  EXPECT_THAT(
      CheckBinding(Gap(20, 1, uint64_t{1} << 60, uint64_t{1} << 60), ctx),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "gap.last_seq: 1152921504606846976 is beyond the numbers"));
}

// --------------------------------------------------------------- binding

TEST(IngestValidationTest, ASpeedResultIsBoundToItsSenderAndPlan) {
  v1::Result r = Dated();
  r.mutable_speed()->set_client("laptop");
  r.mutable_speed()->set_server("nas");
  EXPECT_THAT(CheckBinding(r, {"laptop", true}), IsOk());
  EXPECT_THAT(
      CheckBinding(r, {"nas", true}),
      StatusIs(absl::StatusCode::kPermissionDenied, "not the sender 'nas'"));
  EXPECT_THAT(CheckBinding(r, {"laptop", false}),
              StatusIs(absl::StatusCode::kPermissionDenied, "disabled"));
  // Other kinds are the sender's own by construction.
  EXPECT_THAT(CheckBinding(Sockets(), {"nas", false}), IsOk());
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
