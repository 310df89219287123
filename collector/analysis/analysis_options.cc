#include "collector/analysis/analysis_options.h"

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/proto_time.h"

namespace netvigil::collector {
namespace {

// Reads keys of one mapping; the first error wins.
class Reader {
 public:
  Reader(const YAML::Node& node, const std::string& source)
      : node_(node), source_(source) {
    // yaml-cpp keeps both entries of a repeated key and node[key] answers
    // with the first: a later line that looks like it wins would be ignored.
    std::map<std::string, int> first_line;
    for (const auto& kv : node_) {
      if (!kv.first.IsScalar()) {
        Fail(kv.first, "?", "a key must be a plain word");
        return;
      }
      const std::string key = kv.first.Scalar();
      auto [it, inserted] = first_line.emplace(key, kv.first.Mark().line + 1);
      if (!inserted) {
        Fail(kv.first, key.c_str(),
             absl::StrCat("given twice, on line ", it->second, " and on line ",
                          kv.first.Mark().line + 1, "; keep one"));
        return;
      }
    }
  }

  absl::Status status() const { return status_; }

  void Duration(const char* key, absl::Duration lo, absl::Duration hi,
                absl::Duration* out) {
    YAML::Node n = Get(key);
    if (!n) return;
    absl::Duration d;
    if (!n.IsScalar() || !absl::ParseDuration(n.Scalar(), &d) ||
        n.Scalar() == "inf" || n.Scalar() == "-inf") {
      return Fail(n, key, "expected a duration such as 30s, 5m or 24h");
    }
    if (d < lo || d > hi) {
      return Fail(n, key,
                  absl::StrCat("must be between ", absl::FormatDuration(lo),
                               " and ", absl::FormatDuration(hi), ", got ",
                               absl::FormatDuration(d)));
    }
    *out = d;
  }

  void Uint(const char* key, uint32_t lo, uint32_t hi, uint32_t* out) {
    YAML::Node n = Get(key);
    if (!n) return;
    uint32_t v = 0;
    if (!n.IsScalar() || !absl::SimpleAtoi(n.Scalar(), &v) ||
        n.Scalar().find_first_not_of("0123456789") != std::string::npos) {
      return Fail(n, key, "expected a whole number");
    }
    if (v < lo || v > hi) {
      return Fail(
          n, key,
          absl::StrCat("must be between ", lo, " and ", hi, ", got ", v));
    }
    *out = v;
  }

  // A number in [lo, hi], or in (lo, hi] when `open_lo`.
  void Double(const char* key, double lo, double hi, bool open_lo,
              double* out) {
    YAML::Node n = Get(key);
    if (!n) return;
    double v = 0;
    if (!n.IsScalar() || !absl::SimpleAtod(n.Scalar(), &v) || v != v) {
      return Fail(n, key, "expected a number");
    }
    if ((open_lo ? v <= lo : v < lo) || v > hi) {
      return Fail(n, key,
                  absl::StrCat("must be ", open_lo ? "above " : "at least ", lo,
                               " and at most ", hi, ", got ", n.Scalar()));
    }
    *out = v;
  }

  // Cross-field checks report at the later key.
  void Check(bool ok, const char* key, const std::string& why) {
    if (ok || !status_.ok()) return;
    YAML::Node n = node_[key];
    Fail(n ? n : node_, key, why);
  }

  void Finish() {
    if (!status_.ok()) return;
    for (const auto& kv : node_) {
      const std::string key = kv.first.Scalar();
      if (seen_.count(key) == 0) {
        std::vector<std::string> known(seen_.begin(), seen_.end());
        return Fail(kv.first, key.c_str(),
                    absl::StrCat("unknown field (known here: ",
                                 absl::StrJoin(known, ", "), ")"));
      }
    }
  }

 private:
  // The value of `key`, or an invalid node when absent, null or after an
  // error (a default-constructed YAML::Node would be a valid null node).
  YAML::Node Get(const char* key) {
    seen_.insert(key);
    YAML::Node n = node_[key];
    if (!status_.ok() || !n || n.IsNull()) return node_["\001absent"];
    return n;
  }

  void Fail(const YAML::Node& n, const char* key, const std::string& why) {
    if (!status_.ok()) return;  // the first error wins
    const YAML::Mark m = n.Mark();
    std::string where = source_;
    if (m.line >= 0)
      absl::StrAppend(&where, ":", m.line + 1, ":", m.column + 1);
    status_ = absl::InvalidArgumentError(
        absl::StrCat(where, ": analysis.", key, ": ", why));
  }

  const YAML::Node node_;
  const std::string& source_;
  std::set<std::string> seen_;
  absl::Status status_;
};

}  // namespace

absl::Status ParseAnalysisOptions(const YAML::Node& node,
                                  const std::string& source,
                                  AnalysisOptions* out) {
  if (!node || node.IsNull()) return absl::OkStatus();
  if (!node.IsMap()) {
    const YAML::Mark m = node.Mark();
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", m.line + 1, ":", m.column + 1,
                     ": analysis: expected a mapping of keys"));
  }
  AnalysisOptions o = *out;
  Reader r(node, source);
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
