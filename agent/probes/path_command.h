// The `netvigil-agent probe path` command and its mtr --report style table.
// Thread-safe: FormatPathReport is pure; the command runs on the caller's
// thread.
#ifndef NETVIGIL_AGENT_PROBES_PATH_COMMAND_H_
#define NETVIGIL_AGENT_PROBES_PATH_COMMAND_H_

#include <string>

#include "CLI/CLI.hpp"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::agent {

// One run as mtr --report prints it: a header, then per hop
// Loss% Snt Rcv Last Avg Best Wrst StDev, extra addresses of a hop on lines
// of their own, and the run's error (if any) last. The header's `HOST:` is
// `host` (the CLI passes the agent's name: the run was that agent's), or
// this machine's hostname when empty (the standalone probe).
std::string FormatPathReport(const v1::PathRun& run,
                             const std::string& host = "");

// Adds `path TARGET... [-c N] [-i SECONDS] [--max-ttl N] [--size BYTES]
// [-4|-6] [--resolve] [--socket auto|raw|dgram] [--json]` under `probe`.
// Prints one report (or one line of proto3 JSON) per target to stdout; when
// the sockets cannot be opened or any target failed, says so on stderr and
// throws CLI::RuntimeError(1) after printing what it has.
void RegisterPathProbeCommand(CLI::App& probe);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_PROBES_PATH_COMMAND_H_
