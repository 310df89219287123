// The `netvigil` commands: each fetches from the Query service and prints a
// table for people or proto3 JSON for scripts. Thread-compatible.
#ifndef NETVIGIL_COLLECTOR_CLI_COMMANDS_H_
#define NETVIGIL_COLLECTOR_CLI_COMMANDS_H_

#include <string>

#include "absl/time/time.h"
#include "collector/cli/query_client.h"
#include "netvigil/v1/query.pb.h"

namespace netvigil::cli {

// Pure renderers, for golden tests.
std::string RenderAgents(const v1::ListAgentsResponse& resp, absl::Time now);

// proto3 JSON mapping, pretty-printed, newline-terminated.
std::string ToJson(const google::protobuf::Message& msg);

int RunAgents(const ClientOptions& options, bool json);

}  // namespace netvigil::cli

#endif  // NETVIGIL_COLLECTOR_CLI_COMMANDS_H_
