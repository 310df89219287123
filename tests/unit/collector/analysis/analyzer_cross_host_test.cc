// Cross-host rules: upstream vs host scoping of loss, host link vs LAN vs
// ISP for speed, and one MULTI_HOST alert for the same new thing on several
// hosts. One alert per condition, never one per host or per run.
#include <cstdio>

#include "gmock/gmock.h"
#include "tests/unit/collector/analysis/analysis_test_util.h"

namespace netvigil::collector::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const char kTarget[] = "198.51.100.7";

// host's own gateway, shared router r1, upstream r2, target.
std::vector<Hop> Path(const std::string& gw, uint32_t r2_recv,
                      uint32_t dest_recv) {
  return {{gw, 10, 10, 1},
          {"10.0.0.254", 10, 10, 2},
          {"100.64.0.1", 10, r2_recv, 5},
          {kTarget, 10, dest_recv, 9}};
}

class CrossHostTest : public AnalyzerTest {
 protected:
  void Baseline() {
    for (const char* h : {"a", "b", "c"}) {
      Send(h, PathResult(kTarget, Path("10.0.1.1", 10, 10)));
    }
    clock_.Advance(absl::Seconds(30));
  }
};

TEST_F(CrossHostTest, LossFromEveryHostIsOneUpstreamAlertAtTheFirstSharedHop) {
  Baseline();
  // The hosts run at different moments; the first lossy ones wait for the
  // others instead of each raising a host alert.
  Send("a", PathResult(kTarget, Path("10.0.1.1", 7, 7)));
  clock_.Advance(absl::Seconds(20));
  Send("b", PathResult(kTarget, Path("10.0.1.1", 6, 6)));
  EXPECT_THAT(Open(), IsEmpty());
  clock_.Advance(absl::Seconds(20));
  Send("c", PathResult(kTarget, Path("10.0.1.1", 8, 7)));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].scope(), v1::ALERT_SCOPE_UPSTREAM);
  EXPECT_EQ(open[0].subject(), "path_loss upstream");
  EXPECT_THAT(Hosts(open[0]), ElementsAre("a", "b", "c"));
  EXPECT_EQ(open[0].details().at(std::string("first_shared_hop.") + kTarget),
            "100.64.0.1");
  EXPECT_EQ(open[0].evidence_size(), 3);
  // Further lossy runs keep the one alert, and no host alert ever opened.
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(absl::Minutes(1));
    for (const char* h : {"a", "b", "c"}) {
      Send(h, PathResult(kTarget, Path("10.0.1.1", 7, 7)));
    }
    analyzer_->Tick();
  }
  EXPECT_EQ(Opened(), 1u);
  EXPECT_EQ(Events(v1::AlertEvent::TYPE_RESOLVED).size(), 0u);
  // Hosts recover one by one: still the one upstream alert, then resolved,
  // with no host alert on the way out.
  for (uint32_t i = 0; i < options_.path_loss_window_runs; ++i) {
    clock_.Advance(absl::Minutes(1));
    Send("a", PathResult(kTarget, Path("10.0.1.1", 10, 10)));
    Send("b", PathResult(kTarget, Path("10.0.1.1", 10, 10)));
    ASSERT_EQ(Open().size(), 1u);
    EXPECT_EQ(Open()[0].scope(), v1::ALERT_SCOPE_UPSTREAM);
  }
  Send("c", PathResult(kTarget, Path("10.0.1.1", 10, 10)));
  ASSERT_EQ(Open().size(), 1u) << "c's recent runs still lose";
  for (uint32_t i = 1; i < options_.path_loss_window_runs; ++i) {
    Send("c", PathResult(kTarget, Path("10.0.1.1", 10, 10)));
  }
  EXPECT_THAT(Open(), IsEmpty());
  EXPECT_EQ(Opened(), 1u);
  EXPECT_EQ(Events(v1::AlertEvent::TYPE_UPDATED).size(), 0u);
}

TEST_F(CrossHostTest, LossFromOneHostIsThatHostsLink) {
  Baseline();
  // a's own link loses: loss from its first hop to the end.
  Send("a", PathResult(kTarget, {{"10.0.1.1", 10, 7, 1},
                                 {"10.0.0.254", 10, 7, 2},
                                 {"100.64.0.1", 10, 6, 5},
                                 {kTarget, 10, 7, 9}}));
  EXPECT_THAT(Open(), IsEmpty()) << "waits for the other hosts";
  // Each other host's next runs (path_loss_confirm_runs of them) are clean,
  // while a goes on losing (one lossy run alone is not a lossy link).
  for (uint32_t i = 0; i < options_.path_loss_confirm_runs; ++i) {
    EXPECT_THAT(Open(), IsEmpty());
    clock_.Advance(absl::Seconds(10));
    Send("b", PathResult(kTarget, Path("10.0.1.1", 10, 10)));
    Send("c", PathResult(kTarget, Path("10.0.1.1", 10, 10)));
    Send("a", PathResult(kTarget, {{"10.0.1.1", 10, 7, 1},
                                   {"10.0.0.254", 10, 7, 2},
                                   {"100.64.0.1", 10, 6, 5},
                                   {kTarget, 10, 7, 9}}));
  }
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].scope(), v1::ALERT_SCOPE_HOST);
  EXPECT_THAT(Hosts(open[0]), ElementsAre("a"));
  EXPECT_EQ(open[0].details().at(std::string("first_lossy_hop.a.") + kTarget),
            "10.0.1.1 (ttl 1)");
}

TEST_F(CrossHostTest, AnotherHostsLuckyCleanRunDoesNotSplitAnUpstreamFault) {
  Baseline();
  Send("a", PathResult(kTarget, Path("10.0.1.1", 7, 7)));
  Send("b", PathResult(kTarget, Path("10.0.1.1", 7, 7)));
  // c's first run after the onset loses nothing by chance (20% loss over 10
  // probes shows 0 lost one time in ten), its next runs do.
  clock_.Advance(absl::Seconds(20));
  Send("c", PathResult(kTarget, Path("10.0.1.1", 10, 10)));
  EXPECT_THAT(Open(), IsEmpty());
  clock_.Advance(absl::Seconds(20));
  Send("c", PathResult(kTarget, Path("10.0.1.1", 8, 8)));
  Send("c", PathResult(kTarget, Path("10.0.1.1", 7, 7)));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].scope(), v1::ALERT_SCOPE_UPSTREAM);
  EXPECT_EQ(Opened(), 1u);
}

TEST_F(CrossHostTest, OneHostsLossSettlesIntoAHostAlertWhenOthersAreSilent) {
  Baseline();
  Send("a", PathResult(kTarget, Path("10.0.1.1", 5, 5)));
  analyzer_->Tick();
  EXPECT_THAT(Open(), IsEmpty());
  clock_.Advance(options_.cross_host_settle);
  analyzer_->Tick();
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_EQ(Open()[0].scope(), v1::ALERT_SCOPE_HOST);
}

TEST_F(CrossHostTest, AHostThatStopsReportingNoLongerCounts) {
  Baseline();
  Send("a", PathResult(kTarget, Path("10.0.1.1", 5, 5)));
  clock_.Advance(options_.cross_host_settle);
  analyzer_->Tick();
  ASSERT_EQ(Open().size(), 1u);
  clock_.Advance(options_.cross_host_window);
  analyzer_->Tick();
  EXPECT_THAT(Open(), IsEmpty());
}

// With the multi-host hold (multi_host_window), the same new listener on
// two hosts opens once, already multi-host, with the higher severity.
class HeldCrossHostTest : public AnalyzerTest {
 protected:
  static AnalysisOptions Held() {
    AnalysisOptions o = TestOptions();
    o.multi_host_window = absl::Minutes(10);
    return o;
  }
  HeldCrossHostTest() : AnalyzerTest(Held()) {}
};

TEST_F(HeldCrossHostTest, SameNewListenerOnTwoHostsIsOneMultiHostAlert) {
  for (const char* h : {"a", "b", "c"}) {
    Send(h, SocketsResult({{.lport = 22}}));
  }
  Sock nc{.lport = 4444, .exe = "/usr/bin/nc.openbsd", .pid = 700};
  Send("a", SocketsResult({{.lport = 22}, nc}));
  EXPECT_THAT(Open(), IsEmpty()) << "held for the window";
  clock_.Advance(absl::Minutes(5));
  nc.pid = 9000;
  Send("b", SocketsResult({{.lport = 22}, nc}));
  clock_.Advance(absl::Minutes(5));
  analyzer_->Tick();
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].kind(), "new_listener");
  EXPECT_EQ(open[0].scope(), v1::ALERT_SCOPE_MULTI_HOST);
  EXPECT_EQ(open[0].severity(), v1::SEVERITY_CRITICAL);
  EXPECT_THAT(Hosts(open[0]), ElementsAre("a", "b"));
  ASSERT_EQ(Opened(), 1u);
  EXPECT_EQ(Events(v1::AlertEvent::TYPE_OPENED)[0].alert().scope(),
            v1::ALERT_SCOPE_MULTI_HOST);
  EXPECT_THAT(Events(v1::AlertEvent::TYPE_UPDATED), IsEmpty());
  // It resolves when gone from both.
  Send("a", SocketsResult({{.lport = 22}}));
  EXPECT_EQ(Open().size(), 1u);
  Send("b", SocketsResult({{.lport = 22}}));
  EXPECT_THAT(Open(), IsEmpty());
}

TEST_F(CrossHostTest, ListenersOnEachHostsOwnAddressAreTheSameListener) {
  for (const char* h : {"a", "b"}) Send(h, SocketsResult({{.lport = 22}}));
  Sock on_a{.local = "10.0.1.2", .lport = 9000, .exe = "/usr/bin/socat"};
  Sock on_b{.local = "10.0.1.3", .lport = 9000, .exe = "/usr/bin/socat"};
  Send("a", SocketsResult({{.lport = 22}, on_a}));
  Send("b", SocketsResult({{.lport = 22}, on_b}));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].subject(), "tcp <host>:9000 /usr/bin/socat");
  EXPECT_EQ(open[0].scope(), v1::ALERT_SCOPE_MULTI_HOST);
  // Acknowledged: each host's own listener joins its baseline.
  ASSERT_TRUE(analyzer_->Ack(open[0].id(), "ann").ok());
  Send("a", SocketsResult({{.lport = 22}}));
  Send("b", SocketsResult({{.lport = 22}}));
  EXPECT_THAT(Open(), IsEmpty());
  Send("a", SocketsResult({{.lport = 22}, on_a}));
  Send("b", SocketsResult({{.lport = 22}, on_b}));
  EXPECT_THAT(Open(), IsEmpty());
  EXPECT_EQ(Opened(), 1u);
}

TEST_F(CrossHostTest, SameListenerFarApartIsNotOneEvent) {
  for (const char* h : {"a", "b"}) Send(h, SocketsResult({{.lport = 22}}));
  Sock web{.lport = 8080, .exe = "/usr/bin/python3.11"};
  Send("a", SocketsResult({{.lport = 22}, web}));
  clock_.Advance(options_.multi_host_window + absl::Minutes(1));
  Send("b", SocketsResult({{.lport = 22}, web}));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 2u);
  EXPECT_EQ(open[0].scope(), v1::ALERT_SCOPE_HOST);
  EXPECT_EQ(open[1].scope(), v1::ALERT_SCOPE_HOST);
}

TEST_F(CrossHostTest, TwentyHostsTenTargetsGiveOneAlertPerCondition) {
  const int kHosts = 20, kTargets = 10, kRounds = 12;
  auto host = [](int h) { return "h" + std::to_string(h); };
  auto target = [](int t) { return "203.0.113." + std::to_string(t + 1); };
  // Round 6 on: every host loses to target 0 from 100.64.0.1 on, and host 3
  // loses to every target from its own gateway.
  auto run = [&](int h, int t, bool fault) {
    uint32_t shared = fault && t == 0 ? 6 : 10;
    uint32_t own = fault && h == 3 ? 6 : 10;
    uint32_t dest = std::min(shared, own);
    return PathResult(target(t),
                      {{"10.0." + std::to_string(h) + ".1", 10, own, 1},
                       {"100.64.0.1", 10, std::min(shared, own), 5},
                       {target(t), 10, dest, 9}});
  };
  const absl::Time start = absl::Now();
  for (int r = 0; r < kRounds; ++r) {
    for (int h = 0; h < kHosts; ++h) {
      for (int t = 0; t < kTargets; ++t) Send(host(h), run(h, t, r >= 6));
    }
    clock_.Advance(absl::Minutes(1));
    analyzer_->Tick();
  }
  const absl::Duration took = absl::Now() - start;
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 2u);
  EXPECT_EQ(open[0].scope(), v1::ALERT_SCOPE_UPSTREAM);
  EXPECT_EQ(open[0].hosts_size(), kHosts);
  EXPECT_EQ(open[0].details().at("first_shared_hop.203.0.113.1"), "100.64.0.1");
  EXPECT_EQ(open[1].subject(), "path_loss host=h3");
  EXPECT_EQ(Opened(), 2u);
  std::printf("%d results in %.1f ms (%.1f us each)\n",
              kHosts * kTargets * kRounds, absl::ToDoubleMilliseconds(took),
              absl::ToDoubleMicroseconds(took) / (kHosts * kTargets * kRounds));
}

// ------------------------------------------------------------------ speed

class SpeedCrossHostTest : public AnalyzerTest {
 protected:
  // Every ordered pair of a, b, c at `bps`, except pairs in `slow` at bps/10.
  void Mesh(const std::set<std::string>& slow, double bps = 900e6) {
    for (const char* c : {"a", "b", "c"}) {
      for (const char* s : {"a", "b", "c"}) {
        if (std::string(c) == s) continue;
        const std::string pair = std::string(c) + ">" + s;
        Send(c, SpeedResult(c, s, slow.count(pair) ? bps / 10 : bps));
        clock_.Advance(absl::Minutes(1));
      }
    }
  }
  void Learn() {
    for (int i = 0; i < 3; ++i) Mesh({});
  }
};

TEST_F(SpeedCrossHostTest, EveryPairThroughOneHostIsThatHostsLink) {
  Learn();
  // A tbf on a's uplink: a's outgoing pairs are slow, incoming are fine.
  for (int i = 0; i < 3; ++i) Mesh({"a>b", "a>c"});
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].kind(), "speed_low");
  EXPECT_EQ(open[0].scope(), v1::ALERT_SCOPE_HOST);
  EXPECT_THAT(Hosts(open[0]), ElementsAre("a"));
  EXPECT_EQ(Opened(), 1u) << "no pair alert on the way";
  // Removed: resolved, with no pair alert on the way out either.
  Mesh({});
  EXPECT_THAT(Open(), IsEmpty());
  EXPECT_EQ(Opened(), 1u);
}

TEST_F(SpeedCrossHostTest, EveryPairDegradedIsTheLan) {
  Learn();
  std::set<std::string> all = {"a>b", "a>c", "b>a", "b>c", "c>a", "c>b"};
  for (int i = 0; i < 3; ++i) Mesh(all);
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].scope(), v1::ALERT_SCOPE_LAN);
  EXPECT_THAT(Hosts(open[0]), ElementsAre("a", "b", "c"));
}

TEST_F(SpeedCrossHostTest, OnePairDegradedIsThatPair) {
  Learn();
  for (int i = 0; i < 3; ++i) Mesh({"b>c"});
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].scope(), v1::ALERT_SCOPE_PAIR);
  EXPECT_EQ(open[0].subject(), "speed_low pair=b>c");
  // Evidence a person reads: units, not "9e+07 bit/s, usual 9e+08".
  ASSERT_GT(open[0].evidence_size(), 0);
  const std::string note = open[0].evidence(open[0].evidence_size() - 1).note();
  EXPECT_THAT(note, ::testing::HasSubstr("b>c 90.0 Mbit/s, usual 900 Mbit/s"));
  EXPECT_THAT(note, ::testing::Not(::testing::HasSubstr("e+")));
}

TEST_F(SpeedCrossHostTest, OneSlowRunIsNotNews) {
  Learn();
  Mesh({"a>b"});
  Mesh({});
  EXPECT_THAT(Open(), IsEmpty());
  EXPECT_THAT(events_, IsEmpty());
}

TEST_F(SpeedCrossHostTest, ExternalDownFromEveryHostIsTheIsp) {
  for (int i = 0; i < 3; ++i) {
    for (const char* h : {"a", "b"}) {
      Send(h, SpeedResult(h, "ext1", 100e6, /*external=*/true));
    }
    clock_.Advance(absl::Minutes(10));
  }
  for (int i = 0; i < 2; ++i) {
    Send("a", SpeedResult("a", "ext1", 5e6, true));
    clock_.Advance(absl::Minutes(10));
  }
  // Only a so far, but b has not run its external test since: a waits for
  // it rather than opening a host alert the ISP's fault would replace.
  EXPECT_THAT(Open(), IsEmpty());
  for (int i = 0; i < 2; ++i) {
    Send("b", SpeedResult("b", "ext1", 5e6, true));
    clock_.Advance(absl::Minutes(10));
  }
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].subject(), "speed_low isp");
  EXPECT_EQ(open[0].scope(), v1::ALERT_SCOPE_UPSTREAM);
  EXPECT_THAT(Hosts(open[0]), ElementsAre("a", "b"));
  EXPECT_EQ(Opened(), 1u) << "no host alert on the way";
}

TEST_F(SpeedCrossHostTest, OneHostsExternalDownAloneIsItsLink) {
  for (int i = 0; i < 3; ++i) {
    for (const char* h : {"a", "b"}) {
      Send(h, SpeedResult(h, "ext1", 100e6, /*external=*/true));
    }
    clock_.Advance(absl::Minutes(10));
  }
  for (int i = 0; i < 2; ++i) {
    Send("a", SpeedResult("a", "ext1", 5e6, true));
    clock_.Advance(absl::Minutes(10));
  }
  EXPECT_THAT(Open(), IsEmpty());
  // b is measured twice since a's first low result, and stays fine.
  Send("b", SpeedResult("b", "ext1", 100e6, true));
  EXPECT_THAT(Open(), IsEmpty());
  clock_.Advance(absl::Minutes(10));
  Send("b", SpeedResult("b", "ext1", 100e6, true));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].subject(), "speed_low host=a");
  EXPECT_EQ(open[0].scope(), v1::ALERT_SCOPE_HOST);
}

}  // namespace
}  // namespace netvigil::collector::testing
