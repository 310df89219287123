// The `probe speed HOST` subcommand of netvigil-agent: one iperf3 client test
// printed as a short table or as proto3 JSON. Thread-compatible.
#ifndef NETVIGIL_AGENT_PROBES_SPEED_COMMAND_H_
#define NETVIGIL_AGENT_PROBES_SPEED_COMMAND_H_

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::agent {

// Adds `speed HOST [-p PORT] [--reverse] [--bidir] [--udp] [-b BPS]
// [-t SECONDS] [--username U --rsa-public-key-path PEM] [--json]` under
// `probe`. -b takes iperf3's suffixes (500K, 100M, 1G). With --username the
// password comes from $IPERF3_PASSWORD, as stock iperf3 takes it (missing:
// InvalidArgument in `*outcome`, a usage error). A name that does not
// resolve fails before iperf3 runs, with "name does not resolve". A failed
// test leaves its reason in `*outcome` (and prints the result, with --json,
// on stdout); agent/probe_commands.h says how the outcome is read. Logs
// never reach stdout (agent_main.cc sends them to stderr before any probe
// runs).
void RegisterSpeedProbeCommand(CLI::App& probe, absl::Status* outcome);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_PROBES_SPEED_COMMAND_H_
