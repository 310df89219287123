// The enrollment throttle's buckets on a fake clock: a burst, then one
// attempt per refill interval; a success gives its attempt back; sources
// are told apart by address (IPv6 by /64) and many sources share one
// bucket once the table is full.
#include "collector/ingest/enroll_throttle.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using ::netvigil::testing::FakeClock;
using ::netvigil::testing::IsOk;
using ::netvigil::testing::StatusIs;

TEST(EnrollThrottleTest, BurstThenOnePerRefill) {
  FakeClock clock;
  EnrollThrottle t({/*burst=*/3, absl::Seconds(6)}, clock);
  for (int i = 0; i < 3; ++i) EXPECT_THAT(t.Admit("10.0.0.5"), IsOk());
  absl::Status s = t.Admit("10.0.0.5");
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("10.0.0.5"));
  clock.Advance(absl::Seconds(5));
  EXPECT_THAT(t.Admit("10.0.0.5"),
              StatusIs(absl::StatusCode::kResourceExhausted));
  clock.Advance(absl::Seconds(1));
  EXPECT_THAT(t.Admit("10.0.0.5"), IsOk());
  EXPECT_THAT(t.Admit("10.0.0.5"),
              StatusIs(absl::StatusCode::kResourceExhausted));
  // Another source is not slowed.
  EXPECT_THAT(t.Admit("10.0.0.6"), IsOk());
  // A long pause refills to the burst, not beyond.
  clock.Advance(absl::Hours(1));
  for (int i = 0; i < 3; ++i) EXPECT_THAT(t.Admit("10.0.0.5"), IsOk());
  EXPECT_FALSE(t.Admit("10.0.0.5").ok());
}

TEST(EnrollThrottleTest, SuccessGivesItsAttemptBack) {
  FakeClock clock;
  EnrollThrottle t({/*burst=*/2, absl::Seconds(6)}, clock);
  for (int i = 0; i < 10; ++i) {
    ASSERT_THAT(t.Admit("10.0.0.5"), IsOk()) << i;
    t.Refund("10.0.0.5");
  }
  EXPECT_THAT(t.Admit("10.0.0.5"), IsOk());
  t.CountFailure("10.0.0.5", absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(t.Admit("10.0.0.5"), IsOk());
  EXPECT_FALSE(t.Admit("10.0.0.5").ok());
  t.Flush(/*force=*/true);
}

TEST(EnrollThrottleTest, SourceOfGrpcPeers) {
  EXPECT_EQ(EnrollThrottle::SourceOf("ipv4:192.0.2.7:51234"), "192.0.2.7");
  EXPECT_EQ(EnrollThrottle::SourceOf("ipv6:[::ffff:192.0.2.7]:51234"),
            "192.0.2.7");
  EXPECT_EQ(EnrollThrottle::SourceOf("ipv6:[2001:db8:1:2:aa:bb:cc:dd]:443"),
            "2001:db8:1:2::/64");
  EXPECT_EQ(EnrollThrottle::SourceOf("ipv6:[2001:db8:1:2::99]:443"),
            "2001:db8:1:2::/64");
  EXPECT_EQ(EnrollThrottle::SourceOf("unix:/run/x.sock"), "local");
}

TEST(EnrollThrottleTest, ManySourcesShareOneBucketWhenTheTableIsFull) {
  FakeClock clock;
  EnrollThrottleOptions o;
  o.burst = 1;
  o.max_sources = 4;
  EnrollThrottle t(o, clock);
  for (int i = 0; i < 4; ++i) {
    ASSERT_THAT(t.Admit("10.0.0." + std::to_string(i)), IsOk());
  }
  // The table is full of empty buckets: newcomers share "other".
  EXPECT_THAT(t.Admit("10.0.1.1"), IsOk());
  EXPECT_FALSE(t.Admit("10.0.1.2").ok());
  EXPECT_FALSE(t.Admit("10.0.1.3").ok());
  // Once the old buckets refilled they are forgotten, and a newcomer gets
  // a bucket of its own again.
  clock.Advance(absl::Minutes(1));
  EXPECT_THAT(t.Admit("10.0.1.4"), IsOk());
}

}  // namespace
}  // namespace netvigil::collector
