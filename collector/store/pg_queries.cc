// PgStore's history queries (the Query service's reads).
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "collector/store/pg_store.h"
#include "common/pg_time.h"

namespace netvigil::collector {
namespace {

// Thrown inside a WithConnection body for a clean NOT_FOUND.
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
  absl::Status s = store.WithConnection([&](pqxx::connection& c) {
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
  f.set_key_kind(row[0].as<std::string>());
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

absl::StatusOr<std::vector<v1::StoredPathRun>> PgStore::PathHistory(
    const std::string& agent, const std::string& target, int64_t since_us,
    int64_t until_us, uint32_t limit) {
  NV_REQUIRE_READY();
  return Run<std::vector<v1::StoredPathRun>>(
      *this, true, [&](pqxx::read_transaction& tx) {
        const int64_t id = AgentIdOrThrow(tx, agent);
        if (tx.exec_params("SELECT 1 FROM path_runs WHERE agent_id = $1 AND"
                           " target = $2 LIMIT 1",
                           id, target)
                .empty()) {
          throw NotFound{absl::StrCat(
              "host '", agent, "' has no path runs to target '", target, "'")};
        }
        std::vector<v1::StoredPathRun> out;
        // A bounded index read: starting a parallel worker (which the
        // planner picks for a day of runs) costs more than it saves.
        tx.exec("SET LOCAL max_parallel_workers_per_gather = 0");
        // The newest `limit` runs in the range, newest first straight from
        // path_runs_agent_target_at read backwards, each run's payload
        // fetched by primary key (a subquery: a join let the planner add a
        // sort and a cache of the payloads that never hits).
        pqxx::result rows = tx.exec_params(
            "SELECT x.seq, (SELECT r.payload FROM results r"
            "  WHERE r.agent_id = $1 AND r.seq = x.seq) FROM ("
            "  SELECT seq, started_at FROM path_runs"
            "  WHERE agent_id = $1 AND target = $2"
            "   AND started_at >= to_timestamp($3 / 1e6)"
            "   AND started_at < to_timestamp($4 / 1e6)"
            "  ORDER BY started_at DESC LIMIT $5) x"
            " ORDER BY x.started_at DESC",
            id, target, since_us, until_us, static_cast<int64_t>(limit));
        out.reserve(rows.size());
        // Returned oldest first.
        for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
          const pqxx::row& row = *it;
          if (row[1].is_null()) continue;  // its result is gone
          v1::Result r;
          pqxx::binarystring bytes(row[1]);
          if (!r.ParseFromArray(bytes.data(), bytes.size())) continue;
          v1::StoredPathRun s;
          s.set_agent(agent);
          s.set_seq(row[0].as<int64_t>());
          *s.mutable_run() = std::move(*r.mutable_path());
          out.push_back(std::move(s));
        }
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
        v1::SocketChangesResponse out;
        for (const auto& row : tx.exec_params(
                 "SELECT e.key_kind, e.proto, e.local_address, e.local_port,"
                 " e.remote_address, e.remote_port, e.exe, e.process_name, " +
                     EpochMicrosSql("COALESCE(f.first_seen, e.at)") + ", " +
                     EpochMicrosSql("COALESCE(f.last_seen, e.at)") +
                     ", COALESCE(f.present, false), " + EpochMicrosSql("e.at") +
                     ", e.change FROM socket_events e LEFT JOIN socket_facts f"
                     " ON f.agent_id = e.agent_id AND f.key_kind = e.key_kind"
                     " AND f.proto = e.proto"
                     " AND f.local_address = e.local_address"
                     " AND f.local_port = e.local_port"
                     " AND f.remote_address = e.remote_address"
                     " AND f.remote_port = e.remote_port AND f.exe = e.exe"
                     " WHERE e.agent_id = $1 AND e.at >= to_timestamp($2 / 1e6)"
                     " ORDER BY e.at, e.id",
                 id, since_us)) {
          v1::SocketChange* c = out.add_changes();
          *c->mutable_fact() = SocketFactFromRow(row);
          *c->mutable_at() = EpochMicrosToProtoTime(row[11].as<int64_t>());
          c->set_change(row[12].as<std::string>());
        }
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

absl::StatusOr<std::vector<v1::SpeedResult>> PgStore::SpeedHistory(
    const std::string& client, const std::string& server, int64_t since_us,
    int64_t until_us, uint32_t limit) {
  NV_REQUIRE_READY();
  return Run<std::vector<v1::SpeedResult>>(
      *this, true, [&](pqxx::read_transaction& tx) {
        const int64_t id = AgentIdOrThrow(tx, client);
        std::vector<v1::SpeedResult> out;
        for (const auto& row : tx.exec_params(
                 "SELECT payload FROM ("
                 "  SELECT r.payload, s.started_at FROM speed_results s"
                 "  JOIN results r ON r.agent_id = s.agent_id AND r.seq = s.seq"
                 "  WHERE s.agent_id = $1 AND s.server = $2"
                 "   AND s.started_at >= to_timestamp($3 / 1e6)"
                 "   AND s.started_at < to_timestamp($4 / 1e6)"
                 "  ORDER BY s.started_at DESC LIMIT $5) x ORDER BY started_at",
                 id, server, since_us, until_us, static_cast<int64_t>(limit))) {
          v1::Result r;
          pqxx::binarystring bytes(row[0]);
          if (r.ParseFromArray(bytes.data(), bytes.size())) {
            out.push_back(std::move(*r.mutable_speed()));
          }
        }
        return out;
      });
}

}  // namespace netvigil::collector
