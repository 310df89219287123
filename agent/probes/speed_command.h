// The `probe speed HOST` subcommand of netvigil-agent: one iperf3 client test
// printed as a short table or as proto3 JSON. Thread-compatible.
#ifndef NETVIGIL_AGENT_PROBES_SPEED_COMMAND_H_
#define NETVIGIL_AGENT_PROBES_SPEED_COMMAND_H_

#include <string>

#include "CLI/CLI.hpp"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::agent {

// Adds `speed HOST [-p PORT] [--reverse] [--bidir] [--udp] [-b BPS]
// [-t SECONDS] [--username U --rsa-public-key-path PEM] [--json]` under
// `probe`. -b takes iperf3's suffixes (500K, 100M, 1G). With --username the
// password comes from $IPERF3_PASSWORD, as stock iperf3 takes it (missing:
// CLI::RuntimeError(2)). A name that does not resolve fails before iperf3
// runs, with "name does not resolve". A failed test prints its reason to
// stderr (and the result, with --json, on stdout) and throws
// CLI::RuntimeError(1). Logs never reach stdout (agent_main.cc sends them
// to stderr before any probe runs).
void RegisterSpeedProbeCommand(CLI::App& probe);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_PROBES_SPEED_COMMAND_H_
