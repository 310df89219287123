#include "agent/probe_commands.h"

#include "agent/probes/files_command.h"
#include "agent/probes/path_command.h"
#include "agent/probes/sockets_command.h"
#include "agent/probes/speed_command.h"

namespace netvigil::agent {

void RegisterProbeCommands(CLI::App& probe, absl::Status* outcome) {
  RegisterPathProbeCommand(probe, outcome);
  RegisterSocketsProbeCommand(probe, outcome);
  RegisterFilesProbeCommand(probe, outcome);
  RegisterSpeedProbeCommand(probe, outcome);
}

}  // namespace netvigil::agent
