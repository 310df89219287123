// Each agent's own plan and iperf3 credentials: peers are the other agents
// at their addresses, iperf3 users are the other agents with the hash of the
// password the collector derives, and a changed plan reaches every session
// once.
#include "collector/scheduler/mesh_plans.h"

#include <memory>
#include <vector>

#include "common/iperf_credentials.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using ::netvigil::testing::IsOk;
using ::netvigil::testing::StatusIs;

v1::AgentInfo Agent(const std::string& name, std::vector<std::string> addrs) {
  v1::AgentInfo a;
  a.set_name(name);
  for (const auto& x : addrs) a.add_addresses(x);
  return a;
}

IperfMeshSecrets Secrets() {
  return {"-----BEGIN PRIVATE KEY-----\n", "-----BEGIN PUBLIC KEY-----\n",
          "0123456789abcdef0123456789abcdef"};
}

v1::ProbePlan Base() {
  v1::ProbePlan p;
  p.mutable_speed()->set_enabled(true);
  p.mutable_sockets()->set_enabled(true);
  return p;
}

TEST(MeshPlansTest, PeersAndUsersAreTheOtherAgents) {
  MeshPlans mesh(Base(), 5999, [] { return Secrets(); });
  mesh.SetAgents({Agent("b", {"10.0.0.2", "fd00::2"}), Agent("a", {"10.0.0.1"}),
                  Agent("c", {"10.0.0.3"})});
  const v1::ProbePlan plan = mesh.PlanFor("a");
  EXPECT_TRUE(plan.sockets().enabled());
  ASSERT_EQ(plan.speed().peers_size(), 2);
  EXPECT_EQ(plan.speed().peers(0).name(), "b");
  EXPECT_THAT(plan.speed().peers(0).addresses(),
              ::testing::ElementsAre("10.0.0.2", "fd00::2"));
  EXPECT_EQ(plan.speed().peers(0).port(), 5999u);
  EXPECT_EQ(plan.speed().peers(1).name(), "c");
  ASSERT_EQ(plan.speed().iperf_users_size(), 2);
  EXPECT_EQ(plan.speed().iperf_users(0).username(), "b");
  EXPECT_EQ(plan.speed().iperf_users(0).password_sha256(),
            IperfPasswordSha256(
                "b", DeriveIperfPassword(Secrets().user_secret, "b")));
}

TEST(MeshPlansTest, TheWelcomeCarriesTheAgentsOwnCredentials) {
  MeshPlans mesh(Base(), 5201, [] { return Secrets(); });
  mesh.SetAgents({Agent("a", {"10.0.0.1"}), Agent("b", {"10.0.0.2"})});
  v1::Welcome w;
  ASSERT_THAT(mesh.CompleteWelcome("b", &w), IsOk());
  EXPECT_EQ(w.iperf_auth().username(), "b");
  EXPECT_EQ(w.iperf_auth().password(),
            DeriveIperfPassword(Secrets().user_secret, "b"));
  EXPECT_EQ(w.iperf_auth().rsa_private_key_pem(), Secrets().rsa_private_pem);
  EXPECT_EQ(w.iperf_auth().rsa_public_key_pem(), Secrets().rsa_public_pem);
  ASSERT_EQ(w.plan().speed().peers_size(), 1);
  EXPECT_EQ(w.plan().speed().peers(0).name(), "a");
  // What a's server accepts is b's password.
  const v1::ProbePlan a = mesh.PlanFor("a");
  ASSERT_EQ(a.speed().iperf_users_size(), 1);
  EXPECT_EQ(a.speed().iperf_users(0).password_sha256(),
            IperfPasswordSha256("b", w.iperf_auth().password()));
}

TEST(MeshPlansTest, NoWelcomeWithoutSecretsUntilTheyLoad) {
  int calls = 0;
  MeshPlans mesh(Base(), 5201, [&calls]() -> absl::StatusOr<IperfMeshSecrets> {
    if (++calls == 1) return absl::UnavailableError("database down");
    return Secrets();
  });
  v1::Welcome w;
  EXPECT_THAT(mesh.CompleteWelcome("a", &w),
              StatusIs(absl::StatusCode::kUnavailable,
                       "iperf3 credentials not loaded: database down"));
  EXPECT_THAT(mesh.CompleteWelcome("a", &w), IsOk());
  EXPECT_TRUE(w.has_iperf_auth());
  EXPECT_THAT(mesh.CompleteWelcome("a", &w), IsOk());
  EXPECT_EQ(calls, 2);  // loaded once, kept
}

TEST(MeshPlansTest, PushesAChangedPlanToEachSessionOnce) {
  SessionRegistry sessions;
  std::vector<v1::CollectorMessage> to_a, to_b;
  auto session = [](const std::string& name,
                    std::vector<v1::CollectorMessage>* out) {
    return std::make_shared<AgentSession>(
        name, name + "-1", "peer",
        [out](const v1::CollectorMessage& m) {
          out->push_back(m);
          return true;
        },
        [] {}, absl::Now());
  };
  ASSERT_THAT(
      sessions.Claim(session("a", &to_a), absl::Now(), absl::Seconds(10)),
      IsOk());
  ASSERT_THAT(
      sessions.Claim(session("b", &to_b), absl::Now(), absl::Seconds(10)),
      IsOk());
  MeshPlans mesh(Base(), 5201, [] { return Secrets(); });
  mesh.SetAgents({Agent("a", {"10.0.0.1"}), Agent("b", {"10.0.0.2"})});
  EXPECT_EQ(mesh.PushChanged(sessions), 2);
  EXPECT_EQ(mesh.PushChanged(sessions), 0);
  ASSERT_EQ(to_a.size(), 1u);
  EXPECT_EQ(to_a[0].plan_update().speed().peers(0).name(), "b");

  mesh.SetAgents({Agent("a", {"10.0.0.1"}), Agent("b", {"10.0.0.2"}),
                  Agent("c", {"10.0.0.3"})});
  EXPECT_EQ(mesh.PushChanged(sessions), 2);
  ASSERT_EQ(to_b.size(), 2u);
  EXPECT_EQ(to_b[1].plan_update().speed().peers_size(), 2);
  // A session whose welcome carried the current plan is not sent it again.
  std::vector<v1::CollectorMessage> to_c;
  v1::Welcome w;
  ASSERT_THAT(mesh.CompleteWelcome("c", &w), IsOk());
  ASSERT_THAT(
      sessions.Claim(session("c", &to_c), absl::Now(), absl::Seconds(10)),
      IsOk());
  EXPECT_EQ(mesh.PushChanged(sessions), 0);
  EXPECT_TRUE(to_c.empty());
  // The same agents again: nothing new to say.
  mesh.SetAgents({Agent("c", {"10.0.0.3"}), Agent("b", {"10.0.0.2"}),
                  Agent("a", {"10.0.0.1"})});
  EXPECT_EQ(mesh.PushChanged(sessions), 0);
}

// `netvigil-collector revoke c`: the next push takes c out of the others'
// peers and iperf3 users, so c's credentials open no server.
TEST(MeshPlansTest, ARevokedAgentLeavesEveryOtherPlan) {
  SessionRegistry sessions;
  std::vector<v1::CollectorMessage> to_a;
  ASSERT_THAT(sessions.Claim(std::make_shared<AgentSession>(
                                 "a", "a-1", "peer",
                                 [&to_a](const v1::CollectorMessage& m) {
                                   to_a.push_back(m);
                                   return true;
                                 },
                                 [] {}, absl::Now()),
                             absl::Now(), absl::Seconds(10)),
              IsOk());
  MeshPlans mesh(Base(), 5201, [] { return Secrets(); });
  v1::AgentInfo c = Agent("c", {"10.0.0.3"});
  mesh.SetAgents({Agent("a", {"10.0.0.1"}), Agent("b", {"10.0.0.2"}), c});
  EXPECT_EQ(mesh.PushChanged(sessions), 1);
  ASSERT_EQ(to_a.back().plan_update().speed().iperf_users_size(), 2);

  c.set_revoked(true);
  mesh.SetAgents({Agent("a", {"10.0.0.1"}), Agent("b", {"10.0.0.2"}), c});
  EXPECT_EQ(mesh.PushChanged(sessions), 1);
  const v1::SpeedPlan& speed = to_a.back().plan_update().speed();
  ASSERT_EQ(speed.peers_size(), 1);
  EXPECT_EQ(speed.peers(0).name(), "b");
  ASSERT_EQ(speed.iperf_users_size(), 1);
  EXPECT_EQ(speed.iperf_users(0).username(), "b");
}

}  // namespace
}  // namespace netvigil::collector
