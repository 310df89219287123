// The dashboard's pages as HTML with server-drawn SVG, from Query service
// responses only (no second model of the data). Pure functions: the same
// input gives the same text; thread-safe. Every string an agent or a peer
// sent is shown through Text() (netvigil's escape notation, then HTML
// escaping), so nothing it holds can become markup.
#ifndef NETVIGIL_COLLECTOR_WEB_PAGES_H_
#define NETVIGIL_COLLECTOR_WEB_PAGES_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netvigil/v1/query.pb.h"

namespace netvigil::collector::web {

// `s` with & < > " ' as character references.
std::string HtmlEscape(absl::string_view s);
// An agent-supplied string as a person reads it (common/escape.h's
// Printable), HTML-escaped.
std::string Text(absl::string_view s);

// The heat map's classes, by the latest result's ratio to the pair's own
// baseline: "ok" >= 0.8, "warn" 0.5 to 0.8, "bad" < 0.5; "fail" when the
// latest test failed or was skipped; "none" with no result or no baseline.
std::string RatioClass(bool has_result, bool failed, double ratio);

// A PathHistory/SpeedHistory answer's resolution as the pages name it:
// "raw", "hourly", "coarse" or "mixed"; unset (AUTO) reads "raw".
std::string ResolutionName(v1::Resolution r);

// The time ranges a page offers, by name ("3h", "1d", "7d", "30d", "1y").
const std::vector<std::pair<std::string, absl::Duration>>& Ranges();

struct HomeData {
  v1::OverviewResponse overview;
  // (client, server) -> the pair's baseline (bit/s): the median of its
  // successful results before the latest one, see WebServer.
  std::map<std::pair<std::string, std::string>, double> baseline_bps;
};
// The home page's body (hosts, open alerts, heat map) without the layout:
// the part the page's script fetches again to update itself.
std::string RenderHomeLive(const HomeData& d);

struct HostTarget {
  std::string target;
  // Raw runs come without hops (PathHistoryRequest.without_hops): a
  // timeline draws only the destination's figures.
  v1::PathHistoryResponse history;
  // When the route changed, oldest first (WebServer, from each run's
  // hops through its RouteCache).
  std::vector<absl::Time> route_changes;
};
struct HostData {
  std::string host;
  std::string range;  // one of Ranges()
  absl::Time since, until;
  bool known = false;  // the Overview lists the host
  v1::AgentInfo agent;
  std::vector<HostTarget> targets;
  v1::ListAlertsResponse alerts;  // the host's, from `since`
  v1::SocketChangesResponse sockets;
  v1::FileAccessResponse files;
};
std::string RenderHost(const HostData& d);

// One run's hops as an mtr table: the page a click on a timeline's point
// opens (/run), so the timeline itself needs no hops.
struct RunData {
  std::string host, target;
  std::string range;  // the timeline's, for the way back
  bool found = false;
  v1::StoredPathRun run;
};
std::string RenderRun(const RunData& d);

struct PairData {
  std::string a, b;
  std::string range;
  absl::Time since, until;
  v1::SpeedHistoryResponse ab, ba;  // a as client, b as client
};
std::string RenderPair(const PairData& d);

struct AlertsData {
  std::string range;
  absl::Time since, until;
  v1::ListAlertsResponse alerts;
};
std::string RenderAlerts(const AlertsData& d);

// The login form; `error` (ours, not user input) shown above it.
std::string RenderLogin(absl::string_view error);

// A whole page: the head (our stylesheet and script only), the navigation
// and `body`. `title` is escaped here.
std::string Layout(absl::string_view title, absl::string_view body,
                   bool logout);

// Our stylesheet and script, served under /static/.
extern const char kAppCss[];
extern const char kAppJs[];

}  // namespace netvigil::collector::web

#endif  // NETVIGIL_COLLECTOR_WEB_PAGES_H_
