// The collector's storage interface: everything the collector keeps is in
// PostgreSQL behind this seam, so services are tested with a fake and the
// collector itself holds no state that the database does not have.
// Implementations are thread-safe.
#ifndef NETVIGIL_COLLECTOR_STORE_STORE_H_
#define NETVIGIL_COLLECTOR_STORE_STORE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netvigil/v1/agent.pb.h"
#include "netvigil/v1/query.pb.h"

namespace netvigil::collector {

class Store {
 public:
  virtual ~Store() = default;

  // Cheap round trip; UNAVAILABLE when the database cannot be reached.
  virtual absl::Status Ping() = 0;

  // Records a connecting agent (creating it on first contact) as held by
  // `session_id`; returns the highest sequence number committed for it.
  virtual absl::StatusOr<uint64_t> AgentConnected(const v1::Hello& hello,
                                                  const std::string& session_id,
                                                  absl::Time now) = 0;
  // A heartbeat: last_seen = now, if the session still holds the agent.
  virtual absl::Status AgentSeen(const std::string& name,
                                 const std::string& session_id,
                                 absl::Time now) = 0;
  // The stream ended; a newer session is left alone.
  virtual absl::Status AgentDisconnected(const std::string& name,
                                         const std::string& session_id,
                                         absl::Time now) = 0;

  // Agents by name; online = held by a session and seen within `timeout`.
  virtual absl::StatusOr<std::vector<v1::AgentInfo>> ListAgents(
      absl::Duration timeout) = 0;

  // One result of one agent, for StoreBatch. `result` is not owned.
  struct IngestItem {
    std::string agent;
    const v1::Result* result = nullptr;
  };
  // Stores the results of many agents in one transaction, idempotently on
  // (agent, seq): a result already committed changes nothing. One agent's
  // results must come in sequence order. Returns each agent's
  // acked-through sequence number after the commit.
  virtual absl::StatusOr<std::map<std::string, uint64_t>> StoreBatch(
      const std::vector<IngestItem>& items) = 0;

  // StoreBatch for one agent; returns its acked-through sequence number.
  absl::StatusOr<uint64_t> StoreResults(
      const std::string& agent, const std::vector<v1::Result>& results) {
    std::vector<IngestItem> items;
    for (const v1::Result& r : results) items.push_back({agent, &r});
    auto acked = StoreBatch(items);
    if (!acked.ok()) return acked.status();
    return (*acked)[agent];
  }

  // A speed result the collector made itself (skipped, never answered),
  // stored under its client agent with a negative sequence number.
  virtual absl::Status StoreCollectorSpeedResult(
      const v1::SpeedResult& result) = 0;

  // How long each kind of row is kept (README "Storage"). Time-partitioned
  // tables lose whole partitions (day or month, UTC) once all of a
  // partition is older than its horizon: a row is kept at least its time
  // and at most one partition longer.
  struct RetentionPolicy {
    absl::Duration raw = absl::Hours(24 * 7);       // path_runs, speed_results
    absl::Duration hourly = absl::Hours(24 * 365);  // path_/speed_hourly
    absl::Duration results = absl::Hours(24 * 7);   // results
    absl::Duration events = absl::Hours(24 * 90);   // socket_/file_events
    absl::Duration gone_facts = absl::Hours(24 * 90);       // after last seen
    absl::Duration resolved_alerts = absl::Hours(24 * 90);  // with events
    absl::Duration gaps = absl::Hours(24 * 365);
    absl::Duration outbox = absl::Hours(24 * 30);  // sent/expired messages
  };
  struct RetentionStats {
    int64_t partitions_dropped = 0;
    int64_t path_runs_aggregated = 0;
    int64_t speed_results_aggregated = 0;
    int64_t facts_deleted = 0;   // socket and file facts gone for long
    int64_t alerts_deleted = 0;  // resolved alerts (their events with them)
    int64_t rows_deleted = 0;    // other rows: gaps, outbox, DEFAULT parts
  };
  // Path and speed rows past `raw` are folded into hourly aggregates, then
  // everything past its horizon (counted back from `now`) goes. One
  // transaction. Takes `now` so a fake clock can drive it.
  virtual absl::StatusOr<RetentionStats> ApplyRetention(
      const RetentionPolicy& policy, absl::Time now) = 0;

  // --- history queries. Times are Unix microseconds; an unknown agent is
  // NOT_FOUND naming it.

  // The latest run per target of one agent.
  virtual absl::StatusOr<std::vector<v1::PathSummary>> LatestPaths(
      const std::string& agent) = 0;
  // The same for every agent that has runs, by agent name, in one read:
  // what Overview shows for all hosts.
  virtual absl::StatusOr<std::map<std::string, std::vector<v1::PathSummary>>>
  LatestPathsOfAll() = 0;
  // A history range [since, until) and how to answer it
  // (v1::PathHistoryRequest says what each field means).
  struct HistoryQuery {
    int64_t since_us = 0;
    int64_t until_us = 0;
    uint32_t limit = 1000;
    v1::Resolution resolution = v1::RESOLUTION_AUTO;
    uint32_t max_points = 10000;
    // Path runs only: raw runs from their rows, without hops
    // (v1::PathHistoryRequest.without_hops).
    bool without_hops = false;
    // With without_hops: each raw run's route id, and the routes once
    // (v1::PathHistoryRequest.with_routes).
    bool with_routes = false;
  };
  // One target's points in the range, oldest first: raw runs where they are
  // kept, hourly aggregates before the oldest raw run, coarser buckets past
  // `max_points`; at most `limit` (the newest). An unknown target (no raw
  // run nor aggregate) is NOT_FOUND. A RAW query reads raw runs only.
  virtual absl::StatusOr<v1::PathHistoryResponse> PathHistory(
      const std::string& agent, const std::string& target,
      const HistoryQuery& q) = 0;
  // Raw runs of one target in [since, until), oldest first, at most `limit`
  // (the newest ones); an unknown target is NOT_FOUND.
  absl::StatusOr<std::vector<v1::StoredPathRun>> PathHistory(
      const std::string& agent, const std::string& target, int64_t since_us,
      int64_t until_us, uint32_t limit) {
    auto r = PathHistory(agent, target,
                         {since_us, until_us, limit, v1::RESOLUTION_RAW});
    if (!r.ok()) return r.status();
    return std::vector<v1::StoredPathRun>(r->runs().begin(), r->runs().end());
  }
  virtual absl::StatusOr<v1::CurrentSocketsResponse> CurrentSockets(
      const std::string& agent) = 0;
  virtual absl::StatusOr<v1::SocketChangesResponse> SocketChanges(
      const std::string& agent, int64_t since_us) = 0;
  // Facts present now or seen since `since_us`.
  virtual absl::StatusOr<v1::FileAccessResponse> FileAccess(
      const std::string& agent, int64_t since_us) = 0;
  // The latest result of every ordered pair of agents.
  virtual absl::StatusOr<v1::SpeedMatrixResponse> SpeedMatrix() = 0;
  // A pair's points, as PathHistory's (an unknown server is an empty
  // answer).
  virtual absl::StatusOr<v1::SpeedHistoryResponse> SpeedHistory(
      const std::string& client, const std::string& server,
      const HistoryQuery& q) = 0;
  // Raw results only, oldest first, at most `limit` (the newest).
  absl::StatusOr<std::vector<v1::SpeedResult>> SpeedHistory(
      const std::string& client, const std::string& server, int64_t since_us,
      int64_t until_us, uint32_t limit) {
    auto r = SpeedHistory(client, server,
                          {since_us, until_us, limit, v1::RESOLUTION_RAW});
    if (!r.ok()) return r.status();
    return std::vector<v1::SpeedResult>(r->results().begin(),
                                        r->results().end());
  }
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_STORE_STORE_H_
