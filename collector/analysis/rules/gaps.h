// The results_lost rule as a pure function: an agent's gap records add up
// in its internal::GapTotals (count, time span, reasons) and give the
// host's one condition. No store, no lock, no clock. Thread-safe.
#ifndef NETVIGIL_COLLECTOR_ANALYSIS_RULES_GAPS_H_
#define NETVIGIL_COLLECTOR_ANALYSIS_RULES_GAPS_H_

#include <string>

#include "collector/analysis/rules/condition.h"
#include "netvigil/internal/baselines.pb.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::collector::rules {

struct GapStep {
  internal::GapTotals totals;  // `before` with this gap added
  Condition condition;         // the host's results_lost alert, whole
};

// `before` is what the host's open results_lost alert gathered so far
// (empty when none is open).
GapStep AddGap(const internal::GapTotals& before, const std::string& agent,
               uint64_t seq, const v1::Gap& gap);

}  // namespace netvigil::collector::rules

#endif  // NETVIGIL_COLLECTOR_ANALYSIS_RULES_GAPS_H_
