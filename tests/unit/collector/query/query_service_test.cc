// The Query service (collector/query/query_service.h) in a Collector built
// from fakes, asked through an in-process gRPC channel as the CLI asks it:
// live state from the agents' streams, history from the store on the
// injected clock, a database outage said plainly, bad requests refused.
#include "collector/query/query_service.h"

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
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
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(20);

class QueryServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(c_.Start(), IsOk());
    query_ = c_.QueryStub();
    agent_stub_ = c_.AgentStub();
  }

  v1::ListAgentsResponse ListAgents() {
    grpc::ClientContext ctx;
    v1::ListAgentsResponse resp;
    grpc::Status s = query_->ListAgents(&ctx, {}, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  InProcessCollector c_;
  std::unique_ptr<v1::Query::Stub> query_;
  std::unique_ptr<v1::Agent::Stub> agent_stub_;
};

TEST_F(QueryServiceTest, ListsALiveAgentOnlineWithItsClockOffset) {
  {
    AgentStream agent(*agent_stub_, "laptop");
    ASSERT_TRUE(agent.AwaitWelcome(kWait));
    v1::AgentMessage hb;
    // The agent's clock is 3 s ahead of the collector's (injected) clock.
    *hb.mutable_heartbeat()->mutable_sent_at() =
        ToProtoTime(c_.clock.Now() + absl::Seconds(3));
    ASSERT_TRUE(agent.Send(hb));
    // The heartbeat is read on the stream's thread; wait for its effect.
    const absl::Time deadline = absl::Now() + kWait;
    v1::ListAgentsResponse resp;
    do {
      resp = ListAgents();
    } while (
        (resp.agents_size() != 1 || !resp.agents(0).has_clock_offset_ms()) &&
        absl::Now() < deadline &&
        (absl::SleepFor(absl::Milliseconds(10)), true));
    ASSERT_EQ(resp.agents_size(), 1);
    EXPECT_EQ(resp.agents(0).name(), "laptop");
    EXPECT_TRUE(resp.agents(0).online());
    EXPECT_EQ(resp.agents(0).clock_offset_ms(), 3000);
    EXPECT_TRUE(agent.Finish().ok());
  }
  v1::ListAgentsResponse after = ListAgents();
  ASSERT_EQ(after.agents_size(), 1);
  EXPECT_FALSE(after.agents(0).online());
}

TEST_F(QueryServiceTest, ASilentAgentGoesOfflineOnTheInjectedClock) {
  AgentStream agent(*agent_stub_, "laptop");
  ASSERT_TRUE(agent.AwaitWelcome(kWait));
  ASSERT_TRUE(ListAgents().agents(0).online());
  // Nothing heard for longer than the heartbeat timeout (20 s by default),
  // as the collector's clock tells it: the session is ended and the agent
  // is offline. No real time passes beyond the reaper's turn.
  c_.clock.Advance(absl::Seconds(21));
  const grpc::Status s = agent.AwaitEnd(kWait);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::CANCELLED);
  v1::ListAgentsResponse resp = ListAgents();
  ASSERT_EQ(resp.agents_size(), 1);
  EXPECT_FALSE(resp.agents(0).online());
}

TEST_F(QueryServiceTest, HistoryIsReadFromTheStoreOnTheInjectedClock) {
  // Produced over the last two hours (the agent spooled them), sent now:
  // advancing the clock with the stream open would make it a silent agent.
  const absl::Time now = c_.clock.Now();
  {
    AgentStream agent(*agent_stub_, "laptop");
    ASSERT_TRUE(
        agent.SendResult(PathResult(1, now - absl::Hours(2), "192.0.2.1", 0)));
    ASSERT_TRUE(
        agent.SendResult(PathResult(2, now - absl::Hours(1), "192.0.2.1", 0)));
    ASSERT_TRUE(agent.SendResult(PathResult(3, now, "192.0.2.1", 30)));
    ASSERT_TRUE(agent.AwaitAckThrough(3, kWait));
  }
  // The default range is the last 24 hours of the collector's clock (in
  // 2023 here): read from the wall clock it would hold none of these.
  grpc::ClientContext ctx;
  v1::PathHistoryRequest req;
  req.set_host("laptop");
  req.set_target("192.0.2.1");
  v1::PathHistoryResponse runs;
  grpc::Status s = query_->PathHistory(&ctx, req, &runs);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(runs.runs_size(), 3);
  EXPECT_EQ(runs.runs(0).seq(), 1u);
  EXPECT_EQ(runs.runs(2).seq(), 3u);

  grpc::ClientContext octx;
  v1::OverviewResponse overview;
  s = query_->Overview(&octx, {}, &overview);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(FromProtoTime(overview.generated_at()), c_.clock.Now());
  ASSERT_EQ(overview.hosts_size(), 1);
  ASSERT_EQ(overview.hosts(0).paths_size(), 1);
  EXPECT_EQ(overview.hosts(0).paths(0).target(), "192.0.2.1");
  EXPECT_DOUBLE_EQ(overview.hosts(0).paths(0).loss_percent(), 30);
}

TEST_F(QueryServiceTest, ADatabaseOutageIsUnavailableSayingSo) {
  c_.store.FailNextCommitsUnavailable(1);
  grpc::ClientContext ctx;
  v1::ListAgentsResponse resp;
  grpc::Status s = query_->ListAgents(&ctx, {}, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("the collector's database is down"));
  c_.store.FailNextCommitsUnavailable(0);
  EXPECT_EQ(ListAgents().agents_size(), 0);
}

TEST_F(QueryServiceTest, BadRequestsAreRefusedNamingTheField) {
  {
    grpc::ClientContext ctx;
    v1::PathHistoryResponse resp;
    v1::PathHistoryRequest req;
    req.set_target("192.0.2.1");
    grpc::Status s = query_->PathHistory(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("host is required"));
  }
  {
    grpc::ClientContext ctx;
    v1::PathHistoryResponse resp;
    v1::PathHistoryRequest req;
    req.set_host("laptop");
    req.set_target("192.0.2.1");
    *req.mutable_since() = ToProtoTime(c_.clock.Now());
    *req.mutable_until() = ToProtoTime(c_.clock.Now() - absl::Hours(1));
    grpc::Status s = query_->PathHistory(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("is not before until"));
  }
  {
    // "More than a day in the future" is judged by the injected clock.
    grpc::ClientContext ctx;
    v1::PathHistoryResponse resp;
    v1::PathHistoryRequest req;
    req.set_host("laptop");
    req.set_target("192.0.2.1");
    *req.mutable_until() = ToProtoTime(c_.clock.Now() + absl::Hours(48));
    grpc::Status s = query_->PathHistory(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("more than a day in the future"));
  }
}

TEST_F(QueryServiceTest, RawHistoryFromBeforeRawRetentionIsRefused) {
  // The default raw retention is 7 days, judged by the injected clock.
  {
    grpc::ClientContext ctx;
    v1::PathHistoryResponse resp;
    v1::PathHistoryRequest req;
    req.set_host("laptop");
    req.set_target("192.0.2.1");
    req.set_resolution(v1::RESOLUTION_RAW);
    *req.mutable_since() = ToProtoTime(c_.clock.Now() - absl::Hours(24 * 8));
    grpc::Status s = query_->PathHistory(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
    EXPECT_THAT(s.error_message(),
                HasSubstr("raw path runs are kept for 168h"));
    EXPECT_THAT(s.error_message(), HasSubstr("RESOLUTION_HOURLY"));
  }
  {
    grpc::ClientContext ctx;
    v1::SpeedHistoryResponse resp;
    v1::SpeedHistoryRequest req;
    req.set_client("laptop");
    req.set_server("nas");
    req.set_resolution(v1::RESOLUTION_MIXED);
    grpc::Status s = query_->SpeedHistory(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("cannot be asked for"));
  }
  {
    grpc::ClientContext ctx;
    v1::SpeedHistoryResponse resp;
    v1::SpeedHistoryRequest req;
    req.set_client("laptop");
    req.set_server("nas");
    req.set_max_points(100001);
    grpc::Status s = query_->SpeedHistory(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("max_points 100001"));
  }
}

TEST_F(QueryServiceTest, AlertsAnswerOnceTheAnalysisHasStarted) {
  const absl::Time deadline = absl::Now() + kWait;
  while (!c_.collector->analyzing() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(c_.collector->analyzing());
  grpc::ClientContext ctx;
  v1::ListAlertsResponse resp;
  grpc::Status s = query_->ListAlerts(&ctx, {}, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
}

// Inside, an alert's kind is its stable name; on the wire it is also the
// AlertKind enum (common/wire_kinds.h), which the kind filter takes.
TEST_F(QueryServiceTest, AlertsCarryTheirKindAsAnEnumAndFilterOnIt) {
  const absl::Time deadline = absl::Now() + kWait;
  while (!c_.collector->analyzing() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(c_.collector->analyzing());
  for (const char* kind : {"new_listener", "path_loss"}) {
    v1::Alert a;
    a.set_kind(kind);
    a.set_subject(absl::StrCat(kind, " subject"));
    a.add_hosts("h1");
    *a.mutable_first_seen() = ToProtoTime(c_.clock.Now());
    *a.mutable_last_seen() = ToProtoTime(c_.clock.Now());
    *a.mutable_resolved_at() = ToProtoTime(c_.clock.Now());
    ASSERT_THAT(c_.alerts.SaveAlert(a), IsOk());
  }
  {
    grpc::ClientContext ctx;
    v1::ListAlertsRequest req;
    req.set_kind(v1::ALERT_KIND_NEW_LISTENER);
    v1::ListAlertsResponse resp;
    grpc::Status s = query_->ListAlerts(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(resp.alerts_size(), 1);
    EXPECT_EQ(resp.alerts(0).kind(), "new_listener");
    EXPECT_EQ(resp.alerts(0).alert_kind(), v1::ALERT_KIND_NEW_LISTENER);
  }
  {
    grpc::ClientContext ctx;
    v1::ListAlertsRequest req;  // every kind
    v1::ListAlertsResponse resp;
    grpc::Status s = query_->ListAlerts(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(resp.alerts_size(), 2);
    for (const auto& a : resp.alerts()) {
      EXPECT_EQ(a.alert_kind(), a.kind() == "path_loss"
                                    ? v1::ALERT_KIND_PATH_LOSS
                                    : v1::ALERT_KIND_NEW_LISTENER);
    }
  }
  {
    // A number from a newer client is refused, not an empty answer.
    grpc::ClientContext ctx;
    v1::ListAlertsRequest req;
    req.set_kind(static_cast<v1::AlertKind>(4242));
    v1::ListAlertsResponse resp;
    grpc::Status s = query_->ListAlerts(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("4242"));
  }
}

}  // namespace
}  // namespace netvigil::collector
