// Adds `probe path|sockets|files|speed` to the agent's command line, each
// printing a table like its classic tool's, or --json. Thread-compatible.
#ifndef NETVIGIL_AGENT_PROBE_COMMANDS_H_
#define NETVIGIL_AGENT_PROBE_COMMANDS_H_

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace netvigil::agent {

// The command that runs prints what it found to stdout and leaves its
// outcome in `*outcome` (not owned; must outlive the parse): OK, or an
// error whose message is the line(s) for stderr, each naming the command,
// and whose code picks the exit status: InvalidArgument is a usage error
// (2), anything else a failure (1). The commands never throw or exit;
// agent_main.cc is the one place an outcome becomes an exit code.
void RegisterProbeCommands(CLI::App& probe, absl::Status* outcome);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_PROBE_COMMANDS_H_
