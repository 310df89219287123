// Plans and paces the pairwise speed tests: once per period, every ordered
// pair of online agents and every agent to each external target, with at
// most one test per host at a time and at most `max_concurrent` in the LAN,
// spread evenly over the period, in an order that rotates between periods.
// Pure logic driven by a Clock: no network, no database; the caller sends
// the tests Tick() returns and feeds results back with OnResult().
// Thread-safe (one mutex; every call is short).
#ifndef NETVIGIL_COLLECTOR_SCHEDULER_SPEED_SCHEDULER_H_
#define NETVIGIL_COLLECTOR_SCHEDULER_SPEED_SCHEDULER_H_

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "netvigil/v1/agent.pb.h"
#include "netvigil/v1/probes.pb.h"
#include "netvigil/v1/query.pb.h"

namespace netvigil::collector {

struct SpeedSchedulerOptions {
  absl::Duration period = absl::Hours(1);
  // What each test is asked to run (iperf3 -t).
  absl::Duration test_duration = absl::Seconds(10);
  // The room one test takes in the plan beyond its duration: the command's
  // round trip, iperf3's connect, authentication and summary exchange
  // (config probes.speed.slot_overhead). A test that runs long only delays
  // the next one on its hosts; the period's end cuts what is left, with a
  // notice.
  absl::Duration slot_overhead = absl::Seconds(3);
  // The room one test takes in the plan. Zero: test_duration +
  // slot_overhead.
  absl::Duration slot = absl::ZeroDuration();
  // After a (re)start the first period waits up to this long for every
  // known agent to be online (agents reconnect within their 30 s backoff
  // cap), so it is not planned while they are still reconnecting. It starts
  // at once when all of them are.
  absl::Duration startup_grace = absl::Seconds(45);
  // A started test with no result after this is recorded as FAILED and its
  // hosts are free again. Zero: slot + 60 s.
  absl::Duration result_timeout = absl::ZeroDuration();
  // How long after a "server busy" failure its one retry is due (moved
  // earlier when that would not fit the period).
  absl::Duration busy_retry_delay = absl::Minutes(5);
  uint32_t max_concurrent = 1;
  uint32_t port = 5201;  // where every agent's iperf3 server listens
  uint64_t bitrate_bps = 0;
  std::vector<v1::ExternalSpeedTarget> external_targets;
};

// A test to send now: `client` is the agent that runs iperf3 -c.
struct ScheduledSpeedTest {
  std::string client;
  v1::SpeedTest test;
};

class SpeedScheduler {
 public:
  SpeedScheduler(SpeedSchedulerOptions options, Clock& clock);

  // Every known agent, with `online` and `addresses` (the first one is where
  // its iperf3 server is reached). Agents that went offline lose their
  // pending tests; agents that came online get their pairs added to the
  // current period, which is re-spread over the time left. A pair that
  // could not run because an agent was offline is recorded as skipped
  // ("agent X offline") only at the end of the period, and only if it did
  // not run after all: an agent back within the period leaves no stale
  // "skipped" behind, and a later result always replaces a skip.
  void SetAgents(const std::vector<v1::AgentInfo>& agents);

  // The tests to start now. Starts a new period when the current one is
  // over (what was still pending is recorded as skipped). The first period
  // starts once every known agent is online or startup_grace has passed
  // since the first Tick.
  std::vector<ScheduledSpeedTest> Tick();

  // A result for a test Tick() returned, matched by schedule_id. Frees its
  // hosts; a "server busy" failure is retried once later in the period.
  // NotFound for an unknown or expired schedule_id.
  absl::Status OnResult(const v1::SpeedResult& result);

  // Results the scheduler produced itself, to be stored like any other:
  // SKIPPED (agent offline, mesh did not fit, period ended) and FAILED (no
  // result within result_timeout). Each is returned once.
  std::vector<v1::SpeedResult> TakeRecordedResults();

  // Problems with the current period, for the log and the Overview: the
  // mesh does not fit, tests were cut at the period's end, ...
  std::vector<std::string> notices() const;

  // When Tick() may next have work: the earliest due test, result deadline
  // or period end; the grace's end while the first period waits.
  // InfiniteFuture before the first Tick. It may be in the
  // past while due tests wait for busy hosts: those start on the Tick after
  // the OnResult that frees them, so call Tick after every OnResult.
  absl::Time NextWakeup() const;

  struct Stats {
    int64_t period = 0;  // 1 for the first period
    absl::Time period_start;
    absl::Time period_end;
    int planned = 0;  // tests planned this period (including added, retries)
    int pending = 0;
    int running = 0;
    int completed = 0;  // results received this period
    int skipped = 0;    // this period
    int rounds = 0;     // slots the plan used
    int capacity = 0;   // slots the period has
  };
  Stats stats() const;

 private:
  enum class State { kPending, kRunning, kDone, kSkipped };
  struct Host {
    std::string name;     // agent name, or the external target's name
    std::string address;  // where its iperf3 server is
    uint32_t port = 0;
    bool external = false;
    bool online = false;
    bool busy = false;  // in a running test
  };
  struct Entry {
    int client = 0;  // host index (always an agent)
    int server = 0;  // host index (agent or external target)
    int attempt = 1;
    State state = State::kPending;
    absl::Time not_before;
  };
  struct Running {
    int client = 0;
    int server = 0;
    int64_t period = 0;
    int entry = 0;
    int attempt = 1;
    absl::Time deadline;
  };
  // A compact skipped test, turned into a SpeedResult when taken.
  struct Skip {
    int client = 0;
    int server = 0;
    int reason = 0;  // index into skip_reasons_
    std::string schedule_id;
    absl::Time at;
  };

  absl::Duration slot() const;
  absl::Duration result_timeout() const;
  int HostIndex(const std::string& name, bool external)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartPeriod(absl::Time start, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndPeriod(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Orders `tests` (entry indices) into host-disjoint rounds of at most
  // max_concurrent, spreads the rounds evenly over [from, period_end_) and
  // skips (with a notice) what does not fit.
  void Spread(std::vector<int> tests, absl::Time from, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The mesh's tests for `agents` (sorted host indices) in an order where
  // neighbours share no host, rotated for the current period.
  std::vector<std::pair<int, int>> MeshOrder(
      const std::vector<int>& agents) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int AddEntry(int client, int server, int attempt, absl::Time not_before)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SkipEntry(int entry, int reason, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int Reason(std::string text) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // "speed-<period start, unix seconds>-<entry>[-r]": unique per period.
  std::string ScheduleId(int entry, int attempt) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireRunning(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pair (client, server) owed this period but not planned because host
  // `gone` was offline (or had no address).
  void MarkAbsent(int client, int server, int gone)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AnyAgentOffline() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<int> OnlineAgents() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static uint64_t PairKey(int a, int b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) |
           static_cast<uint32_t>(b);
  }

  const SpeedSchedulerOptions options_;
  Clock& clock_;  // Not owned.

  mutable absl::Mutex mu_;
  std::vector<Host> hosts_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> host_index_ ABSL_GUARDED_BY(mu_);
  int64_t period_ ABSL_GUARDED_BY(mu_) = 0;  // 0: not started
  absl::Time period_start_ ABSL_GUARDED_BY(mu_);
  absl::Time period_end_ ABSL_GUARDED_BY(mu_);
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
  // Pending entries by (not_before, entry).
  std::set<std::pair<absl::Time, int>> pending_ ABSL_GUARDED_BY(mu_);
  // Pairs pending, running or done this period: what a join must not add.
  absl::flat_hash_set<uint64_t> covered_ ABSL_GUARDED_BY(mu_);
  // Pairs owed this period that an offline agent kept out, with the host
  // that was offline; recorded as skipped at the period's end unless
  // covered by then.
  absl::flat_hash_map<uint64_t, int> absent_ ABSL_GUARDED_BY(mu_);
  // The first Tick, while the first period waits for agents to reconnect.
  absl::Time first_tick_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  absl::flat_hash_map<std::string, Running> running_ ABSL_GUARDED_BY(mu_);
  std::vector<Skip> skips_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> skip_reasons_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::SpeedResult> recorded_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> notices_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_SCHEDULER_SPEED_SCHEDULER_H_
