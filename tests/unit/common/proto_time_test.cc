#include "common/proto_time.h"

#include <cstdint>
#include <limits>

#include "gtest/gtest.h"

namespace netvigil {
namespace {

google::protobuf::Timestamp Ts(int64_t s, int32_t n) {
  google::protobuf::Timestamp t;
  t.set_seconds(s);
  t.set_nanos(n);
  return t;
}

google::protobuf::Duration Dur(int64_t s, int32_t n) {
  google::protobuf::Duration d;
  d.set_seconds(s);
  d.set_nanos(n);
  return d;
}

constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();

TEST(ProtoTimeTest, ValidTimestampBounds) {
  EXPECT_TRUE(IsValidTimestamp(Ts(0, 0)));
  EXPECT_TRUE(IsValidTimestamp(Ts(253402300799, 999999999)));
  EXPECT_TRUE(IsValidTimestamp(Ts(-62135596800, 0)));
  EXPECT_FALSE(IsValidTimestamp(Ts(253402300800, 0)));
  EXPECT_FALSE(IsValidTimestamp(Ts(-62135596801, 0)));
  EXPECT_FALSE(IsValidTimestamp(Ts(0, -1)));
  EXPECT_FALSE(IsValidTimestamp(Ts(0, 1000000000)));
}

TEST(ProtoTimeTest, ValidDurationSignsAgree) {
  EXPECT_TRUE(IsValidDuration(Dur(1, 5)));
  EXPECT_TRUE(IsValidDuration(Dur(-1, -5)));
  EXPECT_TRUE(IsValidDuration(Dur(0, -5)));
  EXPECT_FALSE(IsValidDuration(Dur(1, -5)));
  EXPECT_FALSE(IsValidDuration(Dur(-1, 5)));
  EXPECT_FALSE(IsValidDuration(Dur(315576000001, 0)));
  EXPECT_FALSE(IsValidDuration(Dur(0, 1000000000)));
}

TEST(ProtoTimeTest, FromProtoTimeIsExactInRange) {
  EXPECT_EQ(FromProtoTime(Ts(1700000000, 250)),
            absl::FromUnixSeconds(1700000000) + absl::Nanoseconds(250));
  EXPECT_EQ(FromProtoDuration(Dur(-3, -500000000)), absl::Milliseconds(-3500));
}

// The inputs protobuf's TimeUtil throws on or overflows with: these give an
// ordered, comparable time instead (run under UBSan in the fuzz build).
TEST(ProtoTimeTest, ExtremesSaturateWithoutOverflow) {
  EXPECT_GT(FromProtoTime(Ts(kI64Max, 999999999)),
            absl::FromUnixSeconds(253402300799));
  EXPECT_LT(FromProtoTime(Ts(kI64Min, -999999999)),
            absl::FromUnixSeconds(-62135596800));
  EXPECT_GT(FromProtoDuration(Dur(kI64Max, 0)), absl::Hours(1e6));
  EXPECT_LT(FromProtoDuration(Dur(kI64Min, 0)), -absl::Hours(1e6));
}

TEST(ProtoTimeTest, ToProtoTimeRoundTripsAndClamps) {
  const absl::Time t = absl::FromUnixNanos(1700000000123456789);
  EXPECT_EQ(FromProtoTime(ToProtoTime(t)), t);
  // Before 1970 the nanos stay non-negative.
  const google::protobuf::Timestamp before =
      ToProtoTime(absl::FromUnixMillis(-1500));
  EXPECT_EQ(before.seconds(), -2);
  EXPECT_EQ(before.nanos(), 500000000);
  EXPECT_TRUE(IsValidTimestamp(ToProtoTime(absl::InfiniteFuture())));
  EXPECT_TRUE(IsValidTimestamp(ToProtoTime(absl::InfinitePast())));
}

TEST(ProtoTimeTest, ToProtoDurationRoundTripsAndClamps) {
  EXPECT_EQ(FromProtoDuration(ToProtoDuration(absl::Milliseconds(-2500))),
            absl::Milliseconds(-2500));
  const google::protobuf::Duration neg =
      ToProtoDuration(absl::Milliseconds(-2500));
  EXPECT_TRUE(IsValidDuration(neg));
  EXPECT_TRUE(IsValidDuration(ToProtoDuration(absl::InfiniteDuration())));
  EXPECT_TRUE(IsValidDuration(ToProtoDuration(-absl::InfiniteDuration())));
}

}  // namespace
}  // namespace netvigil
