// Times and figures for people (human_text.h).
#include "common/report/human_text.h"

#include <string>

#include "absl/time/time.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace netvigil::report {
namespace {

using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp At(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

TEST(HumanTextTest, HumanAgo) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  EXPECT_EQ(HumanAgo(google::protobuf::Timestamp(), now), "never");
  EXPECT_EQ(HumanAgo(At(now - absl::Seconds(2)), now), "just now");
  EXPECT_EQ(HumanAgo(At(now - absl::Seconds(42)), now), "42 s ago");
  EXPECT_EQ(HumanAgo(At(now - absl::Minutes(3)), now), "3 min ago");
  EXPECT_EQ(HumanAgo(At(now - absl::Hours(5)), now), "5 h ago");
  EXPECT_EQ(HumanAgo(At(now - absl::Hours(72)), now), "3 days ago");
  EXPECT_EQ(HumanAgo(At(now + absl::Minutes(2)), now), "in 2 min");
}

TEST(HumanTextTest, Units) {
  EXPECT_EQ(HumanBitrate(940), "940 bit/s");
  EXPECT_EQ(HumanBitrate(94.1e6), "94.1 Mbit/s");
  EXPECT_EQ(HumanBitrate(17.6e9), "17.6 Gbit/s");
  EXPECT_EQ(Percent(12.5), "12.5%");
  EXPECT_EQ(Millis(0.421), "0.42 ms");
  EXPECT_EQ(Millis(12.34), "12.3 ms");
}

TEST(HumanTextTest, HumanizeDurationsRewritesAbslDurationsOnly) {
  EXPECT_EQ(HumanizeDurations("12 slots of 1m56.983384057s (max 1), the "
                              "23m23.8s left of period 30m0s."),
            "12 slots of 1m57s (max 1), the 23m24s left of period 30m.");
  EXPECT_EQ(HumanizeDurations("h1>h2 at 10s, 5 hosts"),
            "h1>h2 at 10s, 5 hosts");
  EXPECT_EQ(HumanizeDurations(""), "");
  EXPECT_EQ(HumanizeDurations("0 slots, 0.5 left"), "0 slots, 0.5 left");
}

TEST(HumanTextTest, AbsoluteTimeIsUtc) {
  EXPECT_EQ(AbsoluteTime(absl::FromUnixSeconds(1'800'000'000)),
            "2027-01-15 08:00:00 UTC");
  EXPECT_EQ(AbsoluteTime(google::protobuf::Timestamp()), "never");
}

}  // namespace
}  // namespace netvigil::report
