// The clock_skew alert: opened past a minute of offset naming the host and
// the offset, not rewritten by every heartbeat, resolved under half a minute.
#include "gmock/gmock.h"
#include "tests/unit/collector/analysis/analysis_test_util.h"

namespace netvigil::collector::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

class ClockSkewTest : public AnalyzerTest {};

TEST_F(ClockSkewTest, AnOffsetBeyondAMinuteNamesTheHostAndTheOffset) {
  analyzer_->OnClockOffset("nas", absl::Seconds(59));
  EXPECT_TRUE(Open().empty());
  analyzer_->OnClockOffset("nas", absl::Hours(2));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].kind(), "clock_skew");
  EXPECT_EQ(open[0].subject(), "clock_skew host=nas");
  EXPECT_THAT(open[0].hosts(), ElementsAre("nas"));
  EXPECT_THAT(open[0].summary(),
              HasSubstr("the clock of nas is 2h ahead of the collector's"));
  EXPECT_EQ(open[0].details().at("offset_s"), "7200");

  // Heartbeats every few seconds with the same offset are not news.
  const size_t events = events_.size();
  analyzer_->OnClockOffset("nas", absl::Hours(2) + absl::Seconds(1));
  EXPECT_EQ(events_.size(), events);
  // A real change is.
  analyzer_->OnClockOffset("nas", absl::Hours(3));
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_EQ(Open()[0].details().at("offset_s"), "10800");
  // Under the threshold but not yet under half of it: held open.
  analyzer_->OnClockOffset("nas", absl::Seconds(40));
  ASSERT_EQ(Open().size(), 1u);
  analyzer_->OnClockOffset("nas", absl::Seconds(-1));
  EXPECT_TRUE(Open().empty());
  EXPECT_EQ(Events(v1::AlertEvent::TYPE_RESOLVED).size(), 1u);
}

TEST_F(ClockSkewTest, ABehindClockSaysBehind) {
  analyzer_->OnClockOffset("pi", absl::Hours(-72));
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_THAT(Open()[0].summary(),
              HasSubstr("the clock of pi is 72h behind the collector's"));
}

// A collector whose clock is 3 days ahead saw every agent "72h behind" and
// blamed each agent's clock. When every agent heard lately is off by about
// the same, the alert says the collector's clock is the likelier culprit.
TEST_F(ClockSkewTest, EveryAgentOffByTheSameSuspectsTheCollectorsClock) {
  analyzer_->OnClockOffset("nas", absl::Hours(-72));
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_THAT(Open()[0].summary(), Not(HasSubstr("collector's own clock")));
  analyzer_->OnClockOffset("pi", absl::Hours(-72) + absl::Seconds(3));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 2u);
  const v1::Alert& pi =
      open[0].subject() == "clock_skew host=pi" ? open[0] : open[1];
  EXPECT_THAT(pi.summary(),
              HasSubstr("all 2 agents heard lately are off by as much: the "
                        "collector's own clock is the likelier one"));
  EXPECT_EQ(pi.details().at("agents_agreeing"), "2");
}

TEST_F(ClockSkewTest, OneAgentOffAmongRightOnesBlamesThatAgent) {
  analyzer_->OnClockOffset("laptop", absl::Seconds(1));
  analyzer_->OnClockOffset("nas", absl::Seconds(-2));
  analyzer_->OnClockOffset("pi", absl::Hours(-72));
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_THAT(Open()[0].summary(),
              HasSubstr("the clock of pi is 72h behind the collector's"));
  EXPECT_THAT(Open()[0].summary(), Not(HasSubstr("collector's own clock")));
  EXPECT_EQ(Open()[0].details().count("agents_agreeing"), 0u);
}

}  // namespace
}  // namespace netvigil::collector::testing
