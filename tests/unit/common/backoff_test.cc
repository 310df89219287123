#include "common/backoff.h"

#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace netvigil {
namespace {

TEST(BackoffTest, DoublesUpToTheCapWithJitterInTheUpperHalf) {
  double u = 0.0;
  Backoff b({absl::Milliseconds(500), absl::Seconds(30), 2.0},
            [&u] { return u; });
  // With u = 0 the delay is exactly half the ceiling.
  EXPECT_EQ(b.Next(), absl::Milliseconds(250));
  EXPECT_EQ(b.Next(), absl::Milliseconds(500));
  EXPECT_EQ(b.Next(), absl::Milliseconds(1000));
  u = 0.999999;
  const absl::Duration d = b.Next();  // ceiling 4 s
  EXPECT_GT(d, absl::Milliseconds(3990));
  EXPECT_LE(d, absl::Seconds(4));
  for (int i = 0; i < 100; ++i) b.Next();
  u = 1.0;
  EXPECT_EQ(b.Next(), absl::Seconds(30)) << "never above the cap";
}

TEST(BackoffTest, ResetStartsAgain) {
  Backoff b({absl::Seconds(1), absl::Seconds(8), 2.0}, [] { return 0.0; });
  b.Next();
  b.Next();
  b.Next();
  b.Reset();
  EXPECT_EQ(b.Next(), absl::Milliseconds(500));
}

TEST(BackoffTest, ScheduleOfAReconnectLoopOnAFakeClock) {
  // What an agent pointed at nothing does: wait, try, wait longer. The fake
  // clock records every sleep; the loop takes no real time.
  testing::FakeClock clock;
  const absl::Time start = clock.Now();
  Backoff b({absl::Milliseconds(500), absl::Seconds(30), 2.0},
            [] { return 0.5; });
  for (int attempt = 0; attempt < 10; ++attempt) clock.SleepFor(b.Next());
  const std::vector<absl::Duration> sleeps = clock.sleeps();
  ASSERT_EQ(sleeps.size(), 10u);
  const std::vector<absl::Duration> expected = {
      absl::Milliseconds(375),   absl::Milliseconds(750),
      absl::Milliseconds(1500),  absl::Milliseconds(3000),
      absl::Milliseconds(6000),  absl::Milliseconds(12000),
      absl::Milliseconds(22500), absl::Milliseconds(22500),
      absl::Milliseconds(22500), absl::Milliseconds(22500)};
  EXPECT_EQ(sleeps, expected);
  EXPECT_EQ(clock.Now() - start, absl::Milliseconds(113625));
  // No busy loop: after the first few attempts every wait is long.
  for (size_t i = 4; i < sleeps.size(); ++i)
    EXPECT_GE(sleeps[i], absl::Seconds(5));
}

TEST(BackoffTest, JitterSpreadsAgentsThatFailTogether) {
  // Two agents with different random draws do not retry in lock step.
  Backoff a({absl::Seconds(1), absl::Seconds(30), 2.0}, [] { return 0.1; });
  Backoff b({absl::Seconds(1), absl::Seconds(30), 2.0}, [] { return 0.9; });
  for (int i = 0; i < 5; ++i) EXPECT_NE(a.Next(), b.Next());
}

}  // namespace
}  // namespace netvigil
