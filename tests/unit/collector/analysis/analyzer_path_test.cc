// Path rules on one host: destination loss, latency against the host's own
// baseline, route change, and their known false positives.
#include "gmock/gmock.h"
#include "tests/unit/collector/analysis/analysis_test_util.h"

namespace netvigil::collector::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// a -> gw 10.0.0.1 -> isp 100.64.0.1 -> 192.0.2.9
std::vector<Hop> Clean(double ms = 10) {
  return {{"10.0.0.1", 10, 10, 1},
          {"100.64.0.1", 10, 10, 5},
          {"192.0.2.9", 10, 10, ms}};
}

class PathRulesTest : public AnalyzerTest {};

TEST_F(PathRulesTest, DestinationLossNamesTheHopFromWhichItPersists) {
  Send("a", PathResult("192.0.2.9", Clean()));
  EXPECT_THAT(Open(), IsEmpty());
  Send("a", PathResult("192.0.2.9", {{"10.0.0.1", 10, 10, 1},
                                     {"100.64.0.1", 10, 7, 5},
                                     {"192.0.2.9", 10, 7, 10}}));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].kind(), "path_loss");
  EXPECT_EQ(open[0].subject(), "path_loss host=a");
  EXPECT_EQ(open[0].scope(), v1::ALERT_SCOPE_HOST);
  EXPECT_THAT(Hosts(open[0]), ElementsAre("a"));
  EXPECT_EQ(open[0].details().at("first_lossy_hop.a.192.0.2.9"),
            "100.64.0.1 (ttl 2)");
  ASSERT_EQ(open[0].evidence_size(), 1);
  EXPECT_EQ(open[0].evidence(0).agent(), "a");
  EXPECT_EQ(open[0].evidence(0).seq(), 2u);
  EXPECT_EQ(open[0].severity(), v1::SEVERITY_WARNING);
}

// Critical once the loss since its onset is surely heavy (rules/path.h,
// LossIsCritical): one run of 10 probes at 70% could be an unlucky run of
// moderate loss; three in a row are not.
TEST_F(PathRulesTest, HeavyLossIsCriticalOnceItIsSure) {
  Send("a", PathResult("192.0.2.9", Clean()));
  for (int run = 1; run <= 3; ++run) {
    Send("a", PathResult("192.0.2.9", {{"10.0.0.1", 10, 10, 1},
                                       {"100.64.0.1", 10, 10, 5},
                                       {"192.0.2.9", 10, 3, 10}}));
    ASSERT_EQ(Open().size(), 1u);
    EXPECT_EQ(Open()[0].severity(),
              run < 3 ? v1::SEVERITY_WARNING : v1::SEVERITY_CRITICAL)
        << "run " << run;
  }
  EXPECT_EQ(Open()[0].details().at("first_lossy_hop.a.192.0.2.9"),
            "192.0.2.9 (ttl 3)");
}

TEST_F(PathRulesTest, OneLostProbeIsNotLoss) {
  Send("a", PathResult("192.0.2.9", Clean()));
  // 1 of 10 lost: 10% meets the percentage but one probe is never loss.
  Send("a", PathResult("192.0.2.9", {{"10.0.0.1", 10, 10, 1},
                                     {"100.64.0.1", 10, 10, 5},
                                     {"192.0.2.9", 10, 9, 10}}));
  EXPECT_THAT(Open(), IsEmpty());
  EXPECT_THAT(events_, IsEmpty());
}

TEST_F(PathRulesTest, FewProbesAreNotJudged) {
  Send("a", PathResult("192.0.2.9", Clean()));
  Send("a", PathResult("192.0.2.9", {{"10.0.0.1", 3, 3, 1},
                                     {"100.64.0.1", 3, 3, 5},
                                     {"192.0.2.9", 3, 1, 10}}));
  EXPECT_THAT(Open(), IsEmpty());
}

TEST_F(PathRulesTest, MiddleHopRateLimitingIsNotLoss) {
  Send("a", PathResult("192.0.2.9", Clean()));
  // The middle router answers 3 of 10 time-exceeded probes; the
  // destination answers all: ICMP rate limiting.
  Send("a", PathResult("192.0.2.9", {{"10.0.0.1", 10, 10, 1},
                                     {"100.64.0.1", 10, 3, 5},
                                     {"192.0.2.9", 10, 10, 10}}));
  // A middle hop that does not answer at all is the same.
  Send("a", PathResult("192.0.2.9", {{"10.0.0.1", 10, 10, 1},
                                     {"", 10, 0, 0},
                                     {"192.0.2.9", 10, 10, 10}}));
  EXPECT_THAT(Open(), IsEmpty());
  EXPECT_THAT(events_, IsEmpty());
}

TEST_F(PathRulesTest, LossResolvesWhenTheDestinationAnswersAgain) {
  Send("a", PathResult("192.0.2.9", Clean()));
  Send("a", PathResult("192.0.2.9", {{"10.0.0.1", 10, 10, 1},
                                     {"100.64.0.1", 10, 10, 5},
                                     {"192.0.2.9", 10, 5, 10}}));
  ASSERT_EQ(Open().size(), 1u);
  clock_.Advance(absl::Minutes(1));
  Send("a", PathResult("192.0.2.9", {{"10.0.0.1", 10, 10, 1},
                                     {"100.64.0.1", 10, 10, 5},
                                     {"192.0.2.9", 10, 4, 10}}));
  EXPECT_EQ(Events(v1::AlertEvent::TYPE_UPDATED).size(), 0u)
      << "the same condition again is not news";
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_EQ(Open()[0].evidence_size(), 2);
  // Clean runs: resolved once the recent runs together are clean.
  clock_.Advance(absl::Minutes(1));
  Send("a", PathResult("192.0.2.9", Clean()));
  EXPECT_EQ(Open().size(), 1u);
  for (uint32_t i = 1; i < options_.path_loss_window_runs; ++i) {
    Send("a", PathResult("192.0.2.9", Clean()));
  }
  EXPECT_THAT(Open(), IsEmpty());
  auto resolved = Events(v1::AlertEvent::TYPE_RESOLVED);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_TRUE(resolved[0].alert().has_resolved_at());
  EXPECT_EQ(resolved[0].alert().first_seen().seconds() + 120,
            resolved[0].alert().last_seen().seconds());
}

TEST_F(PathRulesTest, SteadyLossWithBinomialNoiseIsOneAlert) {
  Send("a", PathResult("192.0.2.9", Clean()));
  // 20% loss over 10 probes a run: many runs show 0 or 1 lost.
  for (uint32_t lost : {2, 0, 1, 3, 1, 0, 2, 4, 1, 1, 0, 2, 3, 1, 2}) {
    clock_.Advance(absl::Minutes(1));
    Send("a", PathResult("192.0.2.9", {{"10.0.0.1", 10, 10 - lost, 1},
                                       {"100.64.0.1", 10, 10 - lost, 5},
                                       {"192.0.2.9", 10, 10 - lost, 10}}));
  }
  EXPECT_EQ(Opened(), 1u);
  EXPECT_EQ(Events(v1::AlertEvent::TYPE_RESOLVED).size(), 0u);
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_EQ(Open()[0].details().at("first_lossy_hop.a.192.0.2.9"),
            "10.0.0.1 (ttl 1)");
}

TEST_F(PathRulesTest, LossThatAddsUpOverRunsOpens) {
  Send("a", PathResult("192.0.2.9", Clean()));
  // One lost probe per run: never two in one run, but 10% over the window.
  for (int i = 0; i < 4; ++i) {
    Send("a", PathResult("192.0.2.9",
                         {{"10.0.0.1", 10, 10, 1}, {"192.0.2.9", 10, 9, 10}}));
  }
  EXPECT_EQ(Open().size(), 1u);
}

TEST_F(PathRulesTest, UnreachableAfterBeingReachedIsLoss) {
  Send("a", PathResult("192.0.2.9", Clean()));
  Send("a",
       PathResult("192.0.2.9",
                  {{"10.0.0.1", 10, 10, 1}, {"", 10, 0, 0}, {"", 10, 0, 0}},
                  /*reached=*/false));
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_EQ(Open()[0].details().at("first_lossy_hop.a.192.0.2.9"),
            "ttl 2 (no reply)");
}

TEST_F(PathRulesTest, TargetThatNeverAnswersIsNotLoss) {
  for (int i = 0; i < 3; ++i) {
    Send("a",
         PathResult("192.0.2.50", {{"10.0.0.1", 10, 10, 1}, {"", 10, 0, 0}},
                    /*reached=*/false));
  }
  EXPECT_THAT(Open(), IsEmpty());
}

TEST_F(PathRulesTest, FirstRunOfANewAgentOnlyTeaches) {
  Send("new", PathResult("192.0.2.9",
                         {{"10.0.0.1", 10, 10, 1}, {"192.0.2.9", 10, 2, 10}}));
  EXPECT_THAT(Open(), IsEmpty());
  EXPECT_THAT(events_, IsEmpty());
}

TEST_F(PathRulesTest, RunsWithMissingFieldsAreSkipped) {
  v1::Result no_target = PathResult("", Clean());
  v1::Result failed = PathResult("x", {});
  failed.mutable_path()->set_error("name does not resolve");
  v1::Result no_hops = PathResult("192.0.2.9", {});
  v1::Result empty;  // no payload at all
  Send("a", no_target);
  Send("a", failed);
  Send("a", no_hops);
  Send("a", empty);
  analyzer_->OnResult("", PathResult("192.0.2.9", Clean()));
  EXPECT_THAT(Open(), IsEmpty());
  EXPECT_EQ(analyzer_->counters().skipped, 5u);
}

TEST_F(PathRulesTest, LatencyAlertsOnlyWhenItPersists) {
  const double usual[] = {10, 10.4, 9.8, 10.2, 9.9, 10.1, 10.3, 9.7};
  for (double ms : usual) Send("a", PathResult("192.0.2.9", Clean(ms)));
  // One slow run is not news.
  Send("a", PathResult("192.0.2.9", Clean(45)));
  Send("a", PathResult("192.0.2.9", Clean(10)));
  EXPECT_THAT(Open(), IsEmpty());
  // Three in a row are.
  Send("a", PathResult("192.0.2.9", Clean(45)));
  Send("a", PathResult("192.0.2.9", Clean(50)));
  EXPECT_THAT(Open(), IsEmpty());
  Send("a", PathResult("192.0.2.9", Clean(48)));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].kind(), "path_latency");
  EXPECT_EQ(open[0].subject(), "path_latency host=a target=192.0.2.9");
  EXPECT_EQ(open[0].details().at("median_ms"), "10.000");
  // Back to normal: resolved.
  Send("a", PathResult("192.0.2.9", Clean(10.2)));
  EXPECT_THAT(Open(), IsEmpty());
  EXPECT_EQ(Events(v1::AlertEvent::TYPE_RESOLVED).size(), 1u);
}

TEST_F(PathRulesTest, DestinationFiguresComeFromItsHopWhenNotCopied) {
  auto run = [](double ms, uint32_t recv) {
    v1::Result r = PathResult(
        "192.0.2.9", {{"10.0.0.1", 10, 10, 1}, {"192.0.2.9", 10, recv, ms}});
    r.mutable_path()->clear_destination();
    return r;
  };
  for (int i = 0; i < 6; ++i) Send("a", run(10, 10));
  for (int i = 0; i < 3; ++i) Send("a", run(40, 10));
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_EQ(Open()[0].kind(), "path_latency");
  Send("a", run(10, 4));  // usual latency again, but 60% lost
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_EQ(Open()[0].kind(), "path_loss");
}

TEST_F(PathRulesTest, LatencyBaselineIsTheHostsOwn) {
  // A host whose usual is 80 ms (a far target) is not slow at 82 ms, and one
  // at 1 ms is slow at 12 ms: no fixed number.
  for (int i = 0; i < 8; ++i) {
    Send("far", PathResult("t", {{"10.0.0.1", 10, 10, 1},
                                 {"t", 10, 10, 80.0 + (i % 3)}}));
    Send("near", PathResult("t", {{"10.0.0.1", 10, 10, 1},
                                  {"t", 10, 10, 1 + 0.1 * (i % 3)}}));
  }
  for (int i = 0; i < 3; ++i) {
    Send("far", PathResult("t", {{"10.0.0.1", 10, 10, 1}, {"t", 10, 10, 82}}));
    Send("near", PathResult("t", {{"10.0.0.1", 10, 10, 1}, {"t", 10, 10, 12}}));
  }
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_THAT(Hosts(open[0]), ElementsAre("near"));
}

TEST_F(PathRulesTest, RouteChangeMustHoldAndRateLimitedHopsAreNoChange) {
  Send("a", PathResult("192.0.2.9", Clean()));
  // A hop that did not answer is no change.
  Send("a", PathResult("192.0.2.9", {{"10.0.0.1", 10, 10, 1},
                                     {"", 10, 0, 0},
                                     {"192.0.2.9", 10, 10, 10}}));
  // One different run is not yet a change (route_change_runs = 2).
  auto other = std::vector<Hop>{{"10.0.0.1", 10, 10, 1},
                                {"100.64.9.9", 10, 10, 5},
                                {"192.0.2.9", 10, 10, 10}};
  Send("a", PathResult("192.0.2.9", other));
  EXPECT_THAT(Open(), IsEmpty());
  Send("a", PathResult("192.0.2.9", other));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].kind(), "route_change");
  EXPECT_EQ(open[0].details().at("first_diverging_ttl"), "2");
  EXPECT_EQ(open[0].details().at("old_route"), "10.0.0.1,100.64.0.1,192.0.2.9");
  // Back on the stable route: resolved.
  Send("a", PathResult("192.0.2.9", Clean()));
  EXPECT_THAT(Open(), IsEmpty());
}

TEST_F(PathRulesTest, AcknowledgedRouteBecomesTheStableOne) {
  Send("a", PathResult("192.0.2.9", Clean()));
  auto other = std::vector<Hop>{{"10.0.0.1", 10, 10, 1},
                                {"100.64.9.9", 10, 10, 5},
                                {"192.0.2.9", 10, 10, 10}};
  Send("a", PathResult("192.0.2.9", other));
  Send("a", PathResult("192.0.2.9", other));
  ASSERT_EQ(Open().size(), 1u);
  ASSERT_TRUE(analyzer_->Ack(Open()[0].id(), "me").ok());
  Send("a", PathResult("192.0.2.9", other));
  EXPECT_THAT(Open(), IsEmpty()) << "the acknowledged route is normal now";
  EXPECT_EQ(Opened(), 1u);
}

}  // namespace
}  // namespace netvigil::collector::testing
