// The `netvigil-agent probe path` command; its mtr --report style table is
// common/report/path_report.h's. Thread-compatible: the command runs on the
// caller's thread.
#ifndef NETVIGIL_AGENT_PROBES_PATH_COMMAND_H_
#define NETVIGIL_AGENT_PROBES_PATH_COMMAND_H_

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace netvigil::agent {

// Adds `path TARGET... [-c N] [-i SECONDS] [--max-ttl N] [--size BYTES]
// [-4|-6] [--resolve] [--socket auto|raw|dgram] [--json]` under `probe`.
// Prints one report (or one line of proto3 JSON) per target to stdout; when
// the sockets cannot be opened or any target failed, leaves an error in
// `*outcome` (a line per failed target) after printing what it has
// (agent/probe_commands.h).
void RegisterPathProbeCommand(CLI::App& probe, absl::Status* outcome);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_PROBES_PATH_COMMAND_H_
