// The speed scheduler after a collector restart and with its default slot:
// the first period waits for the agents to reconnect (no period of "agent
// offline" cells for agents that were back in seconds), the wait is bounded,
// and the default slot lets a five-host home's mesh fit the default period
// and a five-minute one, while a mesh that really overflows is still
// reported. Fake clock, no network.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/scheduler/speed_scheduler.h"
#include "common/collector_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using ::netvigil::testing::FakeClock;
using ::netvigil::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

std::vector<v1::AgentInfo> Agents(int n, int online_below) {
  std::vector<v1::AgentInfo> out;
  for (int i = 0; i < n; ++i) {
    v1::AgentInfo a;
    a.set_name(absl::StrCat("h", i + 1));
    a.add_addresses(absl::StrCat("10.1.0.", i + 1));
    a.set_online(i < online_below);
    out.push_back(a);
  }
  return out;
}

// The scheduler options the collector builds from a config with every
// default (collector/collector.cc).
SpeedSchedulerOptions FromDefaultConfig() {
  const CollectorConfig c = DefaultCollectorConfig();
  SpeedSchedulerOptions o;
  o.period = c.speed_period;
  o.test_duration = c.speed_test_duration;
  o.slot_overhead = c.speed_slot_overhead;
  o.max_concurrent = c.max_concurrent_speed_tests;
  o.port = c.speed_port;
  return o;
}

struct Outcome {
  int ran = 0;
  std::vector<v1::SpeedResult> recorded;
};

// Ticks every `step` until `until`; each test takes `run` and then answers
// OK. `agents_at` says who is online at a given time.
template <typename F>
Outcome Simulate(SpeedScheduler& s, FakeClock& clock, absl::Time until,
                 absl::Duration run, F agents_at,
                 absl::Duration step = absl::Milliseconds(500)) {
  Outcome out;
  std::vector<std::pair<absl::Time, ScheduledSpeedTest>> running;
  while (clock.Now() < until) {
    s.SetAgents(agents_at(clock.Now()));
    for (auto it = running.begin(); it != running.end();) {
      if (it->first > clock.Now()) {
        ++it;
        continue;
      }
      v1::SpeedResult r;
      r.set_schedule_id(it->second.test.schedule_id());
      r.set_outcome(v1::SPEED_OUTCOME_OK);
      EXPECT_THAT(s.OnResult(r), IsOk());
      ++out.ran;
      it = running.erase(it);
    }
    for (ScheduledSpeedTest& t : s.Tick()) {
      running.emplace_back(clock.Now() + run, std::move(t));
    }
    for (v1::SpeedResult& r : s.TakeRecordedResults()) {
      out.recorded.push_back(std::move(r));
    }
    clock.Advance(step);
  }
  return out;
}

std::string Describe(const std::vector<v1::SpeedResult>& rs) {
  std::string out;
  for (const auto& r : rs) {
    absl::StrAppend(&out, r.client(), "->", r.server(), " ",
                    v1::SpeedOutcome_Name(r.outcome()), " ", r.error(), "\n");
  }
  return out;
}

// Five agents known from the database, all offline at the restart; they
// reconnect 2 to 6 s later, as agents in backoff do. Before, the first
// period was planned at once with everyone offline: 20 tests recorded as
// "skipped: agent hN offline", which the matrix showed until each pair came
// round again.
TEST(SpeedSchedulerRestartTest, TheFirstPeriodWaitsForAgentsToReconnect) {
  FakeClock clock;
  SpeedScheduler s(FromDefaultConfig(), clock);
  const absl::Time t0 = clock.Now();
  auto agents_at = [&](absl::Time now) {
    const int back = static_cast<int>(absl::ToInt64Seconds(now - t0)) - 1;
    return Agents(5, std::max(0, std::min(5, back)));
  };
  Outcome o =
      Simulate(s, clock, t0 + absl::Seconds(5), absl::Seconds(10), agents_at);
  EXPECT_EQ(s.stats().period, 0) << "no period while agents reconnect";
  EXPECT_EQ(o.ran, 0);
  EXPECT_THAT(o.recorded, IsEmpty()) << Describe(o.recorded);
  Outcome rest = Simulate(s, clock, t0 + absl::Hours(1) + absl::Seconds(10),
                          absl::Milliseconds(10500), agents_at);
  EXPECT_EQ(rest.ran, 20) << "the whole mesh of 5 hosts in the first period";
  EXPECT_THAT(rest.recorded, IsEmpty()) << Describe(rest.recorded);
  EXPECT_THAT(s.notices(), IsEmpty());
  EXPECT_EQ(s.stats().period, 2);
}

TEST(SpeedSchedulerRestartTest, TheWaitIsBoundedByTheGrace) {
  FakeClock clock;
  SpeedSchedulerOptions opts = FromDefaultConfig();
  opts.startup_grace = absl::Seconds(45);
  SpeedScheduler s(opts, clock);
  const absl::Time t0 = clock.Now();
  // h5 stays away (a laptop that is off).
  auto agents_at = [](absl::Time) { return Agents(5, 4); };
  Simulate(s, clock, t0 + absl::Seconds(44), absl::Seconds(10), agents_at);
  EXPECT_EQ(s.stats().period, 0);
  EXPECT_EQ(s.NextWakeup(), t0 + absl::Seconds(45));
  // The first period starts when the grace is over, without h5; h5's 8
  // pairs are recorded at the period's end, once.
  Outcome o = Simulate(
      s, clock, t0 + absl::Seconds(45) + absl::Hours(1) + absl::Seconds(1),
      absl::Seconds(10), agents_at);
  EXPECT_EQ(s.stats().period, 2);
  EXPECT_EQ(s.stats().period_start, t0 + absl::Seconds(45) + absl::Hours(1));
  EXPECT_EQ(s.stats().planned, 12) << "the four online hosts' mesh";
  EXPECT_EQ(o.ran, 12);
  ASSERT_THAT(o.recorded, SizeIs(8)) << Describe(o.recorded);
  for (const auto& r : o.recorded) {
    EXPECT_EQ(r.outcome(), v1::SPEED_OUTCOME_SKIPPED);
    EXPECT_EQ(r.error(), "agent h5 offline");
  }
}

TEST(SpeedSchedulerRestartTest, AFirstStartWithNoKnownAgentDoesNotWait) {
  FakeClock clock;
  SpeedScheduler s(FromDefaultConfig(), clock);
  s.SetAgents({});
  s.Tick();
  EXPECT_EQ(s.stats().period, 1);
}

TEST(SpeedSchedulerRestartTest, DefaultSlotIsDurationPlusThreeSeconds) {
  const SpeedSchedulerOptions o = FromDefaultConfig();
  EXPECT_EQ(o.test_duration + o.slot_overhead, absl::Seconds(13));
}

// 20 ordered pairs at 13 s fit the default hour and a five-minute period
// (before, a fixed 10 s margin made each slot 20 s: 400 s, not in 5 min).
TEST(SpeedSchedulerRestartTest,
     AFiveHostMeshFitsTheDefaultAndAFiveMinutePeriod) {
  for (absl::Duration period : {absl::Hours(1), absl::Minutes(5)}) {
    SCOPED_TRACE(absl::FormatDuration(period));
    FakeClock clock;
    SpeedSchedulerOptions opts = FromDefaultConfig();
    opts.period = period;
    SpeedScheduler s(opts, clock);
    const absl::Time t0 = clock.Now();
    // Each test takes its 10 s and half a second more, as on a LAN.
    Outcome o = Simulate(s, clock, t0 + period + absl::Seconds(1),
                         absl::Milliseconds(10500),
                         [](absl::Time) { return Agents(5, 5); });
    EXPECT_THAT(s.notices(), IsEmpty());
    EXPECT_EQ(o.ran, 20);
    EXPECT_THAT(o.recorded, IsEmpty()) << Describe(o.recorded);
  }
}

TEST(SpeedSchedulerRestartTest, ARealOverflowIsStillReported) {
  FakeClock clock;
  SpeedSchedulerOptions opts = FromDefaultConfig();
  opts.period = absl::Minutes(4);  // 18 slots of 13 s for 20 tests
  SpeedScheduler s(opts, clock);
  s.SetAgents(Agents(5, 5));
  s.Tick();
  ASSERT_THAT(s.notices(), SizeIs(1));
  EXPECT_THAT(s.notices()[0], HasSubstr("20 tests need 20 slots of 13s"));
  EXPECT_THAT(s.notices()[0], HasSubstr("has 18"));
  std::vector<v1::SpeedResult> recorded = s.TakeRecordedResults();
  ASSERT_THAT(recorded, SizeIs(2));
  EXPECT_THAT(recorded[0].error(), HasSubstr("mesh did not fit its period"));
}

TEST(SpeedSchedulerRestartTest, TheOverheadIsWhatTheConfigSays) {
  FakeClock clock;
  SpeedSchedulerOptions opts = FromDefaultConfig();
  opts.period = absl::Minutes(4);
  opts.slot_overhead = absl::Seconds(1);  // 11 s slots: 21 fit in 4 min
  SpeedScheduler s(opts, clock);
  s.SetAgents(Agents(5, 5));
  s.Tick();
  EXPECT_THAT(s.notices(), IsEmpty());
  EXPECT_EQ(s.stats().capacity, 21);
}

}  // namespace
}  // namespace netvigil::collector
