// The clock_skew alert: opened past a minute of offset naming the host and
// the offset, not rewritten by every heartbeat, resolved under half a minute.
#include "gmock/gmock.h"
#include "tests/unit/collector/analysis/analysis_test_util.h"

namespace netvigil::collector::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

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

}  // namespace
}  // namespace netvigil::collector::testing
