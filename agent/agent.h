// The agent process: spool, probes and the link to the collector, wired
// together. Thread-safe: Run() on one thread, Stop() from any.
#ifndef NETVIGIL_AGENT_AGENT_H_
#define NETVIGIL_AGENT_AGENT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/collector_link.h"
#include "agent/probe_registry.h"
#include "agent/probe_runner.h"
#include "agent/spool_outbox.h"
#include "common/tls_client.h"

namespace netvigil::agent {

struct AgentOptions {
  std::string name;
  std::string collector;  // host:port
  std::string state_dir;
  bool insecure = false;
  // Without --insecure: the client certificate, its key, the pinned CA and
  // collector name (from the state folder, written by `enroll`).
  ClientTls tls;
  uint32_t iperf_port = 5201;
  bool iperf_server = true;
  uint64_t spool_max_bytes = 256ull << 20;
  // When set, replaces the plan's watched folders on this host only: for a
  // host whose homes live elsewhere, and for lab hosts, which share one
  // filesystem and so each watch a folder of their own.
  std::vector<std::string> watch_dirs;
};

class AgentProcess : public LinkHandler {
 public:
  explicit AgentProcess(AgentOptions options);
  ~AgentProcess() override;

  // Opens the spool and registers the probes; errors name what is wrong.
  absl::Status Init();
  // Until Stop().
  void Run();
  void Stop();

  // LinkHandler
  void OnWelcome(const v1::Welcome& welcome) override;
  void OnPlanUpdate(const v1::ProbePlan& plan) override;
  v1::CommandStatus OnCommand(const v1::Command& command) override;
  void FillHeartbeat(v1::Heartbeat* heartbeat) override;

 private:
  v1::ProbePlan Localise(v1::ProbePlan plan) const;
  // Saves the plan in the state folder for a restart without a collector.
  void KeepPlan(const v1::ProbePlan& plan);

  const AgentOptions options_;
  std::unique_ptr<SpoolOutbox> outbox_;
  std::unique_ptr<ProbeRunner> runner_;
  std::unique_ptr<CollectorLink> link_;
  // Probe resources that live as long as the agent (sockets, the iperf3
  // server); see probe_registry.h.
  std::shared_ptr<ProbeResources> probe_state_;
};

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_AGENT_H_
