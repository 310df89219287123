// The agent's narrow command surface: every class of command it refuses, and
// that a refusal is answered, counted and leaves the agent working.
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "agent/probe_registry.h"
#include "agent/probe_runner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::FakeClock;
using ::netvigil::testing::StatusIs;

// A plan with every probe on, one path target, one external speed target
// and one known peer.
v1::ProbePlan Plan() {
  v1::ProbePlan p;
  p.mutable_path()->set_enabled(true);
  v1::PathTarget* t = p.mutable_path()->add_targets();
  t->set_name("gw");
  t->set_address("192.0.2.1");
  p.mutable_sockets()->set_enabled(true);
  p.mutable_files()->set_enabled(true);
  v1::SpeedPlan* s = p.mutable_speed();
  s->set_enabled(true);
  s->mutable_max_duration()->set_seconds(30);
  v1::ExternalSpeedTarget* e = s->add_external_targets();
  e->set_name("isp");
  e->set_address("198.51.100.7");
  e->set_port(5201);
  v1::KnownPeer* peer = s->add_peers();
  peer->set_name("nas");
  peer->add_addresses("10.0.0.5");
  peer->add_addresses("fd00::5");
  peer->set_port(5201);
  return p;
}

v1::Command ProbeNow(v1::ProbeKind kind, std::string target = "") {
  v1::Command c;
  c.set_id("c1");
  c.mutable_probe_now()->set_kind(kind);
  c.mutable_probe_now()->set_target(target);
  return c;
}

v1::Command PeerTest(std::string peer = "nas", std::string address = "10.0.0.5",
                     uint32_t port = 5201, int64_t seconds = 10) {
  v1::Command c;
  c.set_id("c2");
  v1::SpeedTest* t = c.mutable_speed_test();
  t->set_peer_agent(peer);
  t->set_address(address);
  t->set_port(port);
  t->mutable_duration()->set_seconds(seconds);
  return c;
}

v1::Command ExternalTest(std::string name = "isp",
                         std::string address = "198.51.100.7",
                         uint32_t port = 5201) {
  v1::Command c;
  c.set_id("c3");
  v1::SpeedTest* t = c.mutable_speed_test();
  t->set_external_target(name);
  t->set_address(address);
  t->set_port(port);
  t->mutable_duration()->set_seconds(10);
  return c;
}

TEST(CheckCommandTest, AllowsWhatThePlanAllows) {
  const v1::ProbePlan plan = Plan();
  EXPECT_TRUE(CheckCommand(ProbeNow(v1::PROBE_KIND_PATH), plan).ok());
  EXPECT_TRUE(CheckCommand(ProbeNow(v1::PROBE_KIND_PATH, "gw"), plan).ok());
  EXPECT_TRUE(CheckCommand(ProbeNow(v1::PROBE_KIND_SOCKETS), plan).ok());
  EXPECT_TRUE(CheckCommand(ProbeNow(v1::PROBE_KIND_FILES), plan).ok());
  EXPECT_TRUE(CheckCommand(PeerTest(), plan).ok());
  EXPECT_TRUE(CheckCommand(PeerTest("nas", "fd00:0:0::5"), plan).ok())
      << "the same IPv6 address in another spelling";
  EXPECT_TRUE(CheckCommand(PeerTest("nas", "10.0.0.5", 5201, 30), plan).ok());
  EXPECT_TRUE(CheckCommand(ExternalTest(), plan).ok());
}

TEST(CheckCommandTest, RefusesAnEmptyCommand) {
  v1::Command c;
  c.set_id("c0");
  EXPECT_THAT(CheckCommand(c, Plan()),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown command"));
}

TEST(CheckCommandTest, RefusesAnUnknownCommandFromANewerCollector) {
  // A oneof case this build does not know arrives as unknown fields: the
  // command has no case set.
  v1::Command c;
  c.set_id("c0");
  c.GetReflection()->MutableUnknownFields(&c)->AddVarint(99, 1);
  EXPECT_THAT(CheckCommand(c, Plan()),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown command"));
}

TEST(CheckCommandTest, RefusesProbeNowOfADisabledKind) {
  v1::ProbePlan plan = Plan();
  plan.mutable_path()->set_enabled(false);
  plan.mutable_sockets()->set_enabled(false);
  plan.mutable_files()->set_enabled(false);
  EXPECT_THAT(
      CheckCommand(ProbeNow(v1::PROBE_KIND_PATH), plan),
      StatusIs(absl::StatusCode::kPermissionDenied, "path probe disabled"));
  EXPECT_THAT(
      CheckCommand(ProbeNow(v1::PROBE_KIND_SOCKETS), plan),
      StatusIs(absl::StatusCode::kPermissionDenied, "sockets probe disabled"));
  EXPECT_THAT(
      CheckCommand(ProbeNow(v1::PROBE_KIND_FILES), plan),
      StatusIs(absl::StatusCode::kPermissionDenied, "files probe disabled"));
}

TEST(CheckCommandTest, RefusesProbeNowOfAnUnknownKindOrSpeed) {
  EXPECT_THAT(
      CheckCommand(ProbeNow(v1::PROBE_KIND_UNSPECIFIED), Plan()),
      StatusIs(absl::StatusCode::kInvalidArgument, "unknown probe kind"));
  EXPECT_THAT(
      CheckCommand(ProbeNow(static_cast<v1::ProbeKind>(77)), Plan()),
      StatusIs(absl::StatusCode::kInvalidArgument, "unknown probe kind (77)"));
  EXPECT_THAT(CheckCommand(ProbeNow(v1::PROBE_KIND_SPEED), Plan()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "only a speed-test command"));
}

TEST(CheckCommandTest, RefusesAPathTargetOutsideThePlan) {
  EXPECT_THAT(
      CheckCommand(ProbeNow(v1::PROBE_KIND_PATH, "203.0.113.9"), Plan()),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "not a path target in the plan"));
}

TEST(CheckCommandTest, RefusesSpeedTestsWhenTheyAreOff) {
  v1::ProbePlan plan = Plan();
  plan.mutable_speed()->set_enabled(false);
  EXPECT_THAT(
      CheckCommand(PeerTest(), plan),
      StatusIs(absl::StatusCode::kPermissionDenied, "speed tests disabled"));
}

TEST(CheckCommandTest, RefusesAnUnknownPeer) {
  EXPECT_THAT(CheckCommand(PeerTest("mallory", "10.0.0.5"), Plan()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       "'mallory' is not a known peer"));
}

TEST(CheckCommandTest, RefusesAKnownPeerAtAnUnknownAddress) {
  EXPECT_THAT(CheckCommand(PeerTest("nas", "203.0.113.50"), Plan()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       "address 203.0.113.50 is not known for peer "
                       "'nas'"));
  EXPECT_THAT(CheckCommand(PeerTest("nas", "nas.example.org"), Plan()),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(CheckCommandTest, RefusesAKnownPeerOnAnotherPort) {
  EXPECT_THAT(CheckCommand(PeerTest("nas", "10.0.0.5", 22), Plan()),
              StatusIs(absl::StatusCode::kPermissionDenied, "port 22"));
}

TEST(CheckCommandTest, RefusesAnExternalTargetNotExactlyAsConfigured) {
  EXPECT_THAT(CheckCommand(ExternalTest("elsewhere"), Plan()),
              StatusIs(absl::StatusCode::kPermissionDenied, "not in the plan"));
  EXPECT_THAT(CheckCommand(ExternalTest("isp", "203.0.113.1"), Plan()),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(CheckCommand(ExternalTest("isp", "198.51.100.7", 5202), Plan()),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(CheckCommandTest, RefusesASpeedTestNamingNoServerOrBoth) {
  v1::Command neither = PeerTest("", "10.0.0.5");
  EXPECT_THAT(CheckCommand(neither, Plan()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "neither a peer nor an external target"));
  v1::Command both = PeerTest();
  both.mutable_speed_test()->set_external_target("isp");
  EXPECT_THAT(CheckCommand(both, Plan()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "both a peer and an external target"));
  EXPECT_THAT(
      CheckCommand(PeerTest("nas", ""), Plan()),
      StatusIs(absl::StatusCode::kInvalidArgument, "without a server address"));
  EXPECT_THAT(CheckCommand(PeerTest("nas", "10.0.0.5", 0), Plan()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CheckCommand(PeerTest("nas", "10.0.0.5", 70000), Plan()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CheckCommandTest, RefusesADurationOutsideTheCap) {
  EXPECT_THAT(CheckCommand(PeerTest("nas", "10.0.0.5", 5201, 31), Plan()),
              StatusIs(absl::StatusCode::kInvalidArgument, "outside (0, 30s]"));
  EXPECT_THAT(CheckCommand(PeerTest("nas", "10.0.0.5", 5201, 0), Plan()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CheckCommand(PeerTest("nas", "10.0.0.5", 5201, -5), Plan()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      CheckCommand(PeerTest("nas", "10.0.0.5", 5201, 86400 * 365), Plan()),
      StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CheckCommandTest, TheAgentsOwnCeilingBeatsAGenerousPlan) {
  v1::ProbePlan plan = Plan();
  plan.mutable_speed()->mutable_max_duration()->set_seconds(3600);
  EXPECT_TRUE(CheckCommand(PeerTest("nas", "10.0.0.5", 5201, 60), plan).ok());
  EXPECT_THAT(CheckCommand(PeerTest("nas", "10.0.0.5", 5201, 61), plan),
              StatusIs(absl::StatusCode::kInvalidArgument, "outside (0, 1m]"));
}

TEST(CheckCommandTest, RefusesABitrateAboveTheCap) {
  v1::ProbePlan plan = Plan();
  plan.mutable_speed()->set_max_bitrate_bps(100'000'000);
  v1::Command c = PeerTest();
  c.mutable_speed_test()->set_bitrate_bps(100'000'000);
  EXPECT_TRUE(CheckCommand(c, plan).ok());
  c.mutable_speed_test()->set_bitrate_bps(100'000'001);
  EXPECT_THAT(
      CheckCommand(c, plan),
      StatusIs(absl::StatusCode::kInvalidArgument, "above the plan's cap"));
  // Unlimited is above any cap.
  c.mutable_speed_test()->set_bitrate_bps(0);
  EXPECT_THAT(CheckCommand(c, plan),
              StatusIs(absl::StatusCode::kInvalidArgument, "unlimited"));
}

// An outbox that only counts.
class CountingOutbox final : public Outbox {
 public:
  absl::StatusOr<uint64_t> Add(v1::Result) override {
    absl::MutexLock l(&mu_);
    return ++added_;
  }
  absl::StatusOr<std::vector<v1::Result>> ReadAfter(uint64_t, size_t,
                                                    size_t) override {
    return std::vector<v1::Result>{};
  }
  absl::Status AckThrough(uint64_t) override { return absl::OkStatus(); }
  void WaitForResultsAfter(uint64_t, absl::Duration) override {}
  absl::Status AdvanceNextSeqPast(uint64_t) override {
    return absl::OkStatus();
  }
  uint64_t next_seq() override { return 1; }
  uint64_t pending() override { return 0; }
  uint64_t dropped_total() override { return 0; }
  uint64_t added() {
    absl::MutexLock l(&mu_);
    return added_;
  }

 private:
  absl::Mutex mu_;
  uint64_t added_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST(ProbeRunnerCommandTest, RefusalsAreAnsweredCountedAndTheRunnerGoesOn) {
  CountingOutbox outbox;
  FakeClock clock;
  ProbeRunner runner(outbox, clock);
  runner.Register(
      v1::PROBE_KIND_SOCKETS,
      [](const v1::ProbePlan&,
         const v1::Command*) -> absl::StatusOr<std::vector<v1::Result>> {
        return std::vector<v1::Result>(1);
      });
  runner.Register(
      v1::PROBE_KIND_SPEED,
      [](const v1::ProbePlan&,
         const v1::Command*) -> absl::StatusOr<std::vector<v1::Result>> {
        return std::vector<v1::Result>(1);
      });
  runner.SetCommandPolicy(CheckCommand);
  v1::ProbePlan plan = Plan();
  plan.mutable_files()->set_enabled(false);
  runner.SetPlan(plan);

  const std::vector<v1::Command> refused = {
      v1::Command(),                             // empty
      PeerTest("nas", "203.0.113.50"),           // unknown address
      PeerTest("nas", "10.0.0.5", 5201, 86400),  // absurd duration
      ProbeNow(v1::PROBE_KIND_FILES),            // disabled kind
      ProbeNow(static_cast<v1::ProbeKind>(42)),  // unknown kind
  };
  for (size_t i = 0; i < refused.size(); ++i) {
    v1::Command c = refused[i];
    c.set_id("refuse-" + std::to_string(i));
    const v1::CommandStatus st = runner.Handle(c);
    EXPECT_FALSE(st.accepted()) << c.ShortDebugString();
    EXPECT_EQ(st.command_id(), c.id());
    EXPECT_FALSE(st.reason().empty());
  }
  EXPECT_EQ(runner.refused_commands(), refused.size());

  // Still serving what is allowed.
  const v1::CommandStatus ok = runner.Handle(ProbeNow(v1::PROBE_KIND_SOCKETS));
  EXPECT_TRUE(ok.accepted()) << ok.reason();
  runner.Stop();  // waits for the accepted command
  EXPECT_EQ(outbox.added(), 1u);
  EXPECT_EQ(runner.refused_commands(), refused.size());
}

}  // namespace
}  // namespace netvigil::agent
