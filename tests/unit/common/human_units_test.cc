#include "common/human_units.h"

#include <cmath>

#include "gtest/gtest.h"

namespace netvigil {
namespace {

TEST(HumanDurationTest, TwoUnitsAtMostNeverNanoseconds) {
  EXPECT_EQ(HumanDuration(absl::ZeroDuration()), "0s");
  EXPECT_EQ(HumanDuration(absl::Milliseconds(350)), "350ms");
  EXPECT_EQ(HumanDuration(absl::Milliseconds(4000)), "4s");
  EXPECT_EQ(HumanDuration(absl::Milliseconds(4240)), "4.2s");
  EXPECT_EQ(HumanDuration(absl::Nanoseconds(116'983'384'057)), "1m57s");
  EXPECT_EQ(HumanDuration(absl::Minutes(125)), "2h5m");
  EXPECT_EQ(HumanDuration(absl::Hours(76)), "3d4h");
  EXPECT_EQ(HumanDuration(absl::Hours(2)), "2h");
  EXPECT_EQ(HumanDuration(-absl::Seconds(90)), "-1m30s");
  EXPECT_EQ(HumanDuration(absl::InfiniteDuration()), "forever");
}

TEST(HumanBitrate3Test, ThreeSignificantDigits) {
  EXPECT_EQ(HumanBitrate3(940), "940 bit/s");
  EXPECT_EQ(HumanBitrate3(12'345), "12.3 kbit/s");
  EXPECT_EQ(HumanBitrate3(4.79e7), "47.9 Mbit/s");
  EXPECT_EQ(HumanBitrate3(1e9), "1.00 Gbit/s");
  EXPECT_EQ(HumanBitrate3(999.96e6), "1.00 Gbit/s");
  EXPECT_EQ(HumanBitrate3(17.64e9), "17.6 Gbit/s");
  EXPECT_EQ(HumanBitrate3(-1), "?");
  EXPECT_EQ(HumanBitrate3(std::nan("")), "?");
}

}  // namespace
}  // namespace netvigil
