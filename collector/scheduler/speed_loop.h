// Drives the SpeedScheduler against the live system: tells it which agents
// are online, sends the tests it returns to the client agents through the
// CommandBroker, feeds the answers back, and stores what it records itself
// (skipped tests, tests that never answered). Thread-safe: Start/Stop once.
#ifndef NETVIGIL_COLLECTOR_SCHEDULER_SPEED_LOOP_H_
#define NETVIGIL_COLLECTOR_SCHEDULER_SPEED_LOOP_H_

#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "collector/ingest/command_broker.h"
#include "collector/ingest/session_registry.h"
#include "collector/scheduler/speed_scheduler.h"
#include "collector/store/store.h"

namespace netvigil::collector {

class SpeedLoop {
 public:
  // Not owned: everything passed by reference. `sessions`: this
  // collector's live agent streams, which say who is online (see
  // SessionRegistry::MarkLive); may be null (the database's view only).
  SpeedLoop(SpeedSchedulerOptions options, Store& store, CommandBroker& broker,
            Clock& clock, absl::Duration heartbeat_timeout,
            SessionRegistry* sessions = nullptr);
  ~SpeedLoop();

  // Called with the agents each time they are read, before the tests due
  // are sent: what must reach the agents before a test to a new peer does
  // (their plans' peers and iperf3 users) is sent from here. When it returns
  // true (it sent something), tests wait for the next round, so that every
  // agent has taken it in first. Before Start.
  void SetAgentsObserver(
      std::function<bool(const std::vector<v1::AgentInfo>&)> fn) {
    agents_observer_ = std::move(fn);
  }

  void Start();
  void Stop();
  std::vector<std::string> notices() const { return scheduler_.notices(); }

 private:
  void Loop();
  void RunTest(ScheduledSpeedTest test);
  void StoreRecorded();

  const SpeedSchedulerOptions options_;
  Store& store_;
  CommandBroker& broker_;
  Clock& clock_;
  const absl::Duration heartbeat_timeout_;
  SessionRegistry* const sessions_;  // Not owned; may be null.
  SpeedScheduler scheduler_;
  std::function<bool(const std::vector<v1::AgentInfo>&)> agents_observer_;
  absl::Notification stop_;
  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_SCHEDULER_SPEED_LOOP_H_
