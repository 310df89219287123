// collector/analysis/rules/gaps.{h,cc}: gap records add up in GapTotals,
// never re-read from an alert's words.
#include "collector/analysis/rules/gaps.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"

namespace netvigil::collector::rules {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::Gap Gap(uint64_t count, int64_t first_s, int64_t last_s,
            const std::string& reason) {
  v1::Gap g;
  g.set_count(count);
  g.set_first_seq(10);
  g.set_last_seq(10 + count - 1);
  *g.mutable_first_produced_at() = ToProtoTime(absl::FromUnixSeconds(first_s));
  *g.mutable_last_produced_at() = ToProtoTime(absl::FromUnixSeconds(last_s));
  g.set_reason(reason);
  return g;
}

TEST(RulesGapsTest, GapsAddUpInTheirTotals) {
  GapStep a =
      AddGap({}, "h1", 5, Gap(2, 1'700'000'100, 1'700'000'200, "over_cap"));
  EXPECT_EQ(a.totals.count(), 2u);
  EXPECT_EQ(a.totals.gaps(), 1u);
  EXPECT_EQ(a.condition.subject, "results_lost host=h1");
  EXPECT_THAT(a.condition.summary, HasSubstr("2 results lost on h1"));
  GapStep b = AddGap(a.totals, "h1", 9,
                     Gap(3, 1'700'000'000, 1'700'000'300, "spool_damaged"));
  EXPECT_EQ(b.totals.count(), 5u);
  EXPECT_EQ(b.totals.gaps(), 2u);
  EXPECT_EQ(b.totals.first_at_us(), 1'700'000'000'000'000);
  EXPECT_EQ(b.totals.last_at_us(), 1'700'000'300'000'000);
  EXPECT_TRUE(b.totals.bound()) << "a damaged spool's count is a bound";
  EXPECT_THAT(b.totals.reasons(), ElementsAre("over_cap", "spool_damaged"));
  EXPECT_THAT(b.condition.summary,
              HasSubstr("up to 5 results lost on h1 between 2023-11-14 22:13:20"
                        " and 2023-11-14 22:18:20 UTC in 2 gaps (over_cap, "
                        "spool_damaged)"));
  EXPECT_EQ(b.condition.details.at("count"), "5");
  ASSERT_EQ(b.condition.evidence.size(), 1u);
  EXPECT_EQ(b.condition.evidence[0].seq(), 9u);
  // The same reason again is listed once.
  GapStep c = AddGap(b.totals, "h1", 11,
                     Gap(1, 1'700'000'400, 1'700'000'400, "over_cap"));
  EXPECT_THAT(c.totals.reasons(), ElementsAre("over_cap", "spool_damaged"));
  EXPECT_EQ(c.totals.count(), 6u);
}

}  // namespace
}  // namespace netvigil::collector::rules
