// The alert lifecycle: open, update, resolve, acknowledge (no repeat), the
// events in the store, state that survives a restart, a store that is down.
#include <thread>

#include "gmock/gmock.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/collector/analysis/analysis_test_util.h"

namespace netvigil::collector::testing {
namespace {

using ::netvigil::testing::IsOk;
using ::netvigil::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

const Sock kSsh{.lport = 22, .exe = "/usr/sbin/sshd"};
const Sock kWeb{.lport = 8080, .exe = "/usr/bin/python3.11"};

std::vector<Hop> Hops(uint32_t dest_recv, double ms = 10) {
  return {{"10.0.0.1", 10, 10, 1}, {"192.0.2.9", 10, dest_recv, ms}};
}

class LifecycleTest : public AnalyzerTest {};

TEST_F(LifecycleTest, EventsAreStoredInOrder) {
  Send("a", SocketsResult({kSsh}));
  Send("a", SocketsResult({kSsh, kWeb}));
  Send("b", SocketsResult({kSsh}));
  Send("b", SocketsResult({kSsh, kWeb}));
  Send("a", SocketsResult({kSsh}));
  Send("b", SocketsResult({kSsh}));
  std::vector<v1::AlertEvent::Type> types;
  for (const auto& e : store_.events()) types.push_back(e.type());
  EXPECT_THAT(types, ElementsAre(v1::AlertEvent::TYPE_OPENED,
                                 v1::AlertEvent::TYPE_UPDATED,
                                 v1::AlertEvent::TYPE_RESOLVED));
  const int64_t id = store_.events()[0].alert().id();
  EXPECT_GT(id, 0);
  for (const auto& e : store_.events()) EXPECT_EQ(e.alert().id(), id);
  absl::StatusOr<v1::Alert> stored = store_.GetAlert(id);
  ASSERT_THAT(stored, IsOk());
  EXPECT_TRUE(stored->has_resolved_at());
  EXPECT_EQ(stored->scope(), v1::ALERT_SCOPE_MULTI_HOST);
  EXPECT_EQ(events_.size(), 3u) << "listeners see the same events";
}

TEST_F(LifecycleTest, AckIsIdempotentAndUnknownIdsAreNotFound) {
  Send("a", SocketsResult({kSsh}));
  Send("a", SocketsResult({kSsh, kWeb}));
  const int64_t id = Open()[0].id();
  EXPECT_THAT(analyzer_->Ack(id, "ann"), IsOk());
  EXPECT_THAT(analyzer_->Ack(id, "bob"), IsOk());
  EXPECT_EQ(Events(v1::AlertEvent::TYPE_ACKNOWLEDGED).size(), 1u);
  EXPECT_EQ(Open()[0].acknowledged_by(), "ann");
  EXPECT_THAT(analyzer_->Ack(12345, "ann"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(LifecycleTest, AcknowledgedListenerNeverAlertsAgain) {
  Send("a", SocketsResult({kSsh}));
  Send("a", SocketsResult({kSsh, kWeb}));
  ASSERT_THAT(analyzer_->Ack(Open()[0].id(), "ann"), IsOk());
  Send("a", SocketsResult({kSsh}));
  EXPECT_THAT(Open(), IsEmpty());
  Send("a", SocketsResult({kSsh, kWeb}));
  EXPECT_EQ(Opened(), 1u);
  Restart();
  Send("a", SocketsResult({kSsh}));
  Send("a", SocketsResult({kSsh, kWeb}));
  EXPECT_THAT(Open(), IsEmpty());
  EXPECT_EQ(Opened(), 0u);
}

TEST_F(LifecycleTest, AcknowledgedConditionStaysQuietUntilItClears) {
  Send("a", PathResult("192.0.2.9", Hops(10)));
  Send("a", PathResult("192.0.2.9", Hops(7)));
  ASSERT_EQ(Open().size(), 1u);
  ASSERT_THAT(analyzer_->Ack(Open()[0].id(), "ann"), IsOk());
  const size_t before = events_.size();
  Send("a", PathResult("192.0.2.9", Hops(2)));  // worse: would be critical
  EXPECT_EQ(events_.size(), before) << "no updates after an ack";
  EXPECT_TRUE(Open()[0].acknowledged());
  for (uint32_t i = 0; i < options_.path_loss_window_runs; ++i) {
    Send("a", PathResult("192.0.2.9", Hops(10)));
  }
  EXPECT_THAT(Open(), IsEmpty());
  EXPECT_EQ(Events(v1::AlertEvent::TYPE_RESOLVED).size(), 1u);
}

TEST_F(LifecycleTest, BaselinesAndOpenAlertsSurviveARestart) {
  Send("a", SocketsResult({kSsh}));
  for (double ms : {10.0, 10.2, 9.9, 10.1, 10.0, 9.8}) {
    Send("a", PathResult("192.0.2.9", Hops(10, ms)));
  }
  Send("a", SocketsResult({kSsh, kWeb}));
  ASSERT_EQ(Open().size(), 1u);
  const int64_t id = Open()[0].id();

  Restart();
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_EQ(Open()[0].id(), id);
  // Known things stay known, the open alert is the same one...
  Send("a", SocketsResult({kSsh, kWeb}));
  EXPECT_EQ(Opened(), 0u);
  // ...the latency baseline is still there (three slow runs alert)...
  for (int i = 0; i < 3; ++i) Send("a", PathResult("192.0.2.9", Hops(10, 60)));
  ASSERT_EQ(Open().size(), 2u);
  // ...and the listener alert resolves as it goes.
  Send("a", SocketsResult({kSsh}));
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_EQ(Open()[0].kind(), "path_latency");
}

// A gap record produced from 12:00:00 UTC to `span_s` later.
v1::Result GapResult(uint64_t first, uint64_t last, uint64_t count,
                     const std::string& reason, int64_t span_s = 90) {
  v1::Result r;
  v1::Gap* g = r.mutable_gap();
  g->set_first_seq(first);
  g->set_last_seq(last);
  g->set_count(count);
  g->set_reason(reason);
  g->mutable_first_produced_at()->set_seconds(1795780800);  // 2026-11-27
  g->mutable_last_produced_at()->set_seconds(1795780800 + span_s);
  return r;
}

TEST_F(LifecycleTest, GapsOpenOneAlertPerHostThatAnAckCloses) {
  // The agent's very first result: a gap is news even while learning.
  Send("a", GapResult(5, 9, 5, "spool_over_cap"));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].kind(), "results_lost");
  EXPECT_EQ(open[0].subject(), "results_lost host=a");
  EXPECT_EQ(open[0].summary(),
            "5 results lost on a between 2026-11-27 12:00:00 and "
            "2026-11-27 12:01:30 UTC (spool_over_cap)");
  EXPECT_EQ(open[0].scope(), v1::ALERT_SCOPE_HOST);
  EXPECT_THAT(open[0].hosts(), ElementsAre("a"));
  ASSERT_EQ(open[0].evidence_size(), 1);
  EXPECT_EQ(open[0].evidence(0).seq(), 1u) << "the gap record's own number";
  const int64_t first_id = open[0].id();

  // The host's next gaps gather in the same alert; another host's do not.
  Send("a", GapResult(12, 12, 1, "spool_write_failed", 600));
  Send("b", GapResult(3, 3, 1, "spool_write_failed"));
  open = Open();
  ASSERT_EQ(open.size(), 2u);
  EXPECT_EQ(open[0].id(), first_id);
  EXPECT_EQ(open[0].summary(),
            "6 results lost on a between 2026-11-27 12:00:00 and "
            "2026-11-27 12:10:00 UTC in 2 gaps (spool_over_cap, "
            "spool_write_failed)");
  EXPECT_EQ(open[0].evidence_size(), 2);
  EXPECT_EQ(open[1].summary(),
            "1 result lost on b between 2026-11-27 12:00:00 and "
            "2026-11-27 12:01:30 UTC (spool_write_failed)");
  // A damaged spool knows only a bound, and the total says so from then on.
  Send("a", GapResult(20, 999, 980, "spool_damaged"));
  EXPECT_THAT(Open()[0].summary(),
              ::testing::StartsWith("up to 986 results lost on a"));
  EXPECT_EQ(Opened(), 2u);

  // Lost results never come back: the ack closes the alert for good, and a
  // later gap opens a new one.
  const int64_t id = Open()[0].id();
  absl::StatusOr<v1::Alert> acked = analyzer_->Ack(id, "ann");
  ASSERT_THAT(acked, IsOk());
  EXPECT_TRUE(acked->acknowledged());
  EXPECT_TRUE(acked->has_resolved_at());
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_EQ(Open()[0].hosts(0), "b");
  EXPECT_EQ(Events(v1::AlertEvent::TYPE_RESOLVED).size(), 1u);
  EXPECT_THAT(analyzer_->Ack(id, "bob"), IsOk());
  EXPECT_EQ(Events(v1::AlertEvent::TYPE_RESOLVED).size(), 1u);
  Send("a", GapResult(1000, 1001, 2, "spool_over_cap"));
  ASSERT_EQ(Open().size(), 2u);
  EXPECT_NE(Open()[1].id(), id);
  EXPECT_THAT(Open()[1].summary(), ::testing::StartsWith("2 results lost"));
}

TEST_F(LifecycleTest, AStoreThatIsDownLosesNoEventAndCrashesNothing) {
  Send("a", SocketsResult({kSsh}));
  store_.set_down(true);
  Send("a", SocketsResult({kSsh, kWeb}));
  EXPECT_EQ(events_.size(), 1u);
  EXPECT_EQ(Open().size(), 1u);
  EXPECT_GT(analyzer_->counters().store_errors, 0u);
  store_.set_down(false);
}

TEST_F(LifecycleTest, ResultsAcksAndReadsFromManyThreads) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      const std::string agent = "host" + std::to_string(t);
      for (int i = 0; i < 100; ++i) {
        v1::Result r = SocketsResult(i % 2 ? std::vector<Sock>{kSsh, kWeb}
                                           : std::vector<Sock>{kSsh});
        r.set_seq(i + 1);
        analyzer_->OnResult(agent, r);
      }
    });
  }
  threads.emplace_back([this] {
    for (int i = 0; i < 200; ++i) {
      for (const auto& a : analyzer_->Open())
        (void)analyzer_->Ack(a.id(), "ann");
    }
  });
  for (auto& th : threads) th.join();
  EXPECT_EQ(analyzer_->counters().results, 400u);
  // Every opened alert was resolved or is still open; none twice at once.
  std::map<int64_t, int> opened;
  for (const auto& e : store_.events()) {
    if (e.type() == v1::AlertEvent::TYPE_OPENED) ++opened[e.alert().id()];
  }
  for (const auto& [id, n] : opened) EXPECT_EQ(n, 1) << id;
  EXPECT_LE(Open().size(), 1u);
}

}  // namespace
}  // namespace netvigil::collector::testing
