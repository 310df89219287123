// The Agent service (collector/ingest/agent_service.h) in a Collector built
// from fakes, spoken to through an in-process gRPC channel as an agent
// speaks to it: acks follow commits, a refused result becomes a gap record
// and an Ack with refused_seq, a database outage holds every ack back and
// then acknowledges everything once, in order.
#include "collector/ingest/agent_service.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/in_process_collector.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using ::netvigil::testing::AgentStream;
using ::netvigil::testing::InProcessCollector;
using ::netvigil::testing::IsOk;
using ::netvigil::testing::PathResult;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(20);

std::vector<uint64_t> Seqs(const std::vector<v1::Result>& results) {
  std::vector<uint64_t> out;
  for (const auto& r : results) out.push_back(r.seq());
  return out;
}

class AgentServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_THAT(c_.Start(), IsOk()); }
  InProcessCollector c_;
};

TEST_F(AgentServiceTest, WelcomesWithWhatIsCommittedAndAcksAfterCommit) {
  auto stub = c_.AgentStub();
  AgentStream agent(*stub, "laptop");
  ASSERT_TRUE(agent.AwaitWelcome(kWait));
  EXPECT_EQ(agent.received().front().welcome().acked_through_seq(), 0u);
  EXPECT_EQ(agent.received().front().welcome().agent_name(), "laptop");

  c_.store.HoldCommits();
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    ASSERT_TRUE(agent.SendResult(PathResult(seq, c_.clock.Now())));
  }
  // Read, queued and in the store's hands, not committed: no ack yet.
  ASSERT_TRUE(c_.store.AwaitHeldCommits(1, kWait));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_TRUE(agent.acks().empty());
  EXPECT_EQ(c_.store.AckedThrough("laptop"), 0u);

  c_.store.ReleaseCommits();
  ASSERT_TRUE(agent.AwaitAckThrough(3, kWait));
  EXPECT_THAT(Seqs(c_.store.Committed("laptop")), ElementsAre(1, 2, 3));
}

TEST_F(AgentServiceTest, AReconnectingAgentLearnsWhatIsCommitted) {
  auto stub = c_.AgentStub();
  {
    AgentStream agent(*stub, "laptop");
    for (uint64_t seq = 1; seq <= 4; ++seq) {
      ASSERT_TRUE(agent.SendResult(PathResult(seq, c_.clock.Now())));
    }
    ASSERT_TRUE(agent.AwaitAckThrough(4, kWait));
    EXPECT_TRUE(agent.Finish().ok());
  }
  AgentStream again(*stub, "laptop", /*next_seq=*/5);
  ASSERT_TRUE(again.AwaitWelcome(kWait));
  EXPECT_EQ(again.received().front().welcome().acked_through_seq(), 4u);
  // A resend of what is committed changes nothing and is acknowledged.
  ASSERT_TRUE(again.SendResult(PathResult(4, c_.clock.Now())));
  ASSERT_TRUE(again.SendResult(PathResult(5, c_.clock.Now())));
  ASSERT_TRUE(again.AwaitAckThrough(5, kWait));
  EXPECT_THAT(Seqs(c_.store.Committed("laptop")), ElementsAre(1, 2, 3, 4, 5));
}

TEST_F(AgentServiceTest, ARefusedResultIsAGapRecordAndAnAckWithRefusedSeq) {
  auto stub = c_.AgentStub();
  AgentStream agent(*stub, "laptop");
  ASSERT_TRUE(agent.SendResult(PathResult(1, c_.clock.Now())));
  // A speed result that names another agent as its client: it can never
  // be stored as sent.
  v1::Result forged;
  forged.set_seq(2);
  *forged.mutable_produced_at() = ToProtoTime(c_.clock.Now());
  forged.mutable_speed()->set_client("someone-else");
  forged.mutable_speed()->set_server("laptop");
  ASSERT_TRUE(agent.SendResult(forged));
  ASSERT_TRUE(agent.SendResult(PathResult(3, c_.clock.Now())));
  ASSERT_TRUE(agent.AwaitAckThrough(3, kWait));

  // The agent was told, with the reason, and its stream goes on.
  std::vector<v1::Ack> refusals;
  for (const auto& m : agent.received()) {
    if (m.has_ack() && m.ack().refused_seq() != 0) refusals.push_back(m.ack());
  }
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals[0].refused_seq(), 2u);
  EXPECT_THAT(refusals[0].refused_reason(), HasSubstr("refused: speed.client"));
  // The refused result's number holds a gap record saying why.
  const std::vector<v1::Result> stored = c_.store.Committed("laptop");
  ASSERT_THAT(Seqs(stored), ElementsAre(1, 2, 3));
  EXPECT_TRUE(stored[0].has_path());
  ASSERT_TRUE(stored[1].has_gap());
  EXPECT_EQ(stored[1].gap().first_seq(), 2u);
  EXPECT_EQ(stored[1].gap().last_seq(), 2u);
  EXPECT_EQ(stored[1].gap().count(), 1u);
  EXPECT_THAT(stored[1].gap().reason(), HasSubstr("refused: speed.client"));
  EXPECT_TRUE(stored[2].has_path());
}

TEST_F(AgentServiceTest, AnOutageHoldsAcksThenAcknowledgesAllOnceInOrder) {
  auto stub = c_.AgentStub();
  AgentStream agent(*stub, "laptop");
  ASSERT_TRUE(agent.AwaitWelcome(kWait));
  // The database goes away after the agent connected.
  c_.store.FailNextCommitsUnavailable(1'000'000);
  constexpr uint64_t kResults = 20;
  for (uint64_t seq = 1; seq <= kResults; ++seq) {
    ASSERT_TRUE(agent.SendResult(PathResult(seq, c_.clock.Now())));
  }
  const absl::Time deadline = absl::Now() + kWait;
  while (c_.store.commit_attempts() < 3 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_GE(c_.store.commit_attempts(), 3);
  EXPECT_TRUE(agent.acks().empty());
  EXPECT_EQ(c_.store.commits(), 0);

  c_.store.FailNextCommitsUnavailable(0);  // back
  ASSERT_TRUE(agent.AwaitAckThrough(kResults, kWait));
  const std::vector<uint64_t> acks = agent.acks();
  for (size_t i = 1; i < acks.size(); ++i) EXPECT_GT(acks[i], acks[i - 1]);
  EXPECT_EQ(acks.back(), kResults);
  std::vector<uint64_t> want;
  for (uint64_t seq = 1; seq <= kResults; ++seq) want.push_back(seq);
  EXPECT_EQ(Seqs(c_.store.Committed("laptop")), want);
}

TEST_F(AgentServiceTest, ADatabaseDownAtHelloRefusesTheStreamAsUnavailable) {
  c_.store.FailNextCommitsUnavailable(1);
  auto stub = c_.AgentStub();
  AgentStream agent(*stub, "laptop");
  const grpc::Status s = agent.AwaitEnd(kWait);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("database unavailable"));
  EXPECT_TRUE(agent.acks().empty());
}

TEST_F(AgentServiceTest, AResultWithSeqZeroEndsTheStreamNamingTheAgent) {
  auto stub = c_.AgentStub();
  AgentStream agent(*stub, "laptop");
  ASSERT_TRUE(agent.SendResult(PathResult(0, c_.clock.Now())));
  const grpc::Status s = agent.AwaitEnd(kWait);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("agent 'laptop'"));
  EXPECT_TRUE(c_.store.Committed("laptop").empty());
}

}  // namespace
}  // namespace netvigil::collector
