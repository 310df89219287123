// The `probe files [--dir D]... [--json]` subcommand of netvigil-agent: one
// open-file snapshot printed as an lsof-like table or as proto3 JSON.
// Thread-compatible.
#ifndef NETVIGIL_AGENT_PROBES_FILES_COMMAND_H_
#define NETVIGIL_AGENT_PROBES_FILES_COMMAND_H_

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace netvigil::agent {

// Adds `files` under `probe`; the folders default to /home and /root. Its
// callback leaves its outcome in `*outcome` (agent/probe_commands.h).
void RegisterFilesProbeCommand(CLI::App& probe, absl::Status* outcome);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_PROBES_FILES_COMMAND_H_
