// The `netvigil` commands: each asks the collector's Query service and
// prints a report (common/report/) or proto3 JSON to stdout. What went wrong
// comes back as a Status whose code query_client.h's table names; only
// cli_main.cc prints it and turns it into an exit code. Thread-compatible.
#ifndef NETVIGIL_COLLECTOR_CLI_COMMANDS_H_
#define NETVIGIL_COLLECTOR_CLI_COMMANDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "collector/cli/query_client.h"

namespace netvigil::cli {

absl::Status RunAgents(const ClientOptions& options, bool json);
// `kind`: "" or an alert kind's name (common/wire_kinds.h's AlertKindNames);
// another is InvalidArgument naming the kinds, before any request.
absl::Status RunAlerts(const ClientOptions& options, bool json, bool all,
                       const std::string& kind, const std::string& host,
                       const std::string& since, bool follow);
absl::Status RunAck(const ClientOptions& options, bool json, int64_t id,
                    const std::string& by);
absl::Status RunOverview(const ClientOptions& options, bool json);
// `since` is a duration back from now ("1h", "30m"); empty: the default.
absl::Status RunPath(const ClientOptions& options, bool json,
                     const std::string& host, const std::string& target,
                     const std::string& since,
                     const std::string& resolution = "auto");
absl::Status RunSockets(const ClientOptions& options, bool json,
                        const std::string& host, bool changes,
                        const std::string& since);
absl::Status RunFiles(const ClientOptions& options, bool json,
                      const std::string& host, const std::string& since);
absl::Status RunSpeedMatrix(const ClientOptions& options, bool json);
absl::Status RunSpeedHistory(const ClientOptions& options, bool json,
                             const std::string& client,
                             const std::string& server,
                             const std::string& since,
                             const std::string& resolution = "auto");
// Asks the collector to have HOST's agent run the probe now (ProbeNow); the
// probe runs there, never here. With several path targets, the first
// failure's code, and one "target T:" line and its reason per failure.
absl::Status RunProbe(const ClientOptions& options, bool json,
                      const std::string& host, const std::string& kind,
                      const std::string& target, double deadline_s);

}  // namespace netvigil::cli

#endif  // NETVIGIL_COLLECTOR_CLI_COMMANDS_H_
