// Times as the store binds and reads them (common/pg_time.h): epoch
// microseconds and timestamptz text at the infinite past and future, before
// 1970, at protobuf's ends and past int64's.
#include "common/pg_time.h"

#include <cstdint>
#include <limits>

#include "gtest/gtest.h"

namespace netvigil {
namespace {

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

google::protobuf::Timestamp Ts(int64_t s, int32_t n) {
  google::protobuf::Timestamp t;
  t.set_seconds(s);
  t.set_nanos(n);
  return t;
}

absl::Time Utc(int y, int mo, int d, int h, int mi, int s) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s),
                         absl::UTCTimeZone());
}

TEST(PgTimeTest, EpochMicrosRoundDownOnBothSidesOf1970) {
  EXPECT_EQ(ToEpochMicros(absl::UnixEpoch()), 0);
  EXPECT_EQ(ToEpochMicros(absl::FromUnixNanos(1999)), 1);
  EXPECT_EQ(ToEpochMicros(absl::FromUnixNanos(-1)), -1);
  EXPECT_EQ(ToEpochMicros(absl::FromUnixNanos(-1001)), -2);
  EXPECT_EQ(ToEpochMicros(Utc(1969, 7, 20, 20, 17, 40)), -14182940000000);
  EXPECT_EQ(FromEpochMicros(-14182940000000), Utc(1969, 7, 20, 20, 17, 40));
  EXPECT_EQ(FromEpochMicros(1700000000123456),
            absl::FromUnixMicros(1700000000123456));
}

TEST(PgTimeTest, InfiniteTimesSaturateAndComeBack) {
  EXPECT_EQ(ToEpochMicros(absl::InfiniteFuture()), kMax);
  EXPECT_EQ(ToEpochMicros(absl::InfinitePast()), kMin);
  EXPECT_EQ(FromEpochMicros(kMax), absl::InfiniteFuture());
  EXPECT_EQ(FromEpochMicros(kMin), absl::InfinitePast());
  // Finite but past int64 microseconds (absl::Time reaches much further).
  EXPECT_EQ(ToEpochMicros(absl::FromUnixSeconds(kMax / 1000)), kMax);
  EXPECT_EQ(ToEpochMicros(absl::FromUnixSeconds(kMin / 1000)), kMin);
}

TEST(PgTimeTest, ProtoTimestampsOfAnyValueConvertWithoutOverflow) {
  EXPECT_EQ(ProtoTimeToEpochMicros(Ts(1700000000, 123456789)),
            1700000000123456);
  EXPECT_EQ(ProtoTimeToEpochMicros(Ts(-1, 999999000)), -1);
  EXPECT_EQ(ProtoTimeToEpochMicros(Ts(-2, 1)), -2000000) << "rounded down";
  // TimeUtil would multiply these past int64.
  EXPECT_EQ(ProtoTimeToEpochMicros(Ts(kMax, 999999999)), kMax);
  EXPECT_EQ(ProtoTimeToEpochMicros(Ts(kMin, 0)), kMin);
  EXPECT_EQ(EpochMicrosToProtoTime(-1).seconds(), -1);
  EXPECT_EQ(EpochMicrosToProtoTime(-1).nanos(), 999999000);
  // Clamped to protobuf's 0001..9999, as ToProtoTime does.
  EXPECT_EQ(EpochMicrosToProtoTime(kMax).seconds(), 253402300799);
  EXPECT_EQ(EpochMicrosToProtoTime(kMin).seconds(), -62135596800);
}

TEST(PgTimeTest, TimestamptzTextToTheMicrosecond) {
  EXPECT_EQ(ToPgTimestamptz(absl::FromUnixMicros(1700000000123456)),
            "2023-11-14 22:13:20.123456+00");
  EXPECT_EQ(ToPgTimestamptz(absl::UnixEpoch()),
            "1970-01-01 00:00:00.000000+00");
  // Before 1970 the fraction still counts forward within its second, and
  // the text agrees with ToEpochMicros's rounding down.
  EXPECT_EQ(ToPgTimestamptz(absl::FromUnixNanos(-1)),
            "1969-12-31 23:59:59.999999+00");
  EXPECT_EQ(ToPgTimestamptz(FromEpochMicros(-14182940000001)),
            "1969-07-20 20:17:39.999999+00");
  EXPECT_EQ(ToPgTimestamptz(Utc(5, 3, 1, 0, 0, 0)),
            "0005-03-01 00:00:00.000000+00")
      << "four-digit years, as PostgreSQL's ISO input wants them";
}

TEST(PgTimeTest, TimestamptzTextIsClampedNeverInfinity) {
  EXPECT_EQ(ToPgTimestamptz(absl::InfiniteFuture()),
            "9999-12-31 23:59:59.999999+00");
  EXPECT_EQ(ToPgTimestamptz(absl::InfinitePast()),
            "0001-01-01 00:00:00.000000+00");
  EXPECT_EQ(ToPgTimestamptz(Utc(12000, 1, 1, 0, 0, 0)),
            "9999-12-31 23:59:59.999999+00");
  EXPECT_EQ(ToPgTimestamptz(Utc(-40, 1, 1, 0, 0, 0)),
            "0001-01-01 00:00:00.000000+00");
}

TEST(PgTimeTest, TheReadingExpression) {
  EXPECT_EQ(EpochMicrosSql("p.started_at"),
            "(extract(epoch FROM p.started_at) * 1e6)::bigint");
}

}  // namespace
}  // namespace netvigil
