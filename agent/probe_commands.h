// Adds `probe path|sockets|files|speed` to the agent's command line, each
// printing a table like its classic tool's, or --json. Thread-compatible.
#ifndef NETVIGIL_AGENT_PROBE_COMMANDS_H_
#define NETVIGIL_AGENT_PROBE_COMMANDS_H_

#include "CLI/CLI.hpp"

namespace netvigil::agent {

void RegisterProbeCommands(CLI::App& probe);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_PROBE_COMMANDS_H_
