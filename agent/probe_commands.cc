#include "agent/probe_commands.h"

namespace netvigil::agent {

void RegisterProbeCommands(CLI::App& probe) {}

}  // namespace netvigil::agent
