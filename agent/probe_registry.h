// Registers the agent's native probes with the ProbeRunner: the one place
// that knows every probe kind. Thread-compatible (call once at start).
#ifndef NETVIGIL_AGENT_PROBE_REGISTRY_H_
#define NETVIGIL_AGENT_PROBE_REGISTRY_H_

#include <memory>

#include "absl/status/status.h"
#include "agent/probe_runner.h"

namespace netvigil::agent {

struct ProbeRegistryOptions {
  std::string agent_name;
  uint32_t iperf_port = 5201;
  bool iperf_server = true;  // supervise `iperf3 -s` for peers
};

// The narrow command surface: probe-now for the plan's enabled probes (a
// path target must be one of the plan's), speed tests to a peer or a
// configured external target within the plan's duration and bitrate caps.
// OK, or why the command is refused.
absl::Status CheckCommand(const v1::Command& command,
                          const v1::ProbePlan& plan);

// Registers what can run here; returns resources that must outlive `runner`
// (sockets, the iperf3 server child), or an error naming what cannot start.
absl::StatusOr<std::shared_ptr<void>> RegisterProbes(
    const ProbeRegistryOptions& options, ProbeRunner& runner);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_PROBE_REGISTRY_H_
