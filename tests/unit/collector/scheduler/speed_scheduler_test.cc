// The speed scheduler's single behaviours with a fake clock: even spread,
// what a test carries, offline agents, a mesh that does not fit, a busy
// server retried once, a result that never comes.
#include "collector/scheduler/speed_scheduler.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using ::netvigil::testing::FakeClock;
using ::netvigil::testing::IsOk;
using ::netvigil::testing::StatusIs;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

std::vector<v1::AgentInfo> Agents(int n, int offline_from = 1 << 30) {
  std::vector<v1::AgentInfo> out;
  for (int i = 0; i < n; ++i) {
    v1::AgentInfo a;
    a.set_name(absl::StrCat("h", i));
    a.add_addresses(absl::StrCat("10.1.0.", i + 1));
    a.set_online(i < offline_from);
    out.push_back(a);
  }
  return out;
}

SpeedSchedulerOptions Options(absl::Duration period) {
  SpeedSchedulerOptions o;
  o.period = period;
  o.test_duration = absl::Seconds(10);
  o.slot = absl::Seconds(20);
  o.port = 5299;
  // The first period starts at the first Tick even with agents offline;
  // the wait after a restart is speed_scheduler_restart_test.cc's.
  o.startup_grace = absl::ZeroDuration();
  return o;
}

v1::SpeedResult Result(const ScheduledSpeedTest& t, v1::SpeedOutcome outcome,
                       const std::string& error = "") {
  v1::SpeedResult r;
  r.set_schedule_id(t.test.schedule_id());
  r.set_outcome(outcome);
  r.set_error(error);
  return r;
}

TEST(SpeedSchedulerTest, TestsAreSpreadEvenlyOverThePeriodOneAtATime) {
  FakeClock clock;
  SpeedScheduler s(Options(absl::Minutes(12)), clock);  // 3 agents: 6 tests
  s.SetAgents(Agents(3));
  const absl::Time t0 = clock.Now();
  std::vector<absl::Duration> offsets;
  for (int sec = 0; sec < 12 * 60; ++sec) {
    for (const ScheduledSpeedTest& t : s.Tick()) {
      offsets.push_back(clock.Now() - t0);
      clock.Advance(absl::Seconds(1));
      ASSERT_THAT(s.OnResult(Result(t, v1::SPEED_OUTCOME_OK)), IsOk());
      ++sec;
    }
    clock.Advance(absl::Seconds(1));
  }
  ASSERT_THAT(offsets, SizeIs(6));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(offsets[i], absl::Minutes(2) * i) << i;
  EXPECT_THAT(s.notices(), IsEmpty());
  EXPECT_THAT(s.TakeRecordedResults(), IsEmpty());
}

TEST(SpeedSchedulerTest, ATestCarriesItsPeerAddressPortAndDuration) {
  FakeClock clock;
  SpeedSchedulerOptions o = Options(absl::Hours(1));
  v1::ExternalSpeedTarget ext;
  ext.set_name("isp");
  ext.set_address("speed.isp.example");
  ext.set_port(9201);
  o.external_targets.push_back(ext);
  o.bitrate_bps = 100'000'000;
  SpeedScheduler s(o, clock);
  s.SetAgents(Agents(2));
  int peer = 0, external = 0;
  for (int i = 0; i < 3600; ++i) {
    for (const ScheduledSpeedTest& t : s.Tick()) {
      EXPECT_EQ(t.test.duration().seconds(), 10);
      EXPECT_EQ(t.test.bitrate_bps(), 100'000'000u);
      EXPECT_TRUE(absl::StartsWith(t.test.schedule_id(), "speed-"))
          << t.test.schedule_id();
      if (!t.test.external_target().empty()) {
        ++external;
        EXPECT_EQ(t.test.external_target(), "isp");
        EXPECT_EQ(t.test.address(), "speed.isp.example");
        EXPECT_EQ(t.test.port(), 9201u);
      } else {
        ++peer;
        EXPECT_NE(t.test.peer_agent(), t.client);
        EXPECT_EQ(t.test.address(),
                  t.test.peer_agent() == "h0" ? "10.1.0.1" : "10.1.0.2");
        EXPECT_EQ(t.test.port(), 5299u);
      }
      EXPECT_THAT(s.OnResult(Result(t, v1::SPEED_OUTCOME_OK)), IsOk());
    }
    clock.Advance(absl::Seconds(1));
  }
  EXPECT_EQ(peer, 2);
  EXPECT_EQ(external, 2);
}

// Runs the scheduler to `until`, answering every test OK after 1 s, and
// returns what it recorded itself.
std::vector<v1::SpeedResult> RunUntil(SpeedScheduler& s, FakeClock& clock,
                                      absl::Time until) {
  std::vector<v1::SpeedResult> out;
  while (clock.Now() < until) {
    for (const ScheduledSpeedTest& t : s.Tick()) {
      EXPECT_THAT(s.OnResult(Result(t, v1::SPEED_OUTCOME_OK)), IsOk());
    }
    for (v1::SpeedResult& r : s.TakeRecordedResults()) out.push_back(r);
    clock.Advance(absl::Seconds(1));
  }
  return out;
}

TEST(SpeedSchedulerTest,
     OfflineAgentsTestsAreRecordedAsSkippedAtThePeriodsEnd) {
  FakeClock clock;
  SpeedScheduler s(Options(absl::Hours(1)), clock);
  s.SetAgents(Agents(4, /*offline_from=*/3));  // h3 offline
  const absl::Time t0 = clock.Now();
  // Not at the start: h3 may still come back within the period.
  EXPECT_THAT(RunUntil(s, clock, t0 + absl::Seconds(1)), IsEmpty());
  EXPECT_EQ(s.stats().planned, 6);  // the online three's mesh
  std::vector<v1::SpeedResult> recorded =
      RunUntil(s, clock, t0 + absl::Hours(1) + absl::Seconds(1));
  ASSERT_THAT(recorded, SizeIs(6));  // h3 -> 3 others, 3 others -> h3
  for (const v1::SpeedResult& r : recorded) {
    EXPECT_EQ(r.outcome(), v1::SPEED_OUTCOME_SKIPPED);
    EXPECT_EQ(r.error(), "agent h3 offline");
    EXPECT_TRUE(r.client() == "h3" || r.server() == "h3");
    EXPECT_FALSE(r.schedule_id().empty());
  }
  EXPECT_THAT(s.TakeRecordedResults(), IsEmpty());  // each returned once
}

TEST(SpeedSchedulerTest, AnAgentLeavingMidPeriodHasItsPendingTestsSkipped) {
  FakeClock clock;
  SpeedScheduler s(Options(absl::Hours(1)), clock);
  s.SetAgents(Agents(3));
  const absl::Time t0 = clock.Now();
  std::vector<ScheduledSpeedTest> first = s.Tick();
  ASSERT_THAT(first, SizeIs(1));  // the first test runs now
  ASSERT_THAT(s.OnResult(Result(first[0], v1::SPEED_OUTCOME_OK)), IsOk());
  std::vector<v1::AgentInfo> agents = Agents(3);
  agents[2].set_online(false);
  s.SetAgents(agents);
  EXPECT_THAT(s.TakeRecordedResults(), IsEmpty());
  int skipped = 0;
  for (const v1::SpeedResult& r :
       RunUntil(s, clock, t0 + absl::Hours(1) + absl::Seconds(1))) {
    EXPECT_EQ(r.error(), "agent h2 offline");
    ++skipped;
  }
  EXPECT_GE(skipped, 3);  // 4 tests involve h2, the first may have been one
  EXPECT_LE(skipped, 4);
}

TEST(SpeedSchedulerTest, AnAgentBackWithinThePeriodLeavesNoSkip) {
  FakeClock clock;
  SpeedScheduler s(Options(absl::Hours(1)), clock);
  s.SetAgents(Agents(3));
  const absl::Time t0 = clock.Now();
  std::vector<v1::AgentInfo> agents = Agents(3);
  agents[2].set_online(false);
  // h2 away for ten minutes (a reboot), back well before the period ends.
  std::vector<v1::SpeedResult> recorded =
      RunUntil(s, clock, t0 + absl::Minutes(1));
  s.SetAgents(agents);
  for (auto& r : RunUntil(s, clock, t0 + absl::Minutes(11))) {
    recorded.push_back(r);
  }
  s.SetAgents(Agents(3));
  for (auto& r : RunUntil(s, clock, t0 + absl::Hours(1) + absl::Seconds(1))) {
    recorded.push_back(r);
  }
  EXPECT_THAT(recorded, IsEmpty())
      << recorded.front().client() << "->" << recorded.front().server() << ": "
      << recorded.front().error();
  EXPECT_EQ(s.stats().period, 2);
}

TEST(SpeedSchedulerTest, AMeshThatDoesNotFitIsReportedAndTheRestRecorded) {
  FakeClock clock;
  SpeedScheduler s(Options(absl::Minutes(10)), clock);  // 30 slots
  s.SetAgents(Agents(10));                              // 90 tests
  s.Tick();
  ASSERT_THAT(s.notices(), SizeIs(1));
  EXPECT_THAT(s.notices()[0], HasSubstr("does not fit its period"));
  EXPECT_THAT(s.notices()[0], HasSubstr("90 tests need 90 slots"));
  EXPECT_THAT(s.notices()[0], HasSubstr("has 30"));
  std::vector<v1::SpeedResult> recorded = s.TakeRecordedResults();
  EXPECT_THAT(recorded, SizeIs(60));
  EXPECT_THAT(recorded[0].error(), HasSubstr("mesh did not fit its period"));
  EXPECT_EQ(s.stats().pending + s.stats().running, 30);
}

TEST(SpeedSchedulerTest, ConcurrencyPacksHostDisjointRounds) {
  FakeClock clock;
  SpeedSchedulerOptions o = Options(absl::Minutes(10));
  o.max_concurrent = 2;
  SpeedScheduler s(o, clock);
  s.SetAgents(Agents(4));  // 12 tests in 6 rounds of 2
  std::vector<ScheduledSpeedTest> first = s.Tick();
  ASSERT_THAT(first, SizeIs(2));
  std::set<std::string> hosts = {first[0].client, first[0].test.peer_agent(),
                                 first[1].client, first[1].test.peer_agent()};
  EXPECT_EQ(hosts.size(), 4u);
  EXPECT_EQ(s.stats().rounds, 6);
  EXPECT_THAT(s.notices(), IsEmpty());
}

TEST(SpeedSchedulerTest, ABusyServerIsRetriedOnceLaterInThePeriod) {
  FakeClock clock;
  SpeedSchedulerOptions o = Options(absl::Hours(1));
  o.busy_retry_delay = absl::Minutes(5);
  SpeedScheduler s(o, clock);
  s.SetAgents(Agents(2));
  std::vector<ScheduledSpeedTest> t = s.Tick();
  ASSERT_THAT(t, SizeIs(1));
  const ScheduledSpeedTest busy = t[0];
  clock.Advance(absl::Seconds(2));
  ASSERT_THAT(
      s.OnResult(Result(busy, v1::SPEED_OUTCOME_FAILED,
                        "server busy: the server is busy running a test")),
      IsOk());
  // The retry is due five minutes later, after the other pair's test.
  std::vector<ScheduledSpeedTest> all;
  absl::Time retry_at;
  for (int i = 0; i < 3600; ++i) {
    clock.Advance(absl::Seconds(1));
    for (const ScheduledSpeedTest& x : s.Tick()) {
      all.push_back(x);
      if (x.client == busy.client) retry_at = clock.Now();
      // The retry is busy again: no third attempt.
      EXPECT_THAT(
          s.OnResult(Result(x,
                            x.client == busy.client ? v1::SPEED_OUTCOME_FAILED
                                                    : v1::SPEED_OUTCOME_OK,
                            "server busy: still")),
          IsOk());
    }
  }
  // The retry, the other pair, and the first test of period 2.
  ASSERT_THAT(all, SizeIs(3));
  EXPECT_TRUE(absl::EndsWith(all[0].test.schedule_id(), "-r"));
  EXPECT_EQ(retry_at - absl::Seconds(2),
            absl::FromUnixSeconds(1'700'000'000) + absl::Minutes(5));
  int retries = 0;
  for (const ScheduledSpeedTest& x : all) {
    if (absl::EndsWith(x.test.schedule_id(), "-r")) {
      ++retries;
      EXPECT_EQ(x.client, busy.client);
      EXPECT_EQ(x.test.peer_agent(), busy.test.peer_agent());
    }
  }
  EXPECT_EQ(retries, 1);
}

TEST(SpeedSchedulerTest, ARefusedTestIsNotRetried) {
  FakeClock clock;
  SpeedScheduler s(Options(absl::Minutes(2)), clock);
  s.SetAgents(Agents(2));
  std::vector<ScheduledSpeedTest> t = s.Tick();
  ASSERT_THAT(t, SizeIs(1));
  ASSERT_THAT(s.OnResult(Result(t[0], v1::SPEED_OUTCOME_FAILED,
                                "connection refused: x")),
              IsOk());
  EXPECT_EQ(s.stats().planned, 2);
}

TEST(SpeedSchedulerTest, AResultThatNeverComesIsRecordedAndFreesTheHosts) {
  FakeClock clock;
  SpeedSchedulerOptions o = Options(absl::Hours(1));
  o.result_timeout = absl::Minutes(2);
  SpeedScheduler s(o, clock);
  s.SetAgents(Agents(2));
  std::vector<ScheduledSpeedTest> t = s.Tick();
  ASSERT_THAT(t, SizeIs(1));
  EXPECT_EQ(s.NextWakeup(),
            clock.Now() + absl::Minutes(2));  // next test at 30 min
  clock.Advance(absl::Minutes(2));
  EXPECT_THAT(s.Tick(), IsEmpty());
  std::vector<v1::SpeedResult> recorded = s.TakeRecordedResults();
  ASSERT_THAT(recorded, SizeIs(1));
  EXPECT_EQ(recorded[0].outcome(), v1::SPEED_OUTCOME_FAILED);
  EXPECT_THAT(recorded[0].error(), HasSubstr("no result from agent"));
  EXPECT_EQ(recorded[0].schedule_id(), t[0].test.schedule_id());
  // A late result is not counted twice.
  EXPECT_THAT(s.OnResult(Result(t[0], v1::SPEED_OUTCOME_OK)),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(s.stats().running, 0);
}

TEST(SpeedSchedulerTest, PendingTestsAtThePeriodsEndAreCutWithANotice) {
  FakeClock clock;
  SpeedScheduler s(Options(absl::Minutes(2)), clock);  // 6 slots, 6 tests
  s.SetAgents(Agents(3));
  std::vector<ScheduledSpeedTest> t = s.Tick();
  ASSERT_THAT(t, SizeIs(1));
  // The first test runs the whole period: nothing else can start.
  clock.Advance(absl::Minutes(2));
  ASSERT_THAT(s.OnResult(Result(t[0], v1::SPEED_OUTCOME_OK)), IsOk());
  s.Tick();  // period 2 begins
  EXPECT_EQ(s.stats().period, 2);
  EXPECT_THAT(s.notices(), Contains(HasSubstr("period 1 ended with")));
  int cut = 0;
  for (const v1::SpeedResult& r : s.TakeRecordedResults()) {
    cut += absl::StartsWith(r.error(), "period ended") ? 1 : 0;
  }
  EXPECT_GE(cut, 4);
}

TEST(SpeedSchedulerTest, UnknownScheduleIdIsNotFound) {
  FakeClock clock;
  SpeedScheduler s(Options(absl::Hours(1)), clock);
  v1::SpeedResult r;
  r.set_schedule_id("speed-1-2");
  EXPECT_THAT(s.OnResult(r), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(s.NextWakeup(), absl::InfiniteFuture());
}

}  // namespace
}  // namespace netvigil::collector
