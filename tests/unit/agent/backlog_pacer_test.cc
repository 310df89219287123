// The backlog pacer on a fake clock: old results drain at the set rate,
// fresh ones are never held, a result larger than the burst still goes.
#include "agent/backlog_pacer.h"

#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::FakeClock;

TEST(BacklogPacerTest, OldResultsDrainAtTheRate) {
  FakeClock clock(absl::FromUnixSeconds(1'800'000'000));
  BacklogPacer pacer(100'000, absl::Seconds(30), clock);
  const absl::Time old = clock.Now() - absl::Hours(2);
  const absl::Time start = clock.Now();
  for (int i = 0; i < 100; ++i) pacer.Pace(10'000, old);  // 1 MB
  // One second of burst, then 100 kB/s: 9 s more.
  EXPECT_NEAR(absl::ToDoubleSeconds(clock.Now() - start), 9.0, 0.2);
}

TEST(BacklogPacerTest, FreshResultsAreNeverHeld) {
  FakeClock clock(absl::FromUnixSeconds(1'800'000'000));
  BacklogPacer pacer(1'000, absl::Seconds(30), clock);
  const absl::Time start = clock.Now();
  for (int i = 0; i < 100; ++i) pacer.Pace(10'000, clock.Now());
  EXPECT_EQ(clock.Now(), start);
}

TEST(BacklogPacerTest, AResultLargerThanTheBurstStillGoes) {
  FakeClock clock(absl::FromUnixSeconds(1'800'000'000));
  BacklogPacer pacer(1'000, absl::Seconds(30), clock);
  const absl::Time old = clock.Now() - absl::Hours(1);
  pacer.Pace(1'000, old);  // empties the bucket
  const absl::Time start = clock.Now();
  pacer.Pace(50'000, old);
  EXPECT_NEAR(absl::ToDoubleSeconds(clock.Now() - start), 1.0, 0.05);
}

TEST(BacklogPacerTest, ZeroRateIsOff) {
  FakeClock clock(absl::FromUnixSeconds(1'800'000'000));
  BacklogPacer pacer(0, absl::Seconds(30), clock);
  const absl::Time start = clock.Now();
  for (int i = 0; i < 10; ++i) pacer.Pace(1 << 20, start - absl::Hours(1));
  EXPECT_EQ(clock.Now(), start);
}

}  // namespace
}  // namespace netvigil::agent
