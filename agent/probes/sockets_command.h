// The `probe sockets [--json]` subcommand of netvigil-agent: one socket
// snapshot printed as an ss-like table or as proto3 JSON. Thread-compatible.
#ifndef NETVIGIL_AGENT_PROBES_SOCKETS_COMMAND_H_
#define NETVIGIL_AGENT_PROBES_SOCKETS_COMMAND_H_

#include "CLI/CLI.hpp"

namespace netvigil::agent {

// Adds `sockets` under `probe`. On error the callback prints to stderr and
// throws CLI::RuntimeError(1).
void RegisterSocketsProbeCommand(CLI::App& probe);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_PROBES_SOCKETS_COMMAND_H_
