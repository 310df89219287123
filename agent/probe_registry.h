// Registers the agent's native probes with the ProbeRunner: the one place
// that knows every probe kind. Thread-compatible (call once at start).
#ifndef NETVIGIL_AGENT_PROBE_REGISTRY_H_
#define NETVIGIL_AGENT_PROBE_REGISTRY_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agent/probe_runner.h"

namespace netvigil::agent {

struct ProbeRegistryOptions {
  std::string agent_name;
  uint32_t iperf_port = 5201;
  bool iperf_server = true;  // supervise `iperf3 -s` for peers
  // Where the iperf3 credentials from the collector are kept, as the 0600
  // files iperf3 reads. Empty: the iperf3 server runs without them.
  std::string state_dir;
};

// The longest speed test an agent runs, whatever the plan says: a test
// saturates a home link, so a collector (or anyone speaking as one) must not
// be able to make an agent flood it for long. The plan's
// probes.speed.max_duration (default kDefaultSpeedTestCap) may only lower it.
inline constexpr absl::Duration kMaxSpeedTestDuration = absl::Seconds(60);
inline constexpr absl::Duration kDefaultSpeedTestCap = absl::Seconds(30);
inline constexpr uint32_t kDefaultIperfPort = 5201;

// The narrow command surface. Allowed: probe-now for a probe kind the plan
// enables (a path target must be one of the plan's); a speed test to a peer
// the plan lists, at one of that peer's addresses (and its port when the
// plan gives one), or to a configured external target with its exact name,
// address and port; its duration in (0, min(plan cap, 60 s)] and, when the
// plan caps the bitrate, a bitrate in (0, cap]. Everything else (an empty or
// unknown command, probe-now for speed or an unknown kind) is refused.
// OK, or why the command is refused. Pure.
absl::Status CheckCommand(const v1::Command& command,
                          const v1::ProbePlan& plan);

// What the registered probes keep for the agent's lifetime (sockets, the
// iperf3 server child and its credentials). Thread-safe.
class ProbeResources {
 public:
  virtual ~ProbeResources() = default;
  // The collector's welcome: its iperf3 credentials (or their absence).
  virtual void OnWelcome(const v1::Welcome& welcome) = 0;
  // Every plan (the welcome's and updates): who may test against this
  // agent's iperf3 server.
  virtual void OnPlan(const v1::ProbePlan& plan) = 0;
};

// Registers what can run here; returns resources that must outlive `runner`,
// or an error naming what cannot start.
absl::StatusOr<std::shared_ptr<ProbeResources>> RegisterProbes(
    const ProbeRegistryOptions& options, ProbeRunner& runner);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_PROBE_REGISTRY_H_
