// The path rules, as pure functions over internal::PathBaseline: per host
// (latency against the host's own median and MAD, route change, and the
// loss judgement each run leaves in its baseline) and across hosts (a
// target losing from most hosts is upstream, naming the first shared lossy
// hop; from one host, that host's link). No store, no lock, no clock: the
// caller passes `now` and applies what comes back. Thread-safe.
#ifndef NETVIGIL_COLLECTOR_ANALYSIS_RULES_PATH_H_
#define NETVIGIL_COLLECTOR_ANALYSIS_RULES_PATH_H_

#include <map>
#include <string>

#include "absl/time/time.h"
#include "collector/analysis/analysis_options.h"
#include "collector/analysis/rules/condition.h"
#include "netvigil/internal/baselines.pb.h"
#include "netvigil/v1/alerts.pb.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::collector::rules {

// What a path run of one agent to one target knows besides the run.
struct PathContext {
  std::string agent;
  uint64_t seq = 0;
  absl::Time now;
  // The agent is learning (path), or this is the target's first run:
  // routes are learnt rather than alerted, and loss is not judged.
  bool learning = false;
  bool has_history = false;   // the target had a baseline before this run
  bool latency_open = false;  // its path_latency alert is open
};

struct PathStep {
  internal::PathBaseline baseline;  // after the run
  RuleOutput out;                   // path_latency and route_change
};

// One run of a usable PathRun (a target, no error, at least one hop).
PathStep UpdatePath(const internal::PathBaseline& before,
                    const v1::PathRun& run, const PathContext& ctx,
                    const AnalysisOptions& options);

// agent -> target -> baseline.
using PathBaselines =
    std::map<std::string, std::map<std::string, internal::PathBaseline>>;

// The path_loss conditions at `now` over every host's latest runs; `open`
// is the open alerts (what an open upstream or host alert already said
// holds it steady while the fault clears).
CrossHostVerdict EvaluatePathLoss(const PathBaselines& paths,
                                  const std::map<AlertKey, v1::Alert>& open,
                                  absl::Time now,
                                  const AnalysisOptions& options);

// Hop address sets per TTL: "a|b" per hop, "*" where nothing answered,
// joined by ','.
std::string RouteOf(const v1::PathRun& run);
// The first TTL (1-based) where two routes differ, or 0 (a TTL that did
// not answer in one of them is no difference).
int RouteDiff(const std::string& a, const std::string& b);
// Whether a lossy target's loss since its onset is surely (95% Wilson lower
// bound) at least path_loss_critical_percent: the path_loss severity.
bool LossIsCritical(const internal::PathBaseline& baseline,
                    const AnalysisOptions& options);

}  // namespace netvigil::collector::rules

#endif  // NETVIGIL_COLLECTOR_ANALYSIS_RULES_PATH_H_
