// How long the speed scheduler takes to plan one period for a large LAN:
// 200 agents, 39,800 ordered pairs (the target: under 100 ms).
// Usage: speed_plan_bench [AGENTS] [RUNS]. Prints one line per scenario.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collector/scheduler/speed_scheduler.h"
#include "spdlog/spdlog.h"
#include "tests/testing/fake_clock.h"

namespace {

using netvigil::collector::SpeedScheduler;
using netvigil::collector::SpeedSchedulerOptions;

struct Scenario {
  const char* name;
  absl::Duration period;
  uint32_t max_concurrent;
};

}  // namespace

int main(int argc, char** argv) {
  const int agents = argc > 1 ? std::atoi(argv[1]) : 200;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 7;
  spdlog::set_level(spdlog::level::err);
  std::vector<netvigil::v1::AgentInfo> list;
  for (int i = 0; i < agents; ++i) {
    netvigil::v1::AgentInfo a;
    a.set_name(absl::StrCat("agent", i));
    a.add_addresses(absl::StrCat("10.", i / 250, ".", i % 250, ".1"));
    a.set_online(true);
    list.push_back(a);
  }
  const int pairs = agents * (agents - 1);
  const Scenario scenarios[] = {
      // The default: 1 h, one test at a time. Does not fit: a notice, and
      // the excess recorded as skipped (part of the planning cost).
      {"default_1h_k1", absl::Hours(1), 1},
      // A period long enough for the whole mesh one at a time.
      {"fits_k1", absl::Seconds(20) * pairs, 1},
      // Many at once: exercises the host-disjoint round packing.
      {"fits_k100", absl::Seconds(20) * pairs / 50, 100},
  };
  for (const Scenario& sc : scenarios) {
    std::vector<double> plan_ms, take_ms;
    int planned = 0, skipped = 0, rounds = 0;
    for (int r = 0; r < runs; ++r) {
      netvigil::testing::FakeClock clock;
      SpeedSchedulerOptions o;
      o.period = sc.period;
      o.test_duration = absl::Seconds(10);
      o.slot = absl::Seconds(20);
      o.max_concurrent = sc.max_concurrent;
      SpeedScheduler s(o, clock);
      s.SetAgents(list);
      const absl::Time t0 = absl::Now();
      s.Tick();  // the first Tick plans the period
      const absl::Time t1 = absl::Now();
      const size_t recorded = s.TakeRecordedResults().size();
      const absl::Time t2 = absl::Now();
      plan_ms.push_back(absl::ToDoubleMilliseconds(t1 - t0));
      take_ms.push_back(absl::ToDoubleMilliseconds(t2 - t1));
      planned = s.stats().planned;
      skipped = static_cast<int>(recorded);
      rounds = s.stats().rounds;
    }
    std::sort(plan_ms.begin(), plan_ms.end());
    std::sort(take_ms.begin(), take_ms.end());
    std::printf(
        "plan scenario=%s agents=%d pairs=%d planned=%d rounds=%d skipped=%d "
        "plan_ms_median=%.2f plan_ms_max=%.2f take_recorded_ms_median=%.2f\n",
        sc.name, agents, pairs, planned, rounds, skipped,
        plan_ms[plan_ms.size() / 2], plan_ms.back(),
        take_ms[take_ms.size() / 2]);
  }
  return 0;
}
