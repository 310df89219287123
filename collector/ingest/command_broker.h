// Sends a command to a connected agent and waits for what answers it: the
// result carrying the command's id, a refusal, or the deadline. The Query
// service's ProbeNow and the speed-test scheduler use it. Thread-safe.
#ifndef NETVIGIL_COLLECTOR_INGEST_COMMAND_BROKER_H_
#define NETVIGIL_COLLECTOR_INGEST_COMMAND_BROKER_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "collector/ingest/session_registry.h"
#include "common/clock.h"
#include "netvigil/v1/agent.pb.h"

namespace netvigil::collector {

class CommandBroker {
 public:
  // Not owned: `sessions`, `clock`.
  CommandBroker(SessionRegistry& sessions, Clock& clock);

  // Sends `command` (its id is set here) to `agent` and blocks until the
  // result arrives (committed), the agent refuses (FAILED_PRECONDITION with
  // its reason), the agent is not connected (UNAVAILABLE) or `timeout`
  // passes (DEADLINE_EXCEEDED).
  absl::StatusOr<v1::Result> Run(const std::string& agent, v1::Command command,
                                 absl::Duration timeout);

  // Hooks for AgentService's observers.
  void OnResult(const std::string& agent, const v1::Result& result);
  void OnCommandStatus(const std::string& agent,
                       const v1::CommandStatus& status);

 private:
  struct Waiter {
    std::string agent;
    bool done = false;
    absl::Status status;
    v1::Result result;
  };

  SessionRegistry& sessions_;
  Clock& clock_;
  std::atomic<uint64_t> next_id_{1};
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Waiter>> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_INGEST_COMMAND_BROKER_H_
