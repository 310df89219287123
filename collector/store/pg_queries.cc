// PgStore's history queries (the Query service's reads).
#include <algorithm>
#include <limits>
#include <map>
#include <pqxx/pqxx>
#include <set>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/store/history_mapping.h"
#include "collector/store/path_pack.h"
#include "collector/store/pg_store.h"
#include "common/pg_time.h"
#include "common/wire_kinds.h"

namespace netvigil::collector {
namespace {

// Thrown inside a WithReadConnection body for a clean NOT_FOUND.
struct NotFound {
  std::string message;
};

int64_t AgentIdOrThrow(pqxx::transaction_base& tx, const std::string& agent) {
  pqxx::result r =
      tx.exec_params("SELECT id FROM agents WHERE name = $1", agent);
  if (r.empty()) throw NotFound{absl::StrCat("unknown host '", agent, "'")};
  return r[0][0].as<int64_t>();
}

template <typename T>
absl::StatusOr<T> Run(PgStore& store, bool ready,
                      const std::function<T(pqxx::read_transaction&)>& fn) {
  T out{};
  absl::Status not_found;
  // People's reads: on the read replica when one is configured.
  absl::Status s = store.WithReadConnection([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    try {
      out = fn(tx);
    } catch (const NotFound& e) {
      not_found = absl::NotFoundError(e.message);
    }
  });
  if (!s.ok()) return s;
  if (!not_found.ok()) return not_found;
  return out;
}

v1::SocketFact SocketFactFromRow(const pqxx::row& row) {
  v1::SocketFact f;
  // The column holds the stable name; the wire, the enum.
  f.set_key_kind(SocketKeyKindFromName(row[0].as<std::string>()));
  f.set_proto(static_cast<v1::Transport>(row[1].as<int>()));
  f.set_local_address(row[2].as<std::string>());
  f.set_local_port(row[3].as<int64_t>());
  f.set_remote_address(row[4].as<std::string>());
  f.set_remote_port(row[5].as<int64_t>());
  f.set_exe(row[6].as<std::string>());
  f.set_process_name(row[7].as<std::string>());
  *f.mutable_first_seen() = EpochMicrosToProtoTime(row[8].as<int64_t>());
  *f.mutable_last_seen() = EpochMicrosToProtoTime(row[9].as<int64_t>());
  f.set_present(row[10].as<bool>());
  return f;
}

// One agent's latest run per target (`agent` is the SQL for its id): its
// targets by skipping through path_runs_agent_target_at one target at a
// time, then each target's newest run by reading that index backwards. A
// few index probes per target, however long the history (a DISTINCT ON
// sorted all of it: 1.1 s for 30 days of one-minute runs to 5 targets).
std::string LatestRunsSql(const std::string& agent) {
  return absl::StrCat(
      "WITH RECURSIVE targets (target) AS ("
      "  (SELECT target FROM path_runs WHERE agent_id = ",
      agent,
      "   ORDER BY target LIMIT 1)"
      "  UNION ALL"
      "  SELECT (SELECT p.target FROM path_runs p"
      "   WHERE p.agent_id = ",
      agent,
      " AND p.target > t.target"
      "   ORDER BY p.target LIMIT 1)"
      "  FROM targets t WHERE t.target IS NOT NULL)"
      " SELECT l.target, ",
      EpochMicrosSql("l.started_at"),
      " AS at_us, l.destination_reached, l.loss_percent, l.avg_ms,"
      " l.hop_count, l.error FROM targets t CROSS JOIN LATERAL ("
      "  SELECT * FROM path_runs p WHERE p.agent_id = ",
      agent, "  AND p.target = t.target ORDER BY p.started_at DESC LIMIT 1) l");
}

// A row of LatestRunsSql's columns, starting at column `at`.
v1::PathSummary PathSummaryFromRow(const pqxx::row& row, int at) {
  v1::PathSummary p;
  p.set_target(row[at].as<std::string>());
  *p.mutable_at() = EpochMicrosToProtoTime(row[at + 1].as<int64_t>());
  p.set_destination_reached(row[at + 2].as<bool>());
  p.set_loss_percent(row[at + 3].as<double>());
  p.set_avg_ms(row[at + 4].as<double>());
  p.set_hop_count(row[at + 5].as<int64_t>());
  p.set_error(row[at + 6].as<std::string>());
  return p;
}

// What a history table pair is called: the raw rows and the hourly
// aggregates of one series ($1 the agent's id, $2 the target or server).
struct HistorySeries {
  const char* raw_table;
  const char* raw_time;
  const char* hourly_table;
  const char* key;  // the column $2 matches
};
const HistorySeries kPathSeries{"path_runs", "started_at", "path_hourly",
                                "target"};
const HistorySeries kSpeedSeries{"speed_results", "started_at", "speed_hourly",
                                 "server"};

constexpr int64_t kHourUs = int64_t{3600} * 1'000'000;

int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

// How one history query is answered. Raw rows are read from raw_from_us;
// aggregates (bucket_seconds > 0) from hourly rows before hourly_until_us
// and from raw rows in [bucket_raw_from_us, bucket_raw_until_us) folded
// into hours on the fly.
struct HistoryPlan {
  bool raw = false;
  int64_t raw_from_us = 0;
  int64_t raw_since_us = 0;  // the oldest raw row of the series, if any
  uint32_t bucket_seconds = 0;
  int64_t hourly_until_us = 0;
  int64_t bucket_raw_from_us = 0;
  int64_t bucket_raw_until_us = 0;
};

// Where raw rows end and aggregates begin is where the series' oldest raw
// row is (not now - raw_days): retention runs hourly, so raw rows a little
// older than raw_days are still there, and an hour it split is partly an
// aggregate (before the oldest raw row) and partly raw (after it), each
// counted once.
HistoryPlan PlanHistory(pqxx::read_transaction& tx,
                        const Store::HistoryQuery& q,
                        const HistorySeries& series, int64_t id,
                        const std::string& key) {
  HistoryPlan plan;
  pqxx::result oldest = tx.exec_params(
      absl::StrCat("SELECT ", EpochMicrosSql(series.raw_time), " FROM ",
                   series.raw_table, " WHERE agent_id = $1 AND ", series.key,
                   " = $2 ORDER BY ", series.raw_time, " LIMIT 1"),
      id, key);
  const int64_t boundary =
      oldest.empty() ? q.until_us : oldest[0][0].as<int64_t>();
  plan.raw_since_us = boundary;
  const int64_t raw_from = std::max(q.since_us, boundary);
  const int64_t hourly_until = std::min(q.until_us, boundary);
  if (q.resolution == v1::RESOLUTION_RAW) {
    plan.raw = true;
    plan.raw_from_us = q.since_us;
    return plan;
  }
  // How many points each part holds, to choose between raw rows and
  // buckets: range reads of one series (path runs through
  // path_runs_agent_target_at; speed results are one an hour a pair).
  pqxx::row n = tx.exec_params1(
      absl::StrCat("SELECT (SELECT count(*) FROM ", series.hourly_table,
                   " WHERE agent_id = $1 AND ", series.key,
                   " = $2 AND hour > to_timestamp($3 / 1e6) - interval '1 hour'"
                   " AND hour < to_timestamp($4 / 1e6)),"
                   " (SELECT count(*) FROM ",
                   series.raw_table, " WHERE agent_id = $1 AND ", series.key,
                   " = $2 AND ", series.raw_time,
                   " >= to_timestamp($5 / 1e6) AND ", series.raw_time,
                   " < to_timestamp($6 / 1e6))"),
      id, key, q.since_us, hourly_until, raw_from, q.until_us);
  const int64_t hours = n[0].as<int64_t>();
  const int64_t raws = n[1].as<int64_t>();
  plan.hourly_until_us = hourly_until;
  if (q.resolution == v1::RESOLUTION_AUTO &&
      hours + raws <= static_cast<int64_t>(q.max_points)) {
    plan.raw = raws > 0;
    plan.raw_from_us = raw_from;
    if (hours > 0) plan.bucket_seconds = 3600;
    plan.bucket_raw_from_us = plan.bucket_raw_until_us = q.until_us;
    return plan;
  }
  // HOURLY asked, or too many points: everything in buckets of whole
  // hours, as few hours as keep the answer under max_points.
  // Buckets are aligned to the epoch and the first hour read may start up
  // to an hour before `since`, so count the buckets the range touches.
  const int64_t max_points = std::max<uint32_t>(q.max_points, 1);
  const int64_t first_hour = FloorDiv(q.since_us, kHourUs) - 1;
  const int64_t last_hour = FloorDiv(q.until_us - 1, kHourUs);
  const int64_t span_hours = last_hour - first_hour + 1;
  int64_t per_bucket =
      std::max<int64_t>(1, (span_hours + max_points - 1) / max_points);
  while (FloorDiv(last_hour, per_bucket) - FloorDiv(first_hour, per_bucket) +
             1 >
         max_points) {
    ++per_bucket;
  }
  plan.bucket_seconds = static_cast<uint32_t>(std::min<int64_t>(
      per_bucket * 3600, std::numeric_limits<int32_t>::max()));
  plan.bucket_raw_from_us = raw_from;
  plan.bucket_raw_until_us = q.until_us;
  return plan;
}

v1::Resolution BucketResolution(uint32_t bucket_seconds) {
  return bucket_seconds == 3600 ? v1::RESOLUTION_HOURLY : v1::RESOLUTION_COARSE;
}

template <typename Response>
void SetAnswerResolution(const HistoryPlan& plan, bool has_aggregates,
                         bool has_raw, Response* out) {
  if (has_raw && has_aggregates) {
    out->set_resolution(v1::RESOLUTION_MIXED);
    *out->mutable_raw_since() = EpochMicrosToProtoTime(plan.raw_since_us);
  } else if (has_aggregates) {
    out->set_resolution(BucketResolution(plan.bucket_seconds));
  } else {
    out->set_resolution(v1::RESOLUTION_RAW);
  }
  out->set_bucket_seconds(has_aggregates ? plan.bucket_seconds : 0);
}

// Buckets of $7 seconds (whole hours, aligned to the Unix epoch, so a day
// bucket is a UTC day), the newest $8, newest first: hourly rows in
// (since $3 - 1 h, $4) and raw rows in [$5, $6) folded into hours first.
// Merging hours: runs add up, loss and the mean weigh by runs, the spread
// pools, the median is the median of the hours' medians.
std::string PathBucketsSql() {
  return "WITH h AS ("
         "  SELECT hour, runs, reached_runs, avg_loss, max_loss,"
         "   COALESCE(median_ms, avg_ms) AS median_ms,"
         "   COALESCE(stddev_ms, 0) AS sd_ms, avg_ms, best_ms, worst_ms"
         "  FROM path_hourly WHERE agent_id = $1 AND target = $2"
         "   AND hour > to_timestamp($3 / 1e6) - interval '1 hour'"
         "   AND hour < to_timestamp($4 / 1e6)"
         "  UNION ALL"
         "  SELECT date_trunc('hour', started_at), count(*),"
         "   count(*) FILTER (WHERE destination_reached),"
         "   avg(loss_percent), max(loss_percent),"
         "   COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY avg_ms)"
         "    FILTER (WHERE destination_reached), 0),"
         "   COALESCE(stddev_pop(avg_ms) FILTER (WHERE destination_reached),"
         "    0),"
         "   COALESCE(avg(avg_ms) FILTER (WHERE destination_reached), 0),"
         "   COALESCE(min(best_ms) FILTER (WHERE destination_reached), 0),"
         "   COALESCE(max(worst_ms) FILTER (WHERE destination_reached), 0)"
         "  FROM path_runs WHERE agent_id = $1 AND target = $2"
         "   AND started_at >= to_timestamp($5 / 1e6)"
         "   AND started_at < to_timestamp($6 / 1e6) GROUP BY 1),"
         " b AS (SELECT to_timestamp(floor(extract(epoch FROM hour) / $7)"
         "   * $7) AS bucket, h.* FROM h)"
         " SELECT " +
         EpochMicrosSql("bucket") +
         ", sum(runs), sum(reached_runs),"
         " sum(avg_loss * runs) / greatest(sum(runs), 1), max(max_loss),"
         " COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY median_ms)"
         "  FILTER (WHERE reached_runs > 0), 0),"
         " COALESCE(sqrt(greatest(0, sum(reached_runs * (sd_ms ^ 2 +"
         "  avg_ms ^ 2)) / nullif(sum(reached_runs), 0) - (sum(reached_runs"
         "  * avg_ms) / nullif(sum(reached_runs), 0)) ^ 2)), 0),"
         " COALESCE(sum(reached_runs * avg_ms) / nullif(sum(reached_runs), 0),"
         "  0),"
         " COALESCE(min(best_ms) FILTER (WHERE reached_runs > 0), 0),"
         " COALESCE(max(worst_ms) FILTER (WHERE reached_runs > 0), 0)"
         " FROM b GROUP BY bucket ORDER BY bucket DESC LIMIT $8";
}

// The same for a pair's speed tests: what the server received, over the
// tests that succeeded (outcome 1).
std::string SpeedBucketsSql() {
  return "WITH h AS ("
         "  SELECT hour, runs, ok_runs, COALESCE(median_bps, avg_bps) AS med,"
         "   COALESCE(stddev_bps, 0) AS sd, avg_bps, min_bps, max_bps"
         "  FROM speed_hourly WHERE agent_id = $1 AND server = $2"
         "   AND hour > to_timestamp($3 / 1e6) - interval '1 hour'"
         "   AND hour < to_timestamp($4 / 1e6)"
         "  UNION ALL"
         "  SELECT date_trunc('hour', started_at), count(*),"
         "   count(*) FILTER (WHERE outcome = 1),"
         "   COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY forward_bps)"
         "    FILTER (WHERE outcome = 1), 0),"
         "   COALESCE(stddev_pop(forward_bps) FILTER (WHERE outcome = 1), 0),"
         "   COALESCE(avg(forward_bps) FILTER (WHERE outcome = 1), 0),"
         "   COALESCE(min(forward_bps) FILTER (WHERE outcome = 1), 0),"
         "   COALESCE(max(forward_bps) FILTER (WHERE outcome = 1), 0)"
         "  FROM speed_results WHERE agent_id = $1 AND server = $2"
         "   AND started_at >= to_timestamp($5 / 1e6)"
         "   AND started_at < to_timestamp($6 / 1e6) GROUP BY 1),"
         " b AS (SELECT to_timestamp(floor(extract(epoch FROM hour) / $7)"
         "   * $7) AS bucket, h.* FROM h)"
         " SELECT " +
         EpochMicrosSql("bucket") +
         ", sum(runs), sum(ok_runs),"
         " COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY med)"
         "  FILTER (WHERE ok_runs > 0), 0),"
         " COALESCE(sqrt(greatest(0, sum(ok_runs * (sd ^ 2 + avg_bps ^ 2))"
         "  / nullif(sum(ok_runs), 0) - (sum(ok_runs * avg_bps)"
         "  / nullif(sum(ok_runs), 0)) ^ 2)), 0),"
         " COALESCE(sum(ok_runs * avg_bps) / nullif(sum(ok_runs), 0), 0),"
         " COALESCE(min(min_bps) FILTER (WHERE ok_runs > 0), 0),"
         " COALESCE(max(max_bps) FILTER (WHERE ok_runs > 0), 0)"
         " FROM b GROUP BY bucket ORDER BY bucket DESC LIMIT $8";
}

// The routes `runs` name (route_id), each once, into `out.routes`: what a
// timeline needs to mark route changes without a run's hops. A run whose
// route retention has just deleted (a late run of a day about to go) names
// none.
void AddRoutes(pqxx::read_transaction& tx, int64_t agent_id,
               std::vector<v1::StoredPathRun>& runs,
               v1::PathHistoryResponse& out) {
  std::set<int64_t> ids;
  for (const v1::StoredPathRun& s : runs) {
    if (s.route_id() != 0) ids.insert(static_cast<int64_t>(s.route_id()));
  }
  if (ids.empty()) return;
  for (const auto& row : tx.exec_params(
           "SELECT id, hops FROM path_routes WHERE agent_id = $1"
           " AND id = ANY($2::bigint[]) ORDER BY id",
           agent_id,
           PgIntArray(std::vector<int64_t>(ids.begin(), ids.end())))) {
    const pqxx::binarystring bytes(row[1]);
    absl::StatusOr<std::vector<v1::PathHop>> hops =
        history::UnpackPathRoute(std::string_view(
            reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    if (!hops.ok()) {
      throw std::runtime_error(absl::StrCat("path route ", row[0].as<int64_t>(),
                                            ": ", hops.status().message()));
    }
    v1::PathRoute* r = out.add_routes();
    r->set_id(row[0].as<int64_t>());
    for (v1::PathHop& h : *hops) *r->add_hops() = std::move(h);
    ids.erase(row[0].as<int64_t>());
  }
  for (v1::StoredPathRun& s : runs) {
    if (ids.count(static_cast<int64_t>(s.route_id())) > 0) s.clear_route_id();
  }
}

// The newest `limit` runs of one target in [from, until) with their hops,
// oldest first: path_runs_agent_target_at read backwards. A run stored
// since migration 0018 is rebuilt from its row, its route (each route read
// and unpacked once) and its packed figures; one stored before, or one the
// pack could not hold, from its result's payload fetched by primary key (a
// subquery: a join let the planner add a sort and a cache of the payloads
// that never hits). A run whose payload or route is gone is left out; an
// unreadable route or figures fail the read naming the run.
std::vector<v1::StoredPathRun> PathRunsWithHops(
    pqxx::read_transaction& tx, int64_t id, const std::string& agent,
    const std::string& target, int64_t from_us, int64_t until_us,
    uint32_t limit) {
  pqxx::result rows = tx.exec_params(
      "SELECT x.seq, x.route_id, x.figures, CASE WHEN x.figures IS NULL THEN"
      "  (SELECT r.payload FROM results r"
      "   WHERE r.agent_id = $1 AND r.seq = x.seq) END, " +
          EpochMicrosSql("x.started_at") +
          ", x.resolved_address, x.destination_reached, x.error FROM ("
          "  SELECT seq, started_at, route_id, figures, resolved_address,"
          "   destination_reached, error FROM path_runs"
          "  WHERE agent_id = $1 AND target = $2"
          "   AND started_at >= to_timestamp($3 / 1e6)"
          "   AND started_at < to_timestamp($4 / 1e6)"
          "  ORDER BY started_at DESC LIMIT $5) x"
          " ORDER BY x.started_at DESC",
      id, target, from_us, until_us, static_cast<int64_t>(limit));
  std::map<int64_t, std::vector<v1::PathHop>> routes;
  std::set<int64_t> found;
  for (const auto& row : rows) {
    if (!row[2].is_null()) routes[row[1].as<int64_t>()];
  }
  if (!routes.empty()) {
    std::vector<int64_t> ids;
    for (const auto& [route, hops] : routes) ids.push_back(route);
    for (const auto& row :
         tx.exec_params("SELECT id, hops FROM path_routes"
                        " WHERE agent_id = $1 AND id = ANY($2::bigint[])",
                        id, PgIntArray(ids))) {
      const pqxx::binarystring bytes(row[1]);
      absl::StatusOr<std::vector<v1::PathHop>> hops =
          history::UnpackPathRoute(std::string_view(
              reinterpret_cast<const char*>(bytes.data()), bytes.size()));
      if (!hops.ok()) {
        throw std::runtime_error(absl::StrCat("path route ",
                                              row[0].as<int64_t>(), ": ",
                                              hops.status().message()));
      }
      routes[row[0].as<int64_t>()] = *std::move(hops);
      found.insert(row[0].as<int64_t>());
    }
  }
  std::vector<v1::StoredPathRun> out;
  // Returned oldest first.
  for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
    const pqxx::row& row = *it;
    v1::StoredPathRun s;
    s.set_agent(agent);
    s.set_seq(row[0].as<int64_t>());
    s.set_resolution(v1::RESOLUTION_RAW);
    if (!row[2].is_null()) {
      v1::PathRun* run = s.mutable_run();
      run->set_target(target);
      *run->mutable_started_at() = EpochMicrosToProtoTime(row[4].as<int64_t>());
      run->set_resolved_address(row[5].as<std::string>());
      run->set_destination_reached(row[6].as<bool>());
      run->set_error(row[7].as<std::string>());
      const int64_t route = row[1].as<int64_t>();
      const pqxx::binarystring bytes(row[2]);
      // A route retention deleted while a late run (of a day retention is
      // about to drop) took it: left out, as a run whose result is gone.
      if (found.count(route) == 0) continue;
      absl::Status st = history::UnpackPathFigures(
          std::string_view(reinterpret_cast<const char*>(bytes.data()),
                           bytes.size()),
          routes[route], *run);
      if (!st.ok()) {
        throw std::runtime_error(absl::StrCat("path run ", s.seq(), " (route ",
                                              route, "): ", st.message()));
      }
    } else {
      if (row[3].is_null()) continue;  // its result is gone
      v1::Result r;
      pqxx::binarystring bytes(row[3]);
      if (!r.ParseFromArray(bytes.data(), bytes.size())) continue;
      *s.mutable_run() = std::move(*r.mutable_path());
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

#define NV_REQUIRE_READY() \
  if (!ready()) return NotReady()

absl::StatusOr<std::vector<v1::PathSummary>> PgStore::LatestPaths(
    const std::string& agent) {
  NV_REQUIRE_READY();
  return Run<std::vector<v1::PathSummary>>(
      *this, true, [&](pqxx::read_transaction& tx) {
        const int64_t id = AgentIdOrThrow(tx, agent);
        std::vector<v1::PathSummary> out;
        for (const auto& row :
             tx.exec_params(LatestRunsSql("$1") + " ORDER BY l.target", id)) {
          out.push_back(PathSummaryFromRow(row, 0));
        }
        return out;
      });
}

absl::StatusOr<std::map<std::string, std::vector<v1::PathSummary>>>
PgStore::LatestPathsOfAll() {
  NV_REQUIRE_READY();
  using Out = std::map<std::string, std::vector<v1::PathSummary>>;
  return Run<Out>(*this, true, [&](pqxx::read_transaction& tx) {
    Out out;
    for (const auto& row :
         tx.exec("SELECT a.name, x.* FROM agents a CROSS JOIN LATERAL (" +
                 LatestRunsSql("a.id") + ") x ORDER BY a.name, x.target")) {
      out[row[0].as<std::string>()].push_back(PathSummaryFromRow(row, 1));
    }
    return out;
  });
}

absl::StatusOr<v1::PathHistoryResponse> PgStore::PathHistory(
    const std::string& agent, const std::string& target,
    const HistoryQuery& q) {
  NV_REQUIRE_READY();
  return Run<v1::PathHistoryResponse>(
      *this, true, [&](pqxx::read_transaction& tx) {
        const int64_t id = AgentIdOrThrow(tx, agent);
        if (tx.exec_params("SELECT 1 FROM path_runs WHERE agent_id = $1 AND"
                           " target = $2 LIMIT 1",
                           id, target)
                .empty() &&
            tx.exec_params("SELECT 1 FROM path_hourly WHERE agent_id = $1 AND"
                           " target = $2 LIMIT 1",
                           id, target)
                .empty()) {
          throw NotFound{absl::StrCat(
              "host '", agent, "' has no path runs to target '", target, "'")};
        }
        // A bounded index read: starting a parallel worker (which the
        // planner picks for a day of runs) costs more than it saves.
        tx.exec("SET LOCAL max_parallel_workers_per_gather = 0");
        const HistoryPlan plan = PlanHistory(tx, q, kPathSeries, id, target);
        v1::PathHistoryResponse out;
        std::vector<v1::StoredPathRun> raw;
        if (plan.raw && q.without_hops) {
          // The runs' own rows only (path_runs_agent_target_at read
          // backwards, then the heap): no result payload is fetched or
          // parsed, which is most of a day's cost.
          pqxx::result rows = tx.exec_params(
              "SELECT seq, " + EpochMicrosSql("started_at") +
                  ", resolved_address, destination_reached, loss_percent,"
                  " avg_ms, best_ms, worst_ms, error, route_id FROM path_runs"
                  " WHERE agent_id = $1 AND target = $2"
                  "  AND started_at >= to_timestamp($3 / 1e6)"
                  "  AND started_at < to_timestamp($4 / 1e6)"
                  " ORDER BY started_at DESC LIMIT $5",
              id, target, plan.raw_from_us, q.until_us,
              static_cast<int64_t>(q.limit));
          for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
            const pqxx::row& row = *it;
            v1::StoredPathRun s;
            s.set_agent(agent);
            s.set_seq(row[0].as<int64_t>());
            s.set_resolution(v1::RESOLUTION_RAW);
            v1::PathRun* run = s.mutable_run();
            run->set_target(target);
            *run->mutable_started_at() =
                EpochMicrosToProtoTime(row[1].as<int64_t>());
            run->set_resolved_address(row[2].as<std::string>());
            run->set_destination_reached(row[3].as<bool>());
            v1::PathHop* d = run->mutable_destination();
            d->set_loss_percent(row[4].as<double>());
            d->set_avg_ms(row[5].as<double>());
            d->set_best_ms(row[6].as<double>());
            d->set_worst_ms(row[7].as<double>());
            run->set_error(row[8].as<std::string>());
            if (q.with_routes && !row[9].is_null()) {
              s.set_route_id(row[9].as<int64_t>());
            }
            raw.push_back(std::move(s));
          }
          if (q.with_routes) AddRoutes(tx, id, raw, out);
        } else if (plan.raw) {
          raw = PathRunsWithHops(tx, id, agent, target, plan.raw_from_us,
                                 q.until_us, q.limit);
        }
        if (plan.bucket_seconds > 0 &&
            raw.size() < static_cast<size_t>(q.limit)) {
          const int64_t want = q.limit - raw.size();
          pqxx::result rows = tx.exec_params(
              PathBucketsSql(), id, target, q.since_us, plan.hourly_until_us,
              plan.bucket_raw_from_us, plan.bucket_raw_until_us,
              plan.bucket_seconds, want);
          for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
            const pqxx::row& row = *it;
            v1::StoredPathRun* s = out.add_runs();
            s->set_agent(agent);
            s->mutable_run()->set_target(target);
            *s->mutable_run()->mutable_started_at() =
                EpochMicrosToProtoTime(row[0].as<int64_t>());
            s->set_resolution(BucketResolution(plan.bucket_seconds));
            v1::PathAggregate* a = s->mutable_aggregate();
            a->set_bucket_seconds(plan.bucket_seconds);
            a->set_runs(row[1].as<int64_t>());
            a->set_reached_runs(row[2].as<int64_t>());
            a->set_avg_loss_percent(row[3].as<double>());
            a->set_max_loss_percent(row[4].as<double>());
            a->set_median_ms(row[5].as<double>());
            a->set_spread_ms(row[6].as<double>());
            a->set_avg_ms(row[7].as<double>());
            a->set_best_ms(row[8].as<double>());
            a->set_worst_ms(row[9].as<double>());
          }
        }
        const bool has_aggregates = out.runs_size() > 0;
        for (auto& s : raw) *out.add_runs() = std::move(s);
        SetAnswerResolution(plan, has_aggregates, !raw.empty(), &out);
        return out;
      });
}

absl::StatusOr<v1::CurrentSocketsResponse> PgStore::CurrentSockets(
    const std::string& agent) {
  NV_REQUIRE_READY();
  return Run<v1::CurrentSocketsResponse>(
      *this, true, [&](pqxx::read_transaction& tx) {
        const int64_t id = AgentIdOrThrow(tx, agent);
        v1::CurrentSocketsResponse out;
        // The facts, not the latest payload: most snapshots keep none
        // (README "Storage"); `sockets` stays empty.
        pqxx::result latest = tx.exec_params(
            "SELECT " + EpochMicrosSql("last_at") +
                " FROM probe_state WHERE agent_id = $1 AND kind = 'sockets'",
            id);
        const int64_t last_at = latest.empty() ? 0 : latest[0][0].as<int64_t>();
        if (last_at != 0) {
          *out.mutable_taken_at() = EpochMicrosToProtoTime(last_at);
        }
        for (const auto& row : tx.exec_params(
                 "SELECT key_kind, proto, local_address, local_port,"
                 " remote_address, remote_port, exe, process_name, " +
                     EpochMicrosSql("first_seen") + ", " +
                     EpochMicrosSql("last_seen") +
                     ", present FROM socket_facts"
                     " WHERE agent_id = $1 AND present"
                     " ORDER BY key_kind, exe, local_port, remote_address",
                 id)) {
          v1::SocketFact f = SocketFactFromRow(row);
          if (last_at != 0)
            *f.mutable_last_seen() = EpochMicrosToProtoTime(last_at);
          *out.add_facts() = std::move(f);
        }
        return out;
      });
}

absl::StatusOr<v1::SocketChangesResponse> PgStore::SocketChanges(
    const std::string& agent, int64_t since_us) {
  NV_REQUIRE_READY();
  return Run<v1::SocketChangesResponse>(
      *this, true, [&](pqxx::read_transaction& tx) {
        const int64_t id = AgentIdOrThrow(tx, agent);
        // Rows written before migration 0016, one an event, until
        // retention drops them.
        std::vector<v1::SocketChange> old;
        for (const auto& row : tx.exec_params(
                 "SELECT e.key_kind, e.proto, e.local_address, e.local_port,"
                 " e.remote_address, e.remote_port, e.exe, e.process_name, " +
                     EpochMicrosSql("COALESCE(f.first_seen, e.at)") + ", " +
                     EpochMicrosSql("COALESCE(f.last_seen, e.at)") +
                     ", COALESCE(f.present, false), " + EpochMicrosSql("e.at") +
                     // The fact by its key in the tables of migration
                     // 0019 (through the socket_facts view the kind is an
                     // expression the key index cannot use).
                     ", e.change FROM socket_events e LEFT JOIN LATERAL"
                     " (SELECT f.first_seen, f.last_seen, f.present"
                     "  FROM socket_programs p JOIN socket_fact_rows f"
                     "  ON f.agent_id = p.agent_id AND f.program_id = p.id"
                     "  WHERE p.agent_id = e.agent_id AND p.exe = e.exe"
                     "  AND f.kind = (CASE e.key_kind WHEN 'listener' THEN 'l'"
                     "   WHEN 'remote' THEN 'r' WHEN 'inbound' THEN 'i'"
                     "   END)::\"char\" AND f.proto = e.proto"
                     "  AND f.local_address = e.local_address"
                     "  AND f.local_port = e.local_port"
                     "  AND f.remote_address = e.remote_address"
                     "  AND f.remote_port = e.remote_port) f ON true"
                     " WHERE e.agent_id = $1 AND e.at >= to_timestamp($2 / 1e6)"
                     " ORDER BY e.at, e.id",
                 id, since_us)) {
          v1::SocketChange& c = old.emplace_back();
          *c.mutable_fact() = SocketFactFromRow(row);
          *c.mutable_at() = EpochMicrosToProtoTime(row[11].as<int64_t>());
          c.set_change(row[12].as<std::string>());
        }
        // Packed rows (one a snapshot), then their facts' times in one
        // query; an event whose fact retention deleted reads as the old
        // rows did: first and last seen at the event, not present.
        std::vector<std::pair<int64_t, history::PackedSocketEvent>> packed;
        for (const auto& row : tx.exec_params(
                 "SELECT " + EpochMicrosSql("at") +
                     ", changes FROM socket_event_sets WHERE agent_id = $1"
                     " AND at >= to_timestamp($2 / 1e6) ORDER BY at, seq",
                 id, since_us)) {
          const pqxx::binarystring bytes(row[1]);
          absl::StatusOr<std::vector<history::PackedSocketEvent>> events =
              history::UnpackSocketEvents(std::string_view(
                  reinterpret_cast<const char*>(bytes.data()), bytes.size()));
          if (!events.ok()) {
            throw std::runtime_error(std::string(events.status().message()));
          }
          const int64_t at = row[0].as<int64_t>();
          for (history::PackedSocketEvent& e : *events) {
            packed.emplace_back(at, std::move(e));
          }
        }
        using Key = std::tuple<std::string, int64_t, std::string, int64_t,
                               std::string, int64_t, std::string>;
        std::map<Key, std::tuple<int64_t, int64_t, bool>> facts;
        if (!packed.empty()) {
          // Each key once: a fact's appeared and gone events name it twice.
          std::set<Key> wanted;
          for (const auto& [at, e] : packed) {
            wanted.emplace(e.kind, e.proto, e.local_address, e.local_port,
                           e.remote_address, e.remote_port, e.exe);
          }
          history::SocketColumns keys;
          for (const auto& [kind, proto, laddr, lport, raddr, rport, exe] :
               wanted) {
            keys.kind.push_back(kind);
            keys.proto.push_back(proto);
            keys.laddr.push_back(laddr);
            keys.lport.push_back(lport);
            keys.raddr.push_back(raddr);
            keys.rport.push_back(rport);
            keys.exe.push_back(exe);
          }
          for (const auto& row : tx.exec_params(
                   "SELECT DISTINCT c.key_kind, c.proto, c.local_address,"
                   " c.local_port, c.remote_address, c.remote_port, c.exe, " +
                       EpochMicrosSql("f.first_seen") + ", " +
                       EpochMicrosSql("f.last_seen") +
                       ", f.present FROM unnest($2::text[], $3::smallint[],"
                       " $4::text[], $5::int[], $6::text[], $7::int[],"
                       " $8::text[]) AS c(key_kind, proto, local_address,"
                       " local_port, remote_address, remote_port, exe)"
                       // Migration 0019's tables, by the key index.
                       " JOIN socket_programs p ON p.agent_id = $1"
                       " AND p.exe = c.exe"
                       " JOIN socket_fact_rows f ON f.agent_id = $1"
                       " AND f.kind = (CASE c.key_kind WHEN 'listener'"
                       " THEN 'l' WHEN 'remote' THEN 'r' WHEN 'inbound'"
                       " THEN 'i' END)::\"char\" AND f.proto = c.proto"
                       " AND f.local_address = c.local_address"
                       " AND f.local_port = c.local_port"
                       " AND f.remote_address = c.remote_address"
                       " AND f.remote_port = c.remote_port"
                       " AND f.program_id = p.id",
                   id, PgTextArray(keys.kind), PgIntArray(keys.proto),
                   PgTextArray(keys.laddr), PgIntArray(keys.lport),
                   PgTextArray(keys.raddr), PgIntArray(keys.rport),
                   PgTextArray(keys.exe))) {
            facts[{row[0].as<std::string>(), row[1].as<int64_t>(),
                   row[2].as<std::string>(), row[3].as<int64_t>(),
                   row[4].as<std::string>(), row[5].as<int64_t>(),
                   row[6].as<std::string>()}] = {
                row[7].as<int64_t>(), row[8].as<int64_t>(), row[9].as<bool>()};
          }
        }
        // Both in time order; at the same time the old rows first (they
        // were written first).
        v1::SocketChangesResponse out;
        size_t i = 0;
        for (const auto& [at, e] : packed) {
          for (; i < old.size() && ProtoTimeToEpochMicros(old[i].at()) <= at;
               ++i) {
            *out.add_changes() = std::move(old[i]);
          }
          v1::SocketChange* c = out.add_changes();
          v1::SocketFact* f = c->mutable_fact();
          f->set_key_kind(SocketKeyKindFromName(e.kind));
          f->set_proto(static_cast<v1::Transport>(e.proto));
          f->set_local_address(e.local_address);
          f->set_local_port(e.local_port);
          f->set_remote_address(e.remote_address);
          f->set_remote_port(e.remote_port);
          f->set_exe(e.exe);
          f->set_process_name(e.process_name);
          auto it = facts.find({e.kind, e.proto, e.local_address, e.local_port,
                                e.remote_address, e.remote_port, e.exe});
          const bool known = it != facts.end();
          *f->mutable_first_seen() =
              EpochMicrosToProtoTime(known ? std::get<0>(it->second) : at);
          *f->mutable_last_seen() =
              EpochMicrosToProtoTime(known ? std::get<1>(it->second) : at);
          f->set_present(known && std::get<2>(it->second));
          *c->mutable_at() = EpochMicrosToProtoTime(at);
          c->set_change(e.change);
        }
        for (; i < old.size(); ++i) *out.add_changes() = std::move(old[i]);
        return out;
      });
}

absl::StatusOr<v1::FileAccessResponse> PgStore::FileAccess(
    const std::string& agent, int64_t since_us) {
  NV_REQUIRE_READY();
  return Run<
      v1::FileAccessResponse>(*this, true, [&](pqxx::read_transaction& tx) {
    const int64_t id = AgentIdOrThrow(tx, agent);
    v1::FileAccessResponse out;
    pqxx::result last = tx.exec_params(
        "SELECT " + EpochMicrosSql("last_at") +
            " FROM probe_state WHERE agent_id = $1 AND kind = 'files'",
        id);
    const int64_t last_at = last.empty() ? 0 : last[0][0].as<int64_t>();
    for (const auto& row : tx.exec_params(
             "SELECT exe, path, kind, uid, deleted, process_name, " +
                 EpochMicrosSql("first_seen") + ", " +
                 EpochMicrosSql("last_seen") +
                 ", present, exe_deleted FROM file_facts WHERE agent_id = $1"
                 " AND (present OR last_seen >= to_timestamp($2 / 1e6))"
                 " ORDER BY exe, path, kind",
             id, since_us)) {
      v1::FileFact* f = out.add_facts();
      f->set_exe(row[0].as<std::string>());
      f->set_path(row[1].as<std::string>());
      f->set_kind(static_cast<v1::FileAccessKind>(row[2].as<int>()));
      f->set_uid(row[3].as<int64_t>());
      f->set_deleted(row[4].as<bool>());
      f->set_process_name(row[5].as<std::string>());
      *f->mutable_first_seen() = EpochMicrosToProtoTime(row[6].as<int64_t>());
      f->set_present(row[8].as<bool>());
      f->set_exe_deleted(row[9].as<bool>());
      *f->mutable_last_seen() = EpochMicrosToProtoTime(
          f->present() && last_at != 0 ? last_at : row[7].as<int64_t>());
    }
    return out;
  });
}

absl::StatusOr<v1::SpeedMatrixResponse> PgStore::SpeedMatrix() {
  NV_REQUIRE_READY();
  return Run<v1::SpeedMatrixResponse>(
      *this, true, [&](pqxx::read_transaction& tx) {
        v1::SpeedMatrixResponse out;
        for (const auto& row :
             tx.exec("SELECT name FROM agents ORDER BY name")) {
          out.add_hosts(row[0].as<std::string>());
        }
        for (const auto& row :
             // The LAN pairs by skipping through speed_results_lan_pair_at
             // one pair at a time, then each pair's newest result from the
             // same index read backwards (not a sort of every result).
             tx.exec("WITH RECURSIVE pairs (client, server) AS ("
                     "  (SELECT client, server FROM speed_results"
                     "   WHERE NOT external ORDER BY client, server LIMIT 1)"
                     "  UNION ALL"
                     "  SELECT n.client, n.server FROM pairs p"
                     "  CROSS JOIN LATERAL (SELECT s.client, s.server"
                     "   FROM speed_results s WHERE NOT s.external"
                     "   AND (s.client, s.server) > (p.client, p.server)"
                     "   ORDER BY s.client, s.server LIMIT 1) n)"
                     " SELECT l.client, l.server, l.forward_bps, " +
                     EpochMicrosSql("l.started_at") +
                     ", l.outcome, l.error FROM pairs p CROSS JOIN LATERAL ("
                     "  SELECT * FROM speed_results s WHERE NOT s.external"
                     "  AND s.client = p.client AND s.server = p.server"
                     "  ORDER BY s.started_at DESC LIMIT 1) l"
                     " ORDER BY l.client, l.server")) {
          v1::SpeedCell* c = out.add_cells();
          c->set_client(row[0].as<std::string>());
          c->set_server(row[1].as<std::string>());
          c->set_bps(row[2].as<double>());
          *c->mutable_at() = EpochMicrosToProtoTime(row[3].as<int64_t>());
          c->set_outcome(static_cast<v1::SpeedOutcome>(row[4].as<int>()));
          c->set_error(row[5].as<std::string>());
        }
        return out;
      });
}

absl::StatusOr<v1::SpeedHistoryResponse> PgStore::SpeedHistory(
    const std::string& client, const std::string& server,
    const HistoryQuery& q) {
  NV_REQUIRE_READY();
  return Run<v1::SpeedHistoryResponse>(
      *this, true, [&](pqxx::read_transaction& tx) {
        const int64_t id = AgentIdOrThrow(tx, client);
        const HistoryPlan plan = PlanHistory(tx, q, kSpeedSeries, id, server);
        v1::SpeedHistoryResponse out;
        std::vector<v1::SpeedResult> raw;
        if (plan.raw) {
          for (const auto& row : tx.exec_params(
                   "SELECT payload FROM ("
                   "  SELECT r.payload, s.started_at FROM speed_results s"
                   "  JOIN results r ON r.agent_id = s.agent_id"
                   "   AND r.seq = s.seq"
                   "  WHERE s.agent_id = $1 AND s.server = $2"
                   "   AND s.started_at >= to_timestamp($3 / 1e6)"
                   "   AND s.started_at < to_timestamp($4 / 1e6)"
                   "  ORDER BY s.started_at DESC LIMIT $5) x"
                   " ORDER BY started_at",
                   id, server, plan.raw_from_us, q.until_us,
                   static_cast<int64_t>(q.limit))) {
            v1::Result r;
            pqxx::binarystring bytes(row[0]);
            if (r.ParseFromArray(bytes.data(), bytes.size())) {
              raw.push_back(std::move(*r.mutable_speed()));
            }
          }
        }
        if (plan.bucket_seconds > 0 &&
            raw.size() < static_cast<size_t>(q.limit)) {
          const int64_t want = q.limit - raw.size();
          pqxx::result rows = tx.exec_params(
              SpeedBucketsSql(), id, server, q.since_us, plan.hourly_until_us,
              plan.bucket_raw_from_us, plan.bucket_raw_until_us,
              plan.bucket_seconds, want);
          for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
            const pqxx::row& row = *it;
            v1::SpeedHistoryPoint* p = out.add_points();
            *p->mutable_at() = EpochMicrosToProtoTime(row[0].as<int64_t>());
            p->set_resolution(BucketResolution(plan.bucket_seconds));
            v1::SpeedAggregate* a = p->mutable_aggregate();
            a->set_bucket_seconds(plan.bucket_seconds);
            a->set_runs(row[1].as<int64_t>());
            a->set_ok_runs(row[2].as<int64_t>());
            a->set_median_bps(row[3].as<double>());
            a->set_spread_bps(row[4].as<double>());
            a->set_avg_bps(row[5].as<double>());
            a->set_min_bps(row[6].as<double>());
            a->set_max_bps(row[7].as<double>());
          }
        }
        const bool has_aggregates = out.points_size() > 0;
        for (auto& r : raw) {
          v1::SpeedHistoryPoint* p = out.add_points();
          *p->mutable_at() = r.started_at();
          p->set_resolution(v1::RESOLUTION_RAW);
          *p->mutable_result() = r;
          *out.add_results() = std::move(r);
        }
        SetAnswerResolution(plan, has_aggregates, !raw.empty(), &out);
        return out;
      });
}

}  // namespace netvigil::collector
