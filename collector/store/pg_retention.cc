// PgStore's retention: raw rows folded into hourly aggregates, then deleted.
#include <pqxx/pqxx>

#include "collector/store/pg_store.h"

namespace netvigil::collector {

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
              "    AS worst_ms"
              "  FROM old GROUP BY 1, 2, 3),"
              " ins AS ("
              "  INSERT INTO path_hourly AS h (agent_id, target, hour, runs,"
              "   reached_runs, avg_loss, max_loss, avg_ms, best_ms, worst_ms)"
              "  SELECT agent_id, target, hour, runs, reached, avg_loss,"
              "   max_loss, avg_ms, best_ms, worst_ms FROM agg"
              "  ON CONFLICT (agent_id, target, hour) DO UPDATE SET"
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
              "hi"
              "  FROM old GROUP BY 1, 2, 3, 4),"
              " ins AS ("
              "  INSERT INTO speed_hourly AS h (agent_id, client, server, hour,"
              "   runs, ok_runs, avg_bps, min_bps, max_bps)"
              "  SELECT agent_id, client, server, hour, runs, ok, a, lo, hi"
              "  FROM agg ON CONFLICT (agent_id, client, server, hour) DO "
              "UPDATE"
              "  SET avg_bps = CASE WHEN h.ok_runs + EXCLUDED.ok_runs = 0 THEN "
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
