#include "collector/analysis/analysis_options.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "common/yaml_fields.h"

namespace netvigil::collector {

absl::Status ParseAnalysisOptions(const YAML::Node& node,
                                  const std::string& source,
                                  AnalysisOptions* out) {
  if (!node || node.IsNull()) return absl::OkStatus();
  AnalysisOptions o = *out;
  // Errors read "FILE:LINE:COL: analysis.KEY: why" (kPlain), as they did
  // before the config's reader was shared.
  absl::Status error;
  YamlFields r(node, "analysis", source, &error, /*where=*/nullptr,
               YamlFieldNaming::kPlain);
  const absl::Duration kYear = absl::Hours(24 * 366);
  r.Duration("learning_period", absl::ZeroDuration(), kYear,
             &o.learning_period);
  r.Double("path_loss_percent", 0, 100, /*open_lo=*/true, &o.path_loss_percent);
  r.Uint("path_loss_min_probes", 1, 100000, &o.path_loss_min_probes);
  r.Uint("path_loss_min_lost", 1, 100000, &o.path_loss_min_lost);
  r.Double("path_loss_critical_percent", 0, 100, true,
           &o.path_loss_critical_percent);
  r.Uint("path_loss_window_runs", 1, 1000, &o.path_loss_window_runs);
  r.Double("path_loss_clear_percent", 0, 100, false,
           &o.path_loss_clear_percent);
  r.Uint("latency_window_runs", 3, 10000, &o.latency_window_runs);
  r.Uint("latency_min_runs", 2, 10000, &o.latency_min_runs);
  r.Double("latency_mad_factor", 0, 1000, true, &o.latency_mad_factor);
  r.Double("latency_min_increase_ms", 0, 1e6, false,
           &o.latency_min_increase_ms);
  r.Uint("latency_persist_runs", 1, 10000, &o.latency_persist_runs);
  r.Uint("route_change_runs", 1, 10000, &o.route_change_runs);
  r.Uint("speed_window_runs", 2, 10000, &o.speed_window_runs);
  r.Uint("speed_min_runs", 1, 10000, &o.speed_min_runs);
  r.Double("speed_drop_ratio", 0, 1, true, &o.speed_drop_ratio);
  r.Uint("speed_persist_runs", 1, 10000, &o.speed_persist_runs);
  r.Duration("cross_host_window", absl::Seconds(1), kYear,
             &o.cross_host_window);
  r.Duration("cross_host_settle", absl::ZeroDuration(), absl::Hours(24),
             &o.cross_host_settle);
  r.Uint("path_loss_confirm_runs", 1, 100, &o.path_loss_confirm_runs);
  r.Duration("speed_window", absl::Seconds(1), kYear, &o.speed_window);
  r.Duration("speed_settle", absl::ZeroDuration(), kYear, &o.speed_settle);
  r.Duration("multi_host_window", absl::ZeroDuration(), kYear,
             &o.multi_host_window);
  r.Uint("ephemeral_port_min", 1, 65535, &o.ephemeral_port_min);
  r.Uint("ephemeral_port_max", 1, 65535, &o.ephemeral_port_max);
  r.Uint("max_evidence", 1, 1000, &o.max_evidence);
  r.Check(o.path_loss_critical_percent >= o.path_loss_percent,
          "path_loss_critical_percent", "must not be below path_loss_percent");
  r.Check(o.path_loss_clear_percent <= o.path_loss_percent,
          "path_loss_clear_percent", "must not exceed path_loss_percent");
  r.Check(o.latency_min_runs <= o.latency_window_runs, "latency_min_runs",
          "must not exceed latency_window_runs");
  r.Check(o.speed_min_runs <= o.speed_window_runs, "speed_min_runs",
          "must not exceed speed_window_runs");
  r.Check(o.ephemeral_port_min <= o.ephemeral_port_max, "ephemeral_port_max",
          "must not be below ephemeral_port_min");
  r.Finish();
  if (!r.status().ok()) return r.status();
  *out = o;
  return absl::OkStatus();
}

absl::Status CheckAnalysisAgainstConfig(const AnalysisOptions& o,
                                        const netvigil::CollectorConfig& c) {
  // Where each analysis key is (yaml-cpp keeps their marks; the config's
  // map holds the plan's fields).
  std::map<std::string, std::string> where = c.where;
  if (c.analysis && c.analysis.IsMap()) {
    for (const auto& kv : c.analysis) {
      const YAML::Mark m = kv.second.Mark();
      if (m.line >= 0 && kv.first.IsScalar()) {
        where[absl::StrCat("analysis.", kv.first.Scalar())] =
            absl::StrCat(c.source, ":", m.line + 1, ":", m.column + 1);
      }
    }
  }
  // "FILE:LINE:COL: " of analysis.KEY if given, else of the plan's field.
  auto prefix = [&](const std::string& key, const std::string& plan_field) {
    for (const std::string& f : {absl::StrCat("analysis.", key), plan_field}) {
      auto it = where.find(f);
      if (it != where.end()) return absl::StrCat(it->second, ": ");
    }
    return absl::StrCat(c.source, ": ");
  };
  // "line 97" or "default" for the plan's field.
  auto line_of = [&](const std::string& field) -> std::string {
    auto it = where.find(field);
    if (it == where.end()) return "default";
    absl::string_view w = it->second;
    w.remove_prefix(std::min(w.size(), c.source.size() + 1));
    return absl::StrCat("line ", w.substr(0, w.find(':')));
  };
  auto refuse = [&](const std::string& key, absl::Duration value,
                    const std::string& plan_field, const std::string& plan_text,
                    const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix(key, plan_field), "analysis.", key, " (",
                     absl::FormatDuration(value), ") is shorter than ",
                     plan_text, " (", line_of(plan_field), "): ", why));
  };
  if (c.plan.speed().enabled()) {
    const std::string period = absl::StrCat(
        "probes.speed.period ", absl::FormatDuration(c.speed_period));
    if (o.speed_settle < c.speed_period) {
      return refuse(
          "speed_settle", o.speed_settle, "probes.speed.period", period,
          "the pairs sharing a host are measured once a period, so a "
          "degraded pair could not wait for them and a slow host link would "
          "be several pair alerts");
    }
    if (o.speed_window < c.speed_period) {
      return refuse("speed_window", o.speed_window, "probes.speed.period",
                    period,
                    "a speed result would expire before its pair is "
                    "measured again");
    }
  }
  // Not refused: a path.every longer than cross_host_window (or than
  // cross_host_settle / path_loss_confirm_runs). Every per-host path rule
  // still works; only the grouping of one loss seen from several hosts into
  // one alert suffers, and tests and users run path probes hourly on
  // purpose (README, Configuration).
  return absl::OkStatus();
}

absl::Status ParseAnalysisOptionsFor(const netvigil::CollectorConfig& config,
                                     AnalysisOptions* out) {
  AnalysisOptions o = *out;
  if (absl::Status s = ParseAnalysisOptions(config.analysis, config.source, &o);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckAnalysisAgainstConfig(o, config); !s.ok()) {
    return s;
  }
  *out = o;
  return absl::OkStatus();
}

}  // namespace netvigil::collector
