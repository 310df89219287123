// Analysis baselines in analysis_state: internal messages as bytes, rows of
// older versions ("k=v" text) converted once on Load, and a row that does
// not parse restarting its baseline visibly (a log line), never read as 0.
#include <sstream>

#include "gmock/gmock.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "tests/unit/collector/analysis/analysis_test_util.h"

namespace netvigil::collector::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Sends spdlog's default logger into a string for the scope.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    spdlog::set_default_logger(
        std::make_shared<spdlog::logger>("baselines_test", sink));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string text() {
    spdlog::default_logger()->flush();
    return out_.str();
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

constexpr char kTarget[] = "192.0.2.9";

std::vector<Hop> Route(double ms = 10) {
  return {{"10.0.0.1", 10, 10, 1}, {kTarget, 10, 10, ms}};
}

// A path baseline as the version before the messages wrote it: five
// normal runs around 10 ms, a stable route.
const char kLegacyPath[] =
    "at=1700000000000000\n"
    "candidate_route=\n"
    "candidate_runs=0\n"
    "hop_votes=\n"
    "loss_hop=\n"
    "loss_onset=0\n"
    "loss_percent=0.000\n"
    "loss_runs=10:0,10:0,10:0,10:0,10:0\n"
    "loss_suffix=\n"
    "lossy=0\n"
    "lossy_runs=0\n"
    "reached_ever=1\n"
    "recent_at=1699999880000000,1699999940000000,1700000000000000\n"
    "rtt=10,10.1,9.9,10,10.2\n"
    "seq=5\n"
    "slow_runs=0\n"
    "stable_route=10.0.0.1,192.0.2.9\n"
    "sustained=0\n";

class BaselinesTest : public AnalyzerTest {
 protected:
  std::optional<AnalysisStateRow> Row(const std::string& agent,
                                      const std::string& kind,
                                      const std::string& key) {
    auto rows = store_.LoadState();
    EXPECT_TRUE(rows.ok());
    for (const auto& r : *rows) {
      if (r.agent == agent && r.kind == kind && r.key == key) return r;
    }
    return std::nullopt;
  }
  // Three slow runs: the latency alert opens only on a learnt baseline.
  void ThreeSlowRuns() {
    for (int i = 0; i < 3; ++i) Send("a", PathResult(kTarget, Route(80)));
  }
};

TEST_F(BaselinesTest, PathBaselinesAreStoredAsMessages) {
  Send("a", PathResult(kTarget, Route()));
  std::optional<AnalysisStateRow> row = Row("a", "path", kTarget);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->value, "") << "no k=v text";
  ASSERT_TRUE(row->bytes.has_value());
  internal::PathBaseline t;
  ASSERT_TRUE(t.ParseFromString(*row->bytes));
  EXPECT_THAT(t.rtt_ms(), ElementsAre(10));
  EXPECT_EQ(t.stable_route(), "10.0.0.1,192.0.2.9");
}

TEST_F(BaselinesTest, AKvRowOfAnOlderVersionIsConvertedOnceOnLoad) {
  Send("a", PathResult(kTarget, Route()));  // the agent has path history
  ASSERT_TRUE(store_.PutState({"a", "path", kTarget, kLegacyPath}).ok());
  ASSERT_TRUE(store_
                  .PutState({"*", "speed", "a>b",
                             "agent=a\nsender=a\nreceiver=b\nexternal=0\n"
                             "bps=9e+08,9.1e+08,8.9e+08\nlow_runs=0\n"})
                  .ok());
  Restart();
  std::optional<AnalysisStateRow> row = Row("a", "path", kTarget);
  ASSERT_TRUE(row.has_value() && row->bytes.has_value());
  internal::PathBaseline t;
  ASSERT_TRUE(t.ParseFromString(*row->bytes));
  EXPECT_THAT(t.rtt_ms(), ElementsAre(10, 10.1, 9.9, 10, 10.2));
  EXPECT_EQ(t.loss_runs_size(), 5);
  EXPECT_EQ(t.recent_at_us_size(), 3);
  EXPECT_EQ(t.seq(), 5u);
  row = Row("*", "speed", "a>b");
  ASSERT_TRUE(row.has_value() && row->bytes.has_value());
  internal::SpeedBaseline p;
  ASSERT_TRUE(p.ParseFromString(*row->bytes));
  EXPECT_THAT(p.bps(), ElementsAre(9e8, 9.1e8, 8.9e8));
  // The upgrade kept the baseline: slow runs alert at once, no relearning.
  ThreeSlowRuns();
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_EQ(Open()[0].kind(), "path_latency");
  EXPECT_THAT(Open()[0].summary(), HasSubstr("above its usual 10.0 ms"));
}

TEST_F(BaselinesTest, ARowThatDoesNotParseRestartsLearningVisibly) {
  Send("a", PathResult(kTarget, Route()));
  ASSERT_TRUE(
      store_
          .PutState({"a", "path", kTarget, "", std::string("\xff\xff\xff", 3)})
          .ok());
  LogCapture log;
  Restart();
  EXPECT_THAT(log.text(), HasSubstr("event=analysis_state_unreadable agent=a "
                                    "kind=path key=192.0.2.9"));
  EXPECT_THAT(log.text(), HasSubstr("baseline restarts learning"));
  // The target's next run is its first: no latency judged against zeros.
  ThreeSlowRuns();
  EXPECT_THAT(Open(), IsEmpty());
}

TEST_F(BaselinesTest, AMalformedKvFieldIsUnreadableNotZero) {
  Send("a", PathResult(kTarget, Route()));
  std::string bad = kLegacyPath;
  bad.replace(bad.find("rtt=10,"), 7, "rtt=1x,");
  ASSERT_TRUE(store_.PutState({"a", "path", kTarget, bad}).ok());
  LogCapture log;
  Restart();
  EXPECT_THAT(log.text(), HasSubstr("kind=path key=192.0.2.9 "
                                    "why=\"k=v field rtt malformed\""));
  ThreeSlowRuns();
  EXPECT_THAT(Open(), IsEmpty());
}

TEST_F(BaselinesTest, GapTotalsLiveInTheBaselineAndSurviveARestart) {
  v1::Result gap;
  gap.mutable_gap()->set_count(4);
  gap.mutable_gap()->set_reason("over_cap");
  Send("a", gap);
  Restart();
  gap.mutable_gap()->set_count(3);
  Send("a", gap);
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_THAT(Open()[0].summary(), HasSubstr("7 results lost on a"));
  EXPECT_THAT(Open()[0].summary(), HasSubstr("in 2 gaps"));
  ASSERT_TRUE(Row("a", "gaps", "").has_value());
}

TEST_F(BaselinesTest, AnOpenGapAlertOfAnOlderVersionGivesItsTotalsOnce) {
  v1::Alert a;
  a.set_kind("results_lost");
  a.set_subject("results_lost host=a");
  a.add_hosts("a");
  (*a.mutable_details())["count"] = "10";
  (*a.mutable_details())["gaps"] = "2";
  (*a.mutable_details())["first_at_us"] = "1700000000000000";
  (*a.mutable_details())["last_at_us"] = "1700000060000000";
  (*a.mutable_details())["reasons"] = "over_cap, disk_full";
  (*a.mutable_details())["bound"] = "no";
  ASSERT_TRUE(store_.SaveAlert(a).ok());
  Restart();
  v1::Result gap;
  gap.mutable_gap()->set_count(1);
  gap.mutable_gap()->set_reason("over_cap");
  Send("a", gap);
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_THAT(Open()[0].summary(), HasSubstr("11 results lost on a"));
  EXPECT_THAT(Open()[0].summary(),
              HasSubstr("in 3 gaps (disk_full, over_cap)"));
}

}  // namespace
}  // namespace netvigil::collector::testing
