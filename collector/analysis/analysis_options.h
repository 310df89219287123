// Thresholds and windows of the analysis rules, with their defaults, and the
// parser of the collector config's `analysis:` section. Thread-safe (plain
// data and a pure function).
#ifndef NETVIGIL_COLLECTOR_ANALYSIS_ANALYSIS_OPTIONS_H_
#define NETVIGIL_COLLECTOR_ANALYSIS_ANALYSIS_OPTIONS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/collector_config.h"
#include "yaml-cpp/yaml.h"

namespace netvigil::collector {

struct AnalysisOptions {
  // A new agent learns what is normal for this long before new things alert.
  absl::Duration learning_period = absl::Hours(24);

  // path: destination loss. A run is lossy when at least `min_probes` were
  // sent to the destination, at least `min_lost` of them were lost and the
  // loss is at least `loss_percent`: one lost probe is never loss.
  double path_loss_percent = 10;
  uint32_t path_loss_min_probes = 5;
  uint32_t path_loss_min_lost = 2;
  double path_loss_critical_percent = 50;
  // The last `window` runs' probes also count together: loss that adds up
  // to `loss_percent` opens, and a lossy target clears only when they fall
  // below `clear_percent` (hysteresis against binomial noise).
  uint32_t path_loss_window_runs = 5;
  double path_loss_clear_percent = 5;

  // path: latency above the host's own rolling baseline (median and MAD of
  // the destination's average over the last `window` normal runs).
  uint32_t latency_window_runs = 20;
  uint32_t latency_min_runs = 5;
  double latency_mad_factor = 4;       // slow = above median + factor * MAD
  double latency_min_increase_ms = 5;  // ...and at least this much above
  uint32_t latency_persist_runs = 3;   // alert only after this many in a row

  // path: a different route must hold this many runs in a row.
  uint32_t route_change_runs = 2;

  // speed: below `drop_ratio` x the pair's median of its last `window` normal
  // runs, for `persist` runs in a row.
  uint32_t speed_window_runs = 10;
  uint32_t speed_min_runs = 3;
  double speed_drop_ratio = 0.5;
  uint32_t speed_persist_runs = 2;

  // Cross-host: a host's latest path run counts for this long; a loss seen
  // by one host waits up to `settle` for the other hosts' next runs before
  // it is called that host's own (so an upstream fault is one alert).
  // `confirm_runs`: how many runs of each other host reporting the same
  // target must follow the loss onset (one run at 20% loss often shows no
  // loss, so one run of the others proves little).
  absl::Duration cross_host_window = absl::Minutes(10);
  absl::Duration cross_host_settle = absl::Minutes(5);
  uint32_t path_loss_confirm_runs = 3;
  // Speed results count for this long (the mesh runs once per period); a
  // degraded pair waits up to `speed_settle` for the pairs sharing a host
  // with it to be measured again before it is called a pair (or host)
  // problem, so a host's link or the LAN is one alert.
  absl::Duration speed_window = absl::Hours(3);
  // The settle is a fallback for pairs that go unmeasured: the rules wait
  // for speed_persist_runs measurements of the other pairs, which takes up
  // to about 4 periods when the order moves within the period; 4 h for the
  // default period of 1 h.
  absl::Duration speed_settle = absl::Hours(4);
  // The same new thing on two hosts within this window is one MULTI_HOST
  // alert. A new thing is held this long after its first sighting before
  // its alert opens, so the opened event carries the final scope and hosts
  // (0: open at once, one host per alert). 10 min: two files snapshots and
  // ten sockets snapshots at the default intervals, while a new listener
  // is still news when it opens (it was 1 h when alerts opened at once).
  absl::Duration multi_host_window = absl::Minutes(10);

  // UDP sockets bound to a port in this range are clients, not listeners.
  uint32_t ephemeral_port_min = 32768;
  uint32_t ephemeral_port_max = 60999;

  // Evidence entries kept per alert (the newest).
  uint32_t max_evidence = 20;
};

// Parses the `analysis:` mapping (absent or null: every default). `source`
// names the file in errors, which read "FILE:LINE:COL: analysis.KEY: why".
// Unknown keys are errors. Keys: learning_period, path_loss_percent,
// path_loss_min_probes, path_loss_min_lost, path_loss_critical_percent,
// path_loss_window_runs, path_loss_clear_percent, path_loss_confirm_runs,
// latency_window_runs, latency_min_runs, latency_mad_factor,
// latency_min_increase_ms, latency_persist_runs, route_change_runs,
// speed_window_runs, speed_min_runs, speed_drop_ratio, speed_persist_runs,
// cross_host_window, cross_host_settle, speed_window, speed_settle,
// multi_host_window,
// ephemeral_port_min, ephemeral_port_max, max_evidence.
absl::Status ParseAnalysisOptions(const YAML::Node& node,
                                  const std::string& source,
                                  AnalysisOptions* out);

// The combinations of analysis options and the probe plan that cannot work,
// refused at start: speed_settle or speed_window shorter than
// probes.speed.period (the pairs sharing a host are measured once a period,
// so a slow host link would never be seen as one, only as pair alerts).
// Errors read "FILE:LINE:COL: analysis.KEY (...) ...", at the analysis key
// when the file gives it, else at the plan's field.
absl::Status CheckAnalysisAgainstConfig(
    const AnalysisOptions& options, const netvigil::CollectorConfig& config);

// ParseAnalysisOptions of config.analysis, then CheckAnalysisAgainstConfig.
absl::Status ParseAnalysisOptionsFor(const netvigil::CollectorConfig& config,
                                     AnalysisOptions* out);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_ANALYSIS_ANALYSIS_OPTIONS_H_
