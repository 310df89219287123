// The `netvigil` commands: each fetches from the Query service and prints a
// table for people or proto3 JSON for scripts. Thread-compatible.
#ifndef NETVIGIL_COLLECTOR_CLI_COMMANDS_H_
#define NETVIGIL_COLLECTOR_CLI_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "collector/cli/query_client.h"
#include "netvigil/v1/query.pb.h"

namespace netvigil::cli {

// Pure renderers, for golden tests.
std::string RenderAgents(const v1::ListAgentsResponse& resp, absl::Time now);

// proto3 JSON mapping, pretty-printed, newline-terminated.
std::string ToJson(const google::protobuf::Message& msg);

std::string RenderOverview(const v1::OverviewResponse& resp, absl::Time now);
std::string RenderSpeedMatrix(const v1::SpeedMatrixResponse& resp,
                              absl::Time now);
std::string RenderSocketFacts(const v1::CurrentSocketsResponse& resp,
                              absl::Time now);
std::string RenderSocketChanges(const v1::SocketChangesResponse& resp,
                                absl::Time now);
std::string RenderFileAccess(const v1::FileAccessResponse& resp,
                             absl::Time now);
std::string RenderSpeedHistory(const v1::SpeedHistoryResponse& resp,
                               absl::Time now);
std::string RenderPathHistory(const v1::PathHistoryResponse& resp,
                              absl::Time now);

std::string RenderAlerts(const v1::ListAlertsResponse& resp, absl::Time now);
std::string RenderAlertEvent(const v1::AlertEvent& e, absl::Time now);

// The alert kinds `alerts --kind` accepts: the collector's analyzer's.
std::vector<std::string> AlertKinds();

int RunAgents(const ClientOptions& options, bool json);
int RunAlerts(const ClientOptions& options, bool json, bool all,
              const std::string& kind, const std::string& host,
              const std::string& since, bool follow);
int RunAck(const ClientOptions& options, bool json, int64_t id,
           const std::string& by);
int RunOverview(const ClientOptions& options, bool json);
// `since` is a duration back from now ("1h", "30m"); empty: the default.
int RunPath(const ClientOptions& options, bool json, const std::string& host,
            const std::string& target, const std::string& since);
int RunSockets(const ClientOptions& options, bool json, const std::string& host,
               bool changes, const std::string& since);
int RunFiles(const ClientOptions& options, bool json, const std::string& host,
             const std::string& since);
int RunSpeedMatrix(const ClientOptions& options, bool json);
int RunSpeedHistory(const ClientOptions& options, bool json,
                    const std::string& client, const std::string& server,
                    const std::string& since);
int RunProbe(const ClientOptions& options, bool json, const std::string& host,
             const std::string& kind, const std::string& target,
             double deadline_s);

}  // namespace netvigil::cli

#endif  // NETVIGIL_COLLECTOR_CLI_COMMANDS_H_
