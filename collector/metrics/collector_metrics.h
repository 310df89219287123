// What the collector's /metrics page says: its own health (ingest counters,
// queued bytes, commit latency, refused results, spool gaps) and the latest
// figures per host and target and per pair, taken from the Query service's
// Overview (the answer `netvigil overview` prints), as metric families.
// ResultCounters is thread-safe; BuildFamilies is a pure function.
#ifndef NETVIGIL_COLLECTOR_METRICS_COLLECTOR_METRICS_H_
#define NETVIGIL_COLLECTOR_METRICS_COLLECTOR_METRICS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "collector/ingest/ingest_pipeline.h"
#include "collector/metrics/exposition.h"
#include "netvigil/v1/probes.pb.h"
#include "netvigil/v1/query.pb.h"

namespace netvigil::collector::metrics {

// Counts the gap records among committed results: a gap an agent's spool
// reports (results it dropped) and a result the collector refused (stored
// as a gap whose reason starts "refused: "), by reason. Fed by an ingest
// observer, so a count is of what is committed, each result once.
class ResultCounters {
 public:
  // Distinct refusal reasons kept; the rest count as "other", so a flood of
  // odd results cannot grow the page.
  static constexpr size_t kMaxReasons = 32;

  struct Snapshot {
    int64_t spool_gaps = 0;          // gap records from agents
    int64_t spool_lost_results = 0;  // results those gaps say were dropped
    std::map<std::string, int64_t> refused;  // by reason
  };

  void OnResult(const v1::Result& r) ABSL_LOCKS_EXCLUDED(mu_);
  Snapshot snapshot() const ABSL_LOCKS_EXCLUDED(mu_);

  // A refusal's reason as a bounded label: the field the validation names
  // ("result.path.hops"), list indices dropped ("[]"), at most 64 bytes of
  // [A-Za-z0-9_.[]], else "other".
  static std::string ReasonLabel(const std::string& gap_reason);

 private:
  mutable absl::Mutex mu_;
  Snapshot counts_ ABSL_GUARDED_BY(mu_);
};

// The page's families. `overview` is null when the Query service could not
// answer (the database is down): then only the collector's own figures are
// there, and netvigil_query_up is 0. At most `max_series` samples per
// family (the rest are dropped and counted in
// netvigil_metrics_series_dropped): the series are bounded by the number of
// agents and their targets anyway; this bounds a surprise.
std::vector<Family> BuildFamilies(const v1::OverviewResponse* overview,
                                  const IngestStats& ingest,
                                  const ResultCounters::Snapshot& counters,
                                  size_t max_series = 10000);

}  // namespace netvigil::collector::metrics

#endif  // NETVIGIL_COLLECTOR_METRICS_COLLECTOR_METRICS_H_
