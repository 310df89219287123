// The speed rules, as pure functions over internal::SpeedBaseline: per pair
// (below drop_ratio x its median for persist_runs runs) and across pairs
// (every pair through one host = that host's link, every pair = the LAN,
// every host's external tests = the ISP), each wider cause waiting for the
// pairs it would reach to have had their say. No store, no lock, no clock.
// Thread-safe.
#ifndef NETVIGIL_COLLECTOR_ANALYSIS_RULES_SPEED_H_
#define NETVIGIL_COLLECTOR_ANALYSIS_RULES_SPEED_H_

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "collector/analysis/analysis_options.h"
#include "collector/analysis/rules/condition.h"
#include "netvigil/internal/baselines.pb.h"
#include "netvigil/v1/alerts.pb.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::collector::rules {

// One measured direction of a speed test.
struct SpeedDirection {
  std::string key;  // "sender>receiver", "/udp" appended for UDP
  std::string sender, receiver;
  double bps = 0;  // 0: the test gave no figure for it
};

// The directions a successful test measured (its client is `agent` unless
// the result names one; an external server is "external:NAME").
std::vector<SpeedDirection> SpeedDirectionsOf(const std::string& agent,
                                              const v1::SpeedResult& r);

// One measurement of a pair (bps > 0) by `agent` at `now`.
internal::SpeedBaseline UpdateSpeedPair(const internal::SpeedBaseline& before,
                                        const SpeedDirection& d,
                                        const std::string& agent, uint64_t seq,
                                        bool external, absl::Time now,
                                        const AnalysisOptions& options);

// pair key -> baseline.
using SpeedBaselines = std::map<std::string, internal::SpeedBaseline>;

// The speed_low conditions at `now` over every pair's latest measurement;
// `open` is the open alerts (an open LAN, ISP or host alert keeps its pairs
// while they recover one by one).
CrossHostVerdict EvaluateSpeed(const SpeedBaselines& speeds,
                               const std::map<AlertKey, v1::Alert>& open,
                               absl::Time now, const AnalysisOptions& options);

}  // namespace netvigil::collector::rules

#endif  // NETVIGIL_COLLECTOR_ANALYSIS_RULES_SPEED_H_
