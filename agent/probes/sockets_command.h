// The `probe sockets [--json]` subcommand of netvigil-agent: one socket
// snapshot printed as an ss-like table or as proto3 JSON; and the printing
// shared with `probe files`. Thread-compatible.
#ifndef NETVIGIL_AGENT_PROBES_SOCKETS_COMMAND_H_
#define NETVIGIL_AGENT_PROBES_SOCKETS_COMMAND_H_

#include <string>

#include "CLI/CLI.hpp"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace netvigil::agent {

// Adds `sockets` under `probe`; its callback leaves its outcome in
// `*outcome` (agent/probe_commands.h says how it is read).
void RegisterSocketsProbeCommand(CLI::App& probe, absl::Status* outcome);

// Prints a probe's result to stdout: `table()` or, when `json`, the proto3
// JSON of `snapshot`. When `status` is an error (or JSON fails) prints
// nothing and returns an error (same code) whose message is
// "netvigil-agent probe COMMAND: ERROR".
absl::Status PrintProbeSnapshot(absl::string_view command,
                                const absl::Status& status,
                                const google::protobuf::Message& snapshot,
                                bool json,
                                absl::FunctionRef<std::string()> table);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_PROBES_SOCKETS_COMMAND_H_
