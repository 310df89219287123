// The Query service's answers as text for people: the overview, the speed
// matrix, history tables, alerts, each laid out for a page of kPageWidth
// columns (`netvigil` prints them; goldens in tests/fixtures/cli hold them
// byte for byte), and the proto3 JSON that `--json` prints. Every string an
// agent sent is escaped (common/escape.h) on its way to a cell or a line.
// Thread-safe (pure functions; `now` is passed in).
#ifndef NETVIGIL_COMMON_REPORT_QUERY_VIEWS_H_
#define NETVIGIL_COMMON_REPORT_QUERY_VIEWS_H_

#include <string>

#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "netvigil/v1/query.pb.h"

namespace netvigil::report {

// proto3 JSON mapping, pretty-printed, newline-terminated.
std::string ToJson(const google::protobuf::Message& msg);

std::string RenderAgents(const v1::ListAgentsResponse& resp, absl::Time now);
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
// The latest run as path_report.h's mtr report (HOST: the agent that ran
// it), then with more than one run a history table.
std::string RenderPathHistory(const v1::PathHistoryResponse& resp,
                              absl::Time now);

// One block per alert, the most severe first.
std::string RenderAlerts(const v1::ListAlertsResponse& resp, absl::Time now);
// One line per event (for `alerts --follow`), whole: nothing an agent sent
// can break it.
std::string RenderAlertEvent(const v1::AlertEvent& e, absl::Time now);

}  // namespace netvigil::report

#endif  // NETVIGIL_COMMON_REPORT_QUERY_VIEWS_H_
