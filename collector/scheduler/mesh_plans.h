// Each agent's own plan and iperf3 credentials. The collector's plan is the
// same for every agent except its speed section: the known peers (the other
// agents, with the addresses a speed test to them may use) and the iperf3
// users allowed on the agent's server (the other agents). Both change as
// agents come and go, so they are pushed as plan updates, and the Welcome
// carries the current ones plus the agent's iperf3 credentials (see
// common/iperf_credentials.h for the scheme). Thread-safe.
#ifndef NETVIGIL_COLLECTOR_SCHEDULER_MESH_PLANS_H_
#define NETVIGIL_COLLECTOR_SCHEDULER_MESH_PLANS_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "collector/ingest/session_registry.h"
#include "collector/store/pg_iperf_auth.h"
#include "netvigil/v1/agent.pb.h"
#include "netvigil/v1/query.pb.h"

namespace netvigil::collector {

class MeshPlans {
 public:
  using SecretsLoader = std::function<absl::StatusOr<IperfMeshSecrets>()>;

  // `iperf_port`: where every agent's iperf3 server listens (the scheduler's
  // speed port). `load_secrets` is called until it succeeds.
  MeshPlans(v1::ProbePlan base, uint32_t iperf_port,
            SecretsLoader load_secrets);

  // The agents known now (every one, online or not); revoked ones are left
  // out.
  void SetAgents(const std::vector<v1::AgentInfo>& agents)
      ABSL_LOCKS_EXCLUDED(mu_);

  // `agent`'s plan: the base plan with its peers and iperf3 users.
  v1::ProbePlan PlanFor(const std::string& agent) ABSL_LOCKS_EXCLUDED(mu_);

  // Fills `welcome`'s plan and iperf3 credentials for `agent`. Unavailable
  // while the secrets cannot be loaded: the agent is better refused (it
  // retries) than welcomed without credentials (it would open its server).
  absl::Status CompleteWelcome(const std::string& agent, v1::Welcome* welcome)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Sends a plan update to every session whose plan differs from the last
  // one it was sent (a new session counts as never sent). Returns how many
  // were sent.
  int PushChanged(SessionRegistry& sessions) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Status EnsureSecrets() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::ProbePlan PlanForLocked(const std::string& agent)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const v1::ProbePlan base_;
  const uint32_t iperf_port_;
  const SecretsLoader load_secrets_;
  absl::Mutex mu_;
  std::optional<IperfMeshSecrets> secrets_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::AgentInfo> agents_ ABSL_GUARDED_BY(mu_);
  // Agent name -> its iperf3 password hash (two hashes each: computed once).
  std::map<std::string, std::string> hashes_ ABSL_GUARDED_BY(mu_);
  // Session id -> the plan it was last sent (serialized).
  std::map<std::string, std::string> sent_ ABSL_GUARDED_BY(mu_);
  // Agent name -> the plan its last welcome carried (serialized).
  std::map<std::string, std::string> welcomed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_SCHEDULER_MESH_PLANS_H_
