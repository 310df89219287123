// Runs the probes on the plan's intervals and on the collector's commands,
// and puts every result into the outbox. One thread per periodic probe kind
// so a slow path run never delays a socket snapshot; a kind never runs twice
// at once. Thread-safe.
#ifndef NETVIGIL_AGENT_PROBE_RUNNER_H_
#define NETVIGIL_AGENT_PROBE_RUNNER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "agent/outbox.h"
#include "common/clock.h"
#include "common/monotonic_wait.h"
#include "netvigil/v1/agent.pb.h"

namespace netvigil::agent {

// One run of a probe kind. `command` is set when the collector asked (its
// target, for path); the function returns results without seq (the outbox
// numbers them) or an error that becomes a log line.
using ProbeFn = std::function<absl::StatusOr<std::vector<v1::Result>>(
    const v1::ProbePlan& plan, const v1::Command* command)>;

// Decides whether a command is allowed; OK or the reason it is refused.
using CommandPolicy =
    std::function<absl::Status(const v1::Command&, const v1::ProbePlan&)>;

class ProbeRunner {
 public:
  // Not owned: `outbox`, `clock`.
  ProbeRunner(Outbox& outbox, Clock& clock);
  ~ProbeRunner();

  // Before Start().
  void Register(v1::ProbeKind kind, ProbeFn fn);
  void SetCommandPolicy(CommandPolicy policy);

  void Start();
  void Stop();
  // A new plan applies from the next wake-up of each kind.
  void SetPlan(const v1::ProbePlan& plan) ABSL_LOCKS_EXCLUDED(mu_);
  // Accepts (and runs in the background) or refuses a command.
  v1::CommandStatus Handle(const v1::Command& command) ABSL_LOCKS_EXCLUDED(mu_);

  // Counters for heartbeats and tests.
  uint64_t runs() const { return runs_.load(); }
  uint64_t refused_commands() const { return refused_.load(); }

 private:
  void Loop(v1::ProbeKind kind);
  void RunOnce(v1::ProbeKind kind, const v1::ProbePlan& plan,
               const v1::Command* command);
  bool Enabled(v1::ProbeKind kind, const v1::ProbePlan& plan,
               absl::Duration* every) const;

  Outbox& outbox_;
  Clock& clock_;
  std::map<v1::ProbeKind, ProbeFn> probes_;
  CommandPolicy policy_;
  mutable absl::Mutex mu_;
  // The loops' timed waits (common/monotonic_wait.h): a stop or a new plan
  // wakes them.
  MonotonicCondVar wake_;
  v1::ProbePlan plan_ ABSL_GUARDED_BY(mu_);
  bool have_plan_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t plan_generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<v1::ProbeKind, bool> busy_ ABSL_GUARDED_BY(mu_);
  int commands_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> runs_{0};
  std::atomic<uint64_t> refused_{0};
};

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_PROBE_RUNNER_H_
