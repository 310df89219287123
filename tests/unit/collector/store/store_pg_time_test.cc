// common/pg_time.h against a real PostgreSQL: the text and the epoch
// microseconds the store binds come back, through the expression it reads
// with, as the same microsecond, before 1970, at years 1 and 9999 and for
// the clamped infinite times; what an infinite time bound as microseconds
// becomes. Needs PostgreSQL (PgCluster).
#include <limits>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/pg_time.h"
#include "gtest/gtest.h"
#include "tests/testing/pg_cluster.h"

namespace netvigil {
namespace {

using ::netvigil::testing::PgCluster;

absl::Time Utc(int y, int mo, int d, int h, int mi, int s) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s),
                         absl::UTCTimeZone());
}

class StorePgTimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto c = PgCluster::Start();
    ASSERT_TRUE(c.ok()) << c.status();
    pg_.reset(*c);
  }
  static void TearDownTestSuite() { pg_.reset(); }

  // `expr` of one text parameter, read back as epoch microseconds.
  static int64_t Read(const std::string& expr, const std::string& param) {
    pqxx::connection c(pg_->dsn());
    pqxx::read_transaction tx(c);
    // A session TimeZone far from UTC: the text carries its own offset.
    tx.exec0("SET LOCAL TimeZone = 'Pacific/Kiritimati'");
    return tx
        .exec_params1(absl::StrCat("SELECT ", EpochMicrosSql(expr)), param)[0]
        .as<int64_t>();
  }

  static std::unique_ptr<PgCluster> pg_;
};

std::unique_ptr<PgCluster> StorePgTimeTest::pg_;

TEST_F(StorePgTimeTest, TextAndMicrosComeBackAsTheSameMicrosecond) {
  const std::vector<absl::Time> times = {
      absl::FromUnixMicros(1700000000123457),
      absl::UnixEpoch(),
      absl::FromUnixMicros(-1),
      Utc(1969, 7, 20, 20, 17, 40) - absl::Microseconds(3),
      Utc(1, 1, 1, 0, 0, 0),
      Utc(9999, 12, 31, 23, 59, 59) + absl::Microseconds(999999),
  };
  for (absl::Time t : times) {
    const int64_t us = ToEpochMicros(t);
    EXPECT_EQ(Read("$1::timestamptz", ToPgTimestamptz(t)), us)
        << ToPgTimestamptz(t);
    // to_timestamp() takes a double: exact to the microsecond from 1900 to
    // 2100, coarser far from 1970 (pg_time.h says how much).
    const int64_t back =
        Read("to_timestamp($1::bigint / 1e6)", absl::StrCat(us));
    if (t >= Utc(1900, 1, 1, 0, 0, 0) && t < Utc(2100, 1, 1, 0, 0, 0)) {
      EXPECT_EQ(back, us) << ToPgTimestamptz(t);
    } else {
      EXPECT_NEAR(back, us, 64) << ToPgTimestamptz(t);
    }
  }
}

TEST_F(StorePgTimeTest, InfiniteTimesAreClampedAsTextAndRefusedAsMicros) {
  EXPECT_EQ(Read("$1::timestamptz", ToPgTimestamptz(absl::InfiniteFuture())),
            ToEpochMicros(Utc(9999, 12, 31, 23, 59, 59)) + 999999);
  EXPECT_EQ(Read("$1::timestamptz", ToPgTimestamptz(absl::InfinitePast())),
            ToEpochMicros(Utc(1, 1, 1, 0, 0, 0)));
  // Bound as microseconds, the saturated past is out of PostgreSQL's range
  // and refused; the saturated future is not (timestamps reach 294276 AD):
  // it is stored as year 294247 and reads back within a millisecond of
  // INT64_MAX, far from any real time.
  EXPECT_THROW(Read("to_timestamp($1::bigint / 1e6)",
                    absl::StrCat(ToEpochMicros(absl::InfinitePast()))),
               pqxx::data_exception);
  const int64_t future =
      Read("to_timestamp($1::bigint / 1e6)",
           absl::StrCat(ToEpochMicros(absl::InfiniteFuture())));
  EXPECT_NEAR(static_cast<double>(future),
              static_cast<double>(std::numeric_limits<int64_t>::max()), 1e3);
}

}  // namespace
}  // namespace netvigil
