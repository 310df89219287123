// PgStore's retention and partitions (migration 0014): raw path and speed
// rows folded into hourly aggregates, then whole partitions past their
// horizon dropped; the few rows that are not time-partitioned (gone facts,
// resolved alerts, gaps, sent notifications) deleted.
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "collector/store/pg_store.h"
#include "common/pg_time.h"
#include "common/proto_time.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {
namespace {

constexpr const char* kDayTables[] = {"results",       "path_runs",
                                      "speed_results", "socket_events",
                                      "file_events",   "socket_event_sets"};
constexpr const char* kMonthTables[] = {"path_hourly", "speed_hourly"};

// Partitions made this far ahead of the clock, so ingest at midnight never
// waits for one; on demand, a batch's day within this window is made too.
constexpr int64_t kDaysAhead = 3;
constexpr int64_t kOnDemandDaysBack = 31;

int64_t DayOf(absl::Time t) {
  const int64_t s = absl::ToUnixSeconds(t);
  return s >= 0 ? s / 86400 : (s - 86399) / 86400;
}

absl::Time DayStart(absl::Time t) {
  return absl::FromUnixSeconds(DayOf(t) * 86400);
}

// Months since 1970-01 (UTC).
int64_t MonthOf(absl::Time t) {
  const absl::CivilSecond c = absl::ToCivilSecond(t, absl::UTCTimeZone());
  return (c.year() - 1970) * 12 + (c.month() - 1);
}

absl::Time MonthStart(int64_t month) {
  const int64_t y = 1970 + (month >= 0 ? month / 12 : (month - 11) / 12);
  const int64_t m = month - (y - 1970) * 12;
  return absl::FromCivil(absl::CivilMonth(y, m + 1), absl::UTCTimeZone());
}

}  // namespace

absl::Status PgStore::EnsurePartitions(absl::Time from, absl::Time to,
                                       bool with_days) {
  if (!ready()) return NotReady();
  std::vector<int64_t> days, months;
  {
    absl::MutexLock l(&partitions_mu_);
    for (int64_t d = DayOf(from); with_days && d <= DayOf(to); ++d) {
      if (partitions_known_.count(d) == 0) days.push_back(d);
    }
    for (int64_t m = MonthOf(from); m <= MonthOf(to); ++m) {
      if (partitions_known_.count(-1 - m) == 0) months.push_back(m);
    }
  }
  if (days.empty() && months.empty()) return absl::OkStatus();
  int made = 0;
  absl::Status s = WithConnection([&](pqxx::connection& c) {
    // One short transaction per partition: an ATTACH holds its locks only
    // as long as its own statement.
    auto ensure = [&](const char* table, const char* unit, absl::Time t) {
      pqxx::work tx(c);
      if (tx.exec_params1("SELECT nv_ensure_partition($1, $2, "
                          "to_timestamp($3::bigint))",
                          table, unit, absl::ToUnixSeconds(t))[0]
              .as<bool>()) {
        ++made;
      }
      tx.commit();
    };
    for (int64_t d : days) {
      for (const char* t : kDayTables) {
        ensure(t, "day", absl::FromUnixSeconds(d * 86400));
      }
      absl::MutexLock l(&partitions_mu_);
      partitions_known_.insert(d);
    }
    for (int64_t m : months) {
      for (const char* t : kMonthTables) ensure(t, "month", MonthStart(m));
      absl::MutexLock l(&partitions_mu_);
      partitions_known_.insert(-1 - m);
    }
  });
  if (made > 0) spdlog::info("partitions_made count={}", made);
  return s;
}

absl::Status PgStore::EnsurePartitionsFor(
    const std::vector<IngestItem>& items) {
  const int64_t today = DayOf(absl::Now());
  std::set<int64_t> days;
  auto add = [&](const google::protobuf::Timestamp& ts) {
    const int64_t d = DayOf(FromProtoTime(ts));
    if (d >= today - kOnDemandDaysBack && d <= today + kDaysAhead) {
      days.insert(d);
    }
  };
  for (const IngestItem& it : items) {
    const v1::Result& r = *it.result;
    add(r.produced_at());
    if (r.has_path() && r.path().has_started_at()) add(r.path().started_at());
    if (r.has_speed() && r.speed().has_started_at()) {
      add(r.speed().started_at());
    }
    if (r.has_sockets() && r.sockets().has_taken_at()) {
      add(r.sockets().taken_at());
    }
    if (r.has_files() && r.files().has_taken_at()) add(r.files().taken_at());
  }
  {
    absl::MutexLock l(&partitions_mu_);
    for (auto it = days.begin(); it != days.end();) {
      it = partitions_known_.count(*it) ? days.erase(it) : std::next(it);
    }
  }
  for (int64_t d : days) {
    const absl::Time t = absl::FromUnixSeconds(d * 86400);
    if (absl::Status s = EnsurePartitions(t, t); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// The standard deviation of an hour's two parts pooled (n runs, mean m,
// deviation sd each; in an ON CONFLICT SET, `h.` is the stored part and
// EXCLUDED the new one): sqrt(sum n(sd^2 + m^2) / N - mean^2).
#define POOLED_SD(n, m, sd)                                                 \
  "CASE WHEN h." n " + EXCLUDED." n                                         \
  " = 0 THEN NULL ELSE sqrt(greatest(0,"                                    \
  " (h." n " * (COALESCE(h." sd ", 0) ^ 2 + h." m " ^ 2) + EXCLUDED." n     \
  " * (COALESCE(EXCLUDED." sd ", 0) ^ 2 + EXCLUDED." m " ^ 2)) / (h." n     \
  " + EXCLUDED." n ") - ((h." n " * h." m " + EXCLUDED." n " * EXCLUDED." m \
  ") / (h." n " + EXCLUDED." n ")) ^ 2)) END"

absl::StatusOr<Store::RetentionStats> PgStore::ApplyRetention(
    const RetentionPolicy& policy, absl::Time now) {
  if (!ready()) return NotReady();
  // Partitions for the days ahead, and for the months the hourly
  // aggregates of this pass fall in.
  if (absl::Status s = EnsurePartitions(now - absl::Hours(24),
                                        now + absl::Hours(24) * kDaysAhead);
      !s.ok()) {
    return s;
  }
  const absl::Time raw_cut = DayStart(now - policy.raw);
  if (absl::Status s =
          EnsurePartitions(raw_cut - absl::Hours(24 * 2), now, false);
      !s.ok()) {
    return s;
  }
  const int64_t raw_us = absl::ToUnixMicros(raw_cut);
  const int64_t results_us = absl::ToUnixMicros(DayStart(now - policy.results));
  const int64_t events_us = absl::ToUnixMicros(DayStart(now - policy.events));
  const int64_t hourly_us =
      absl::ToUnixMicros(MonthStart(MonthOf(now - policy.hourly)));
  const int64_t facts_us = absl::ToUnixMicros(now - policy.gone_facts);
  const int64_t alerts_us = absl::ToUnixMicros(now - policy.resolved_alerts);
  const int64_t gaps_us = absl::ToUnixMicros(now - policy.gaps);
  const int64_t outbox_us = absl::ToUnixMicros(now - policy.outbox);
  RetentionStats stats;
  absl::Status s = WithConnection([&](pqxx::connection& c) {
    stats = RetentionStats();
    pqxx::work tx(c);
    // Dropping a partition locks its parent for a moment; never queue
    // behind a long reader for longer than this (the next pass retries).
    tx.exec("SET LOCAL lock_timeout = '10s'");
    // Fold the path runs of the days about to go into their hours. An hour
    // already there (a late run that waited in the DEFAULT partition) is
    // merged, weighting the averages by runs.
    stats.path_runs_aggregated =
        tx.exec_params(
              "WITH old AS ("
              "  SELECT agent_id, target, started_at, destination_reached,"
              "   loss_percent, avg_ms, best_ms, worst_ms FROM path_runs"
              "  WHERE started_at < to_timestamp($1 / 1e6)),"
              " agg AS ("
              "  SELECT agent_id, target,"
              "   date_trunc('hour', started_at) AS hour, count(*) AS runs,"
              "   count(*) FILTER (WHERE destination_reached) AS reached,"
              "   avg(loss_percent) AS avg_loss, max(loss_percent) AS max_loss,"
              "   COALESCE(avg(avg_ms) FILTER (WHERE destination_reached), 0)"
              "    AS avg_ms,"
              "   COALESCE(min(best_ms) FILTER (WHERE destination_reached), 0)"
              "    AS best_ms,"
              "   COALESCE(max(worst_ms) FILTER (WHERE destination_reached), 0)"
              "    AS worst_ms,"
              // Median and spread (migration 0015, for the Query service).
              "   percentile_cont(0.5) WITHIN GROUP (ORDER BY avg_ms)"
              "    FILTER (WHERE destination_reached) AS median_ms,"
              "   stddev_pop(avg_ms) FILTER (WHERE destination_reached)"
              "    AS stddev_ms"
              "  FROM old GROUP BY 1, 2, 3),"
              " ins AS ("
              "  INSERT INTO path_hourly AS h (agent_id, target, hour, runs,"
              "   reached_runs, avg_loss, max_loss, avg_ms, best_ms, worst_ms,"
              "   median_ms, stddev_ms)"
              "  SELECT agent_id, target, hour, runs, reached, avg_loss,"
              "   max_loss, avg_ms, best_ms, worst_ms, median_ms, stddev_ms"
              "  FROM agg"
              "  ON CONFLICT (agent_id, target, hour) DO UPDATE SET"
              // An hour split between two passes: medians do not merge, so
              // the part with more runs gives it; spreads pool exactly.
              "   median_ms = CASE WHEN EXCLUDED.reached_runs > h.reached_runs"
              "    THEN EXCLUDED.median_ms ELSE COALESCE(h.median_ms,"
              "    EXCLUDED.median_ms) END,"
              "   stddev_ms = " POOLED_SD("reached_runs", "avg_ms", "stddev_ms") ","
              "   avg_loss = (h.avg_loss * h.runs + EXCLUDED.avg_loss *"
              "    EXCLUDED.runs) / (h.runs + EXCLUDED.runs),"
              "   avg_ms = CASE WHEN h.reached_runs + EXCLUDED.reached_runs = 0"
              "    THEN 0 ELSE (h.avg_ms * h.reached_runs + EXCLUDED.avg_ms *"
              "    EXCLUDED.reached_runs) / (h.reached_runs +"
              "    EXCLUDED.reached_runs) END,"
              "   max_loss = greatest(h.max_loss, EXCLUDED.max_loss),"
              "   best_ms = least(h.best_ms, EXCLUDED.best_ms),"
              "   worst_ms = greatest(h.worst_ms, EXCLUDED.worst_ms),"
              "   runs = h.runs + EXCLUDED.runs,"
              "   reached_runs = h.reached_runs + EXCLUDED.reached_runs"
              "  RETURNING 1)"
              " SELECT COALESCE(sum(runs), 0) FROM agg",
              raw_us)[0][0]
            .as<int64_t>();
    stats.speed_results_aggregated =
        tx.exec_params(
              "WITH old AS ("
              "  SELECT agent_id, client, server, started_at, outcome,"
              "   forward_bps FROM speed_results"
              "  WHERE started_at < to_timestamp($1 / 1e6)),"
              " agg AS ("
              "  SELECT agent_id, client, server,"
              "   date_trunc('hour', started_at) AS hour, count(*) AS runs,"
              "   count(*) FILTER (WHERE outcome = 1) AS ok,"
              "   COALESCE(avg(forward_bps) FILTER (WHERE outcome = 1), 0) AS "
              "a,"
              "   COALESCE(min(forward_bps) FILTER (WHERE outcome = 1), 0) AS "
              "lo,"
              "   COALESCE(max(forward_bps) FILTER (WHERE outcome = 1), 0) AS "
              "hi,"
              "   percentile_cont(0.5) WITHIN GROUP (ORDER BY forward_bps)"
              "    FILTER (WHERE outcome = 1) AS med,"
              "   stddev_pop(forward_bps) FILTER (WHERE outcome = 1) AS sd"
              "  FROM old GROUP BY 1, 2, 3, 4),"
              " ins AS ("
              "  INSERT INTO speed_hourly AS h (agent_id, client, server, hour,"
              "   runs, ok_runs, avg_bps, min_bps, max_bps, median_bps,"
              "   stddev_bps)"
              "  SELECT agent_id, client, server, hour, runs, ok, a, lo, hi,"
              "   med, sd"
              "  FROM agg ON CONFLICT (agent_id, client, server, hour) DO "
              "UPDATE"
              "  SET median_bps = CASE WHEN EXCLUDED.ok_runs > h.ok_runs"
              "    THEN EXCLUDED.median_bps ELSE COALESCE(h.median_bps,"
              "    EXCLUDED.median_bps) END,"
              "   stddev_bps = " POOLED_SD("ok_runs", "avg_bps", "stddev_bps") ","
              "   avg_bps = CASE WHEN h.ok_runs + EXCLUDED.ok_runs = 0 THEN "
              "0"
              "    ELSE (h.avg_bps * h.ok_runs + EXCLUDED.avg_bps *"
              "    EXCLUDED.ok_runs) / (h.ok_runs + EXCLUDED.ok_runs) END,"
              "   min_bps = least(h.min_bps, EXCLUDED.min_bps),"
              "   max_bps = greatest(h.max_bps, EXCLUDED.max_bps),"
              "   runs = h.runs + EXCLUDED.runs,"
              "   ok_runs = h.ok_runs + EXCLUDED.ok_runs"
              "  RETURNING 1)"
              " SELECT COALESCE(sum(runs), 0) FROM agg",
              raw_us)[0][0]
            .as<int64_t>();
    auto drop = [&](const char* table, int64_t before_us) {
      stats.partitions_dropped +=
          tx.exec_params1(
                "SELECT nv_drop_partitions($1, to_timestamp($2 / "
                "1e6))",
                table, before_us)[0]
              .as<int64_t>();
    };
    drop("path_runs", raw_us);
    // Routes (migration 0018) no kept run can name: a run keeps its route's
    // last_used within a day of its start, and every run left starts at or
    // after raw_cut.
    stats.rows_deleted += tx.exec_params(
                                "DELETE FROM path_routes WHERE last_used <"
                                " to_timestamp($1 / 1e6) - interval '1 day'",
                                raw_us)
                              .affected_rows();
    drop("speed_results", raw_us);
    drop("results", results_us);
    drop("socket_events", events_us);
    drop("socket_event_sets", events_us);
    drop("file_events", events_us);
    drop("path_hourly", hourly_us);
    drop("speed_hourly", hourly_us);
    // Facts that went long ago: their events (while kept) still name them;
    // a fact that comes back is new again, with a fresh first_seen.
    stats.facts_deleted = tx.exec_params(
                                // first_seen finds them (0017's index);
                                // last_seen decides. Their programs stay
                                // (socket_programs: a path an agent ran,
                                // a few hundred rows).
                                "DELETE FROM socket_fact_rows WHERE NOT"
                                " present"
                                " AND first_seen < to_timestamp($1 / 1e6)"
                                " AND last_seen < to_timestamp($1 / 1e6)",
                                facts_us)
                              .affected_rows() +
                          tx.exec_params(
                                "DELETE FROM file_facts WHERE NOT present"
                                " AND last_seen < to_timestamp($1 / 1e6)",
                                facts_us)
                              .affected_rows();
    tx.exec_params(
        "DELETE FROM alert_events WHERE alert_id IN (SELECT id FROM alerts"
        " WHERE resolved_at < to_timestamp($1 / 1e6))",
        alerts_us);
    stats.alerts_deleted = tx.exec_params(
                                 "DELETE FROM alerts WHERE resolved_at <"
                                 " to_timestamp($1 / 1e6)",
                                 alerts_us)
                               .affected_rows();
    stats.rows_deleted +=
        tx.exec_params(
              "DELETE FROM gaps WHERE COALESCE(last_at, first_at) <"
              " to_timestamp($1 / 1e6)",
              gaps_us)
            .affected_rows();
    // The notification outbox (migration 0013) where it exists: messages
    // sent or given up; a pending one stays whatever its age.
    if (!tx.exec1("SELECT to_regclass('public.notify_outbox') IS NULL")[0]
             .as<bool>()) {
      stats.rows_deleted +=
          tx.exec_params(
                "DELETE FROM notify_outbox WHERE state <> 'pending'"
                " AND created_at < to_timestamp($1 / 1e6)",
                outbox_us)
              .affected_rows();
    }
    tx.commit();
  });
  if (!s.ok()) return s;
  // Dropped days may be made again by a late row: forget what was made.
  {
    absl::MutexLock l(&partitions_mu_);
    partitions_known_.clear();
  }
  return stats;
}

}  // namespace netvigil::collector
