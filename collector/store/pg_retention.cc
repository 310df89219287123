// PgStore's retention: raw rows folded into hourly aggregates, then deleted.
#include <pqxx/pqxx>

#include "collector/store/pg_store.h"

namespace netvigil::collector {

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
    absl::Time raw_before, absl::Time hourly_before) {
  if (!ready()) return NotReady();
  const int64_t raw_us = absl::ToUnixMicros(raw_before);
  const int64_t hourly_us = absl::ToUnixMicros(hourly_before);
  RetentionStats stats;
  absl::Status s = WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    // Fold path runs into their hours; an hour split between two passes of
    // the job is merged, weighting the averages by runs.
    stats.path_runs_aggregated =
        tx.exec_params(
              "WITH old AS ("
              "  DELETE FROM path_runs WHERE started_at < to_timestamp($1 / "
              "1e6)"
              "  RETURNING agent_id, target, started_at, destination_reached,"
              "   loss_percent, avg_ms, best_ms, worst_ms),"
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
              // Median and spread (migration 0017, for the Query service).
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
              "  DELETE FROM speed_results"
              "  WHERE started_at < to_timestamp($1 / 1e6)"
              "  RETURNING agent_id, client, server, started_at, outcome,"
              "   forward_bps),"
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
    // Raw results go, except each agent's latest of a kind (the current
    // sockets view reads it) and gaps (the record of what was lost).
    stats.results_deleted =
        tx.exec_params(
              "DELETE FROM results r WHERE r.produced_at < to_timestamp($1 / "
              "1e6)"
              " AND r.kind <> 'gap'"
              " AND NOT EXISTS (SELECT 1 FROM probe_state p"
              "  WHERE p.agent_id = r.agent_id AND p.last_seq = r.seq)",
              raw_us)
            .affected_rows();
    stats.hourly_deleted =
        tx.exec_params(
              "DELETE FROM path_hourly WHERE hour < to_timestamp($1 / 1e6)",
              hourly_us)
            .affected_rows() +
        tx.exec_params(
              "DELETE FROM speed_hourly WHERE hour < to_timestamp($1 / 1e6)",
              hourly_us)
            .affected_rows();
    // Appeared/gone events are the history itself: kept as long as the
    // aggregates.
    stats.events_deleted =
        tx.exec_params(
              "DELETE FROM socket_events WHERE at < to_timestamp($1 / 1e6)",
              hourly_us)
            .affected_rows() +
        tx.exec_params(
              "DELETE FROM file_events WHERE at < to_timestamp($1 / 1e6)",
              hourly_us)
            .affected_rows();
    tx.commit();
  });
  if (!s.ok()) return s;
  return stats;
}

}  // namespace netvigil::collector
