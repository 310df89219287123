// Property tests of the speed scheduler with a fake clock: many seeded random
// LANs (agent counts, external targets, concurrency limits, test durations,
// joins and leaves mid-period) simulated second by second. Whatever happens:
// no host is ever in two tests at once, the global limit holds, and every
// planned test is accounted for exactly once per period (run, or skipped
// with a reason); when the mesh fits and nobody leaves, every pair runs.
#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "collector/scheduler/speed_scheduler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace netvigil::collector {
namespace {

using ::netvigil::testing::FakeClock;

struct Running {
  std::string client;
  std::string server;  // "x:" prefix for external targets
  absl::Time end;
  bool deliver = true;  // false: the client vanished, its result is lost
  v1::SpeedResult result;
};

class Sim {
 public:
  Sim(uint64_t seed, int agents, int externals, uint32_t max_concurrent,
      absl::Duration period, absl::Duration max_run)
      : rng_(seed), max_run_(max_run) {
    opts_.period = period;
    opts_.test_duration = absl::Seconds(10);
    opts_.slot = absl::Seconds(20);
    opts_.max_concurrent = max_concurrent;
    opts_.port = 5201;
    for (int x = 0; x < externals; ++x) {
      v1::ExternalSpeedTarget t;
      t.set_name(absl::StrCat("ext", x));
      t.set_address(absl::StrCat("ext", x, ".example"));
      t.set_port(5201);
      opts_.external_targets.push_back(t);
    }
    sched_ = std::make_unique<SpeedScheduler>(opts_, clock_);
    for (int a = 0; a < agents; ++a) online_[absl::StrCat("agent", a)] = true;
    Publish();
  }

  void Publish() {
    std::vector<v1::AgentInfo> list;
    for (const auto& [name, up] : online_) {
      v1::AgentInfo info;
      info.set_name(name);
      info.add_addresses(absl::StrCat("10.0.0.", list.size() + 1));
      info.set_online(up);
      list.push_back(info);
      addresses_[name] = info.addresses(0);
    }
    sched_->SetAgents(list);
  }

  // One simulated second: deliver results that are due, then Tick.
  void Step() {
    clock_.Advance(absl::Seconds(1));
    const absl::Time now = clock_.Now();
    for (auto it = running_.begin(); it != running_.end();) {
      if (it->second.end > now) {
        ++it;
        continue;
      }
      if (it->second.deliver) {
        const int64_t p = period_of_.at(it->first);
        if (it->second.result.outcome() == v1::SPEED_OUTCOME_OK) {
          ++ok_[p][{it->second.client, it->second.server}];
        }
        ASSERT_TRUE(sched_->OnResult(it->second.result).ok()) << it->first;
      }
      it = running_.erase(it);
    }
    std::vector<ScheduledSpeedTest> started = sched_->Tick();
    const SpeedScheduler::Stats stats = sched_->stats();
    period_by_start_[absl::ToUnixSeconds(stats.period_start)] = stats.period;
    for (ScheduledSpeedTest& st : started) Start(std::move(st), stats.period);
    CollectRecorded();
    for (const std::string& n : sched_->notices()) all_notices_.insert(n);
  }

  // A notice naming period `p` ("... of period 3 has ...", "period 3 ended").
  bool NoticeFor(int64_t p) const {
    for (const std::string& n : all_notices_) {
      if (absl::StrContains(n, absl::StrCat("period ", p, " ")) ||
          absl::StrContains(n, absl::StrCat("period ", p, ":"))) {
        return true;
      }
    }
    return false;
  }

  void Start(ScheduledSpeedTest st, int64_t period) {
    const absl::Time now = clock_.Now();
    const std::string server = st.test.external_target().empty()
                                   ? st.test.peer_agent()
                                   : "x:" + st.test.external_target();
    // Invariant: a host is in at most one test; the LAN limit holds.
    for (const auto& [id, r] : running_) {
      ASSERT_NE(r.client, st.client) << "client busy at " << now;
      ASSERT_NE(r.server, st.client) << "client busy as a server at " << now;
      ASSERT_NE(r.client, server) << "server busy as a client at " << now;
      ASSERT_NE(r.server, server) << "server busy at " << now;
    }
    ASSERT_LT(running_.size(), opts_.max_concurrent);
    ASSERT_NE(st.client, server);
    ASSERT_TRUE(online_.at(st.client)) << st.client << " is offline";
    if (st.test.external_target().empty()) {
      ASSERT_TRUE(online_.at(server)) << server << " is offline";
      ASSERT_EQ(st.test.address(), addresses_.at(server));
    }
    ASSERT_EQ(st.test.duration().seconds(), 10);
    ASSERT_FALSE(st.test.schedule_id().empty());
    ASSERT_EQ(period_of_.count(st.test.schedule_id()), 0u)
        << "schedule_id reused";
    period_of_[st.test.schedule_id()] = period;
    starts_[period].push_back({st.client, server});
    Running r;
    r.client = st.client;
    r.server = server;
    r.end =
        now + absl::Seconds(std::uniform_int_distribution<int>(
                  5, static_cast<int>(absl::ToInt64Seconds(max_run_)))(rng_));
    r.result.set_schedule_id(st.test.schedule_id());
    r.result.set_outcome(v1::SPEED_OUTCOME_OK);
    running_[st.test.schedule_id()] = r;
  }

  void CollectRecorded() {
    for (const v1::SpeedResult& r : sched_->TakeRecordedResults()) {
      const std::string server = r.external() ? "x:" + r.server() : r.server();
      if (r.outcome() == v1::SPEED_OUTCOME_SKIPPED) {
        ASSERT_FALSE(r.error().empty());
        ++skipped_[PeriodOf(r.schedule_id())][{r.client(), server}];
        skip_reasons_.insert(r.error());
      } else {
        ASSERT_EQ(r.outcome(), v1::SPEED_OUTCOME_FAILED);
        ++lost_[PeriodOf(r.schedule_id())];
      }
    }
  }

  // Schedule ids are "speed-<period start, unix seconds>-...".
  int64_t PeriodOf(const std::string& schedule_id) {
    std::vector<std::string> parts = absl::StrSplit(schedule_id, '-');
    int64_t start = 0;
    EXPECT_TRUE(parts.size() >= 3 && absl::SimpleAtoi(parts[1], &start))
        << schedule_id;
    auto it = period_by_start_.find(start);
    EXPECT_NE(it, period_by_start_.end()) << schedule_id;
    return it == period_by_start_.end() ? -1 : it->second;
  }

  // Agent `name` goes away: its running test as a client never reports.
  void Leave(const std::string& name) {
    online_[name] = false;
    for (auto& [id, r] : running_) {
      if (r.client == name) r.deliver = false;
    }
    Publish();
  }
  void Join(const std::string& name) {
    online_[name] = true;
    Publish();
  }

  std::vector<std::string> OnlineNames() const {
    std::vector<std::string> out;
    for (const auto& [n, up] : online_) {
      if (up) out.push_back(n);
    }
    return out;
  }

  FakeClock clock_;
  std::mt19937_64 rng_;
  absl::Duration max_run_;
  SpeedSchedulerOptions opts_;
  std::unique_ptr<SpeedScheduler> sched_;
  std::map<std::string, bool> online_;
  std::map<std::string, std::string> addresses_;
  std::map<std::string, Running> running_;
  std::map<std::string, int64_t> period_of_;
  std::map<int64_t, std::map<std::pair<std::string, std::string>, int>> ok_;
  std::map<int64_t, std::map<std::pair<std::string, std::string>, int>>
      skipped_;
  std::map<int64_t, std::vector<std::pair<std::string, std::string>>> starts_;
  std::map<int64_t, int> lost_;
  std::set<std::string> skip_reasons_;
  std::map<int64_t, int64_t> period_by_start_;
  std::set<std::string> all_notices_;
};

std::set<std::pair<std::string, std::string>> ExpectedPairs(const Sim& sim) {
  std::set<std::pair<std::string, std::string>> out;
  const std::vector<std::string> names = sim.OnlineNames();
  for (const std::string& a : names) {
    for (const std::string& b : names) {
      if (a != b) out.insert({a, b});
    }
    for (const v1::ExternalSpeedTarget& t : sim.opts_.external_targets) {
      out.insert({a, "x:" + t.name()});
    }
  }
  return out;
}

TEST(SpeedSchedulerPropertyTest, StaticLansEveryTestAccountedForOncePerPeriod) {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    std::mt19937_64 rng(seed);
    const int agents = std::uniform_int_distribution<int>(2, 9)(rng);
    const int externals = std::uniform_int_distribution<int>(0, 2)(rng);
    const uint32_t k = std::uniform_int_distribution<uint32_t>(1, 3)(rng);
    const int tests = agents * (agents - 1) + agents * externals;
    // Sometimes ample room, sometimes too little.
    const double room = std::uniform_real_distribution<double>(0.4, 1.6)(rng);
    const int slots = std::max(1, static_cast<int>(tests * room / k));
    // Half the LANs have tests that overrun their 20 s slot: delays then
    // pile up, and only the scheduler's own checks keep hosts apart.
    const bool overrun = seed % 2 == 0;
    Sim sim(seed, agents, externals, k, absl::Seconds(20) * slots,
            absl::Seconds(overrun ? 45 : 19));
    const int periods = 3;
    const absl::Time end = sim.clock_.Now() + sim.opts_.period * periods;
    while (sim.clock_.Now() < end) {
      sim.Step();
      if (::testing::Test::HasFatalFailure()) return;
    }
    const auto expected = ExpectedPairs(sim);
    for (int64_t p = 1; p < periods; ++p) {  // the last period is unfinished
      SCOPED_TRACE(absl::StrCat("period ", p));
      int ran = 0, skipped = 0;
      for (const auto& pair : expected) {
        const int o = sim.ok_[p][pair];
        const int s = sim.skipped_[p][pair];
        ASSERT_EQ(o + s, 1) << pair.first << "->" << pair.second << " ok=" << o
                            << " skipped=" << s;
        ran += o;
        skipped += s;
      }
      EXPECT_EQ(ran + skipped, tests);
      EXPECT_EQ(sim.lost_[p], 0);
      if (slots >= tests && !overrun) {
        // Fits even one at a time: every pair ran, nothing to report.
        EXPECT_EQ(ran, tests);
        EXPECT_THAT(sim.sched_->notices(), ::testing::IsEmpty());
      }
      if (skipped > 0) {
        // Never cut silently: a notice names the period.
        EXPECT_TRUE(sim.NoticeFor(p));
      }
      if (skipped > 0) {
        EXPECT_TRUE(
            sim.skip_reasons_.count("period ended before the test could start "
                                    "(earlier tests ran long)") ||
            std::any_of(sim.skip_reasons_.begin(), sim.skip_reasons_.end(),
                        [](const std::string& r) {
                          return absl::StartsWith(r, "mesh did not fit");
                        }));
      }
    }
    if (slots * static_cast<int>(k) < tests) {
      // Fewer slots than even perfect packing needs: reported, not cut quietly.
      EXPECT_FALSE(sim.sched_->notices().empty());
      EXPECT_THAT(
          sim.sched_->notices(),
          ::testing::Contains(::testing::HasSubstr("does not fit its period")));
    }
  }
}

TEST(SpeedSchedulerPropertyTest, RotationChangesTheOrderBetweenPeriods) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    std::mt19937_64 rng(seed);
    const int agents = std::uniform_int_distribution<int>(3, 8)(rng);
    const int tests = agents * (agents - 1);
    Sim sim(seed, agents, 0, 1, absl::Seconds(20) * (tests + 2),
            absl::Seconds(15));
    const absl::Time end = sim.clock_.Now() + sim.opts_.period * 4;
    while (sim.clock_.Now() < end) {
      sim.Step();
      if (::testing::Test::HasFatalFailure()) return;
    }
    for (int64_t p = 1; p < 4; ++p) {
      ASSERT_EQ(sim.starts_[p].size(), static_cast<size_t>(tests));
      EXPECT_NE(sim.starts_[p], sim.starts_[p + 1]) << "period " << p;
      // Same set, different order.
      auto a = sim.starts_[p], b = sim.starts_[p + 1];
      b.resize(std::min(a.size(), b.size()));
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      if (sim.starts_[p + 1].size() == a.size()) {
        EXPECT_EQ(a, b);
      }
    }
    // The first pair of period 1 does not open period 2 as well.
    EXPECT_NE(sim.starts_[1].front(), sim.starts_[2].front());
  }
}

TEST(SpeedSchedulerPropertyTest, JoinsAndLeavesMidPeriodKeepTheInvariants) {
  for (uint64_t seed = 100; seed < 300; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    std::mt19937_64 rng(seed);
    const int agents = std::uniform_int_distribution<int>(3, 8)(rng);
    const int externals = std::uniform_int_distribution<int>(0, 1)(rng);
    const uint32_t k = std::uniform_int_distribution<uint32_t>(1, 3)(rng);
    // Room for a mesh two agents larger, so joiners fit.
    const int big = agents + 2;
    const int slots = big * (big - 1) + big * externals + 6;
    Sim sim(seed, agents, externals, k, absl::Seconds(20) * slots,
            absl::Seconds(seed % 3 == 0 ? 40 : 19));
    const absl::Time end = sim.clock_.Now() + sim.opts_.period * 3;
    std::set<std::string> changed_in_period1;
    int next_new = 0;
    while (sim.clock_.Now() < end) {
      sim.Step();
      if (::testing::Test::HasFatalFailure()) return;
      if (std::uniform_int_distribution<int>(0, 149)(rng) != 0) continue;
      const bool in_period1 = sim.sched_->stats().period == 1;
      std::vector<std::string> names;
      for (const auto& [n, up] : sim.online_) names.push_back(n);
      const int what = std::uniform_int_distribution<int>(0, 2)(rng);
      std::string who;
      if (what == 0 && sim.OnlineNames().size() > 2) {
        const auto online = sim.OnlineNames();
        who = online[std::uniform_int_distribution<size_t>(
            0, online.size() - 1)(rng)];
        sim.Leave(who);
      } else if (what == 1) {
        std::vector<std::string> offline;
        for (const auto& [n, up] : sim.online_) {
          if (!up) offline.push_back(n);
        }
        if (offline.empty()) continue;
        who = offline[std::uniform_int_distribution<size_t>(
            0, offline.size() - 1)(rng)];
        sim.Join(who);
      } else if (next_new < 2) {
        who = absl::StrCat("newcomer", next_new++);
        sim.Join(who);
      }
      if (in_period1 && !who.empty()) changed_in_period1.insert(who);
    }
    // Never more than one OK result per pair per period, whatever churned.
    for (const auto& [p, pairs] : sim.ok_) {
      for (const auto& [pair, n] : pairs) {
        ASSERT_LE(n, 1) << "period " << p << " " << pair.first << "->"
                        << pair.second;
      }
    }
    // Pairs of agents that stayed online through period 1 are accounted for
    // exactly once in it (run, or skipped when churn overfilled the period).
    for (int a = 0; a < agents; ++a) {
      for (int b = 0; b < agents; ++b) {
        const std::string an = absl::StrCat("agent", a),
                          bn = absl::StrCat("agent", b);
        if (a == b || changed_in_period1.count(an) ||
            changed_in_period1.count(bn))
          continue;
        EXPECT_EQ((sim.ok_[1][{an, bn}] + sim.skipped_[1][{an, bn}]), 1)
            << an << "->" << bn;
      }
    }
    // A leaver's pending tests were recorded with the reason.
    for (const std::string& r : sim.skip_reasons_) {
      EXPECT_TRUE(absl::EndsWith(r, " offline") ||
                  absl::StartsWith(r, "mesh did not fit") ||
                  absl::StartsWith(r, "period ended"))
          << r;
    }
  }
}

}  // namespace
}  // namespace netvigil::collector
