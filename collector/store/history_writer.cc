#include "collector/store/history_writer.h"

#include <map>
#include <set>
#include <tuple>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "collector/store/path_pack.h"
#include "common/pg_time.h"

namespace netvigil::collector {
namespace {

using history::FileBook;
using history::FileColumns;
using history::PackedSocketEvent;
using history::PackSocketEvents;
using history::Previous;
using history::SnapshotTime;
using history::SocketBook;
using history::SocketColumns;
using history::StateKind;

std::string IdList(const std::set<int64_t>& ids) {
  return PgIntArray(std::vector<int64_t>(ids.begin(), ids.end()));
}

void LoadSockets(pqxx::work& tx, const std::set<int64_t>& agents,
                 SocketBook& book) {
  for (const auto& row : tx.exec_params(
           "SELECT agent_id, key_kind, proto, local_address, local_port,"
           "  remote_address, remote_port, exe, process_name"
           " FROM socket_facts WHERE agent_id = ANY($1::bigint[]) AND present",
           IdList(agents))) {
    SocketKey k;
    // A kind this collector does not know (a newer one's row) is skipped:
    // it can be neither matched nor rewritten.
    std::optional<model::SocketFactKind> kind =
        model::KindFromName(row[1].as<std::string>());
    if (!kind) continue;
    k.kind = *kind;
    k.proto = static_cast<v1::Transport>(row[2].as<int>());
    k.local_address = row[3].as<std::string>();
    k.local_port = row[4].as<int64_t>();
    k.remote_address = row[5].as<std::string>();
    k.remote_port = row[6].as<int64_t>();
    k.owner = row[7].as<std::string>();
    book.present[row[0].as<int64_t>()].emplace(
        std::move(k), model::SocketFactInfo{row[8].as<std::string>(), false});
  }
}

void LoadFiles(pqxx::work& tx, const std::set<int64_t>& agents,
               FileBook& book) {
  for (const auto& row : tx.exec_params(
           "SELECT agent_id, exe, path, kind, process_name, uid, deleted,"
           " exe_deleted FROM file_facts WHERE agent_id = ANY($1::bigint[]) "
           "AND present",
           IdList(agents))) {
    FileKey k{row[1].as<std::string>(), row[2].as<std::string>(),
              static_cast<v1::FileAccessKind>(row[3].as<int>())};
    FileFactInfo info{row[4].as<std::string>(),
                      static_cast<uint32_t>(row[5].as<int64_t>()),
                      row[6].as<bool>(), row[7].as<bool>()};
    book.present[row[0].as<int64_t>()].emplace(std::move(k), std::move(info));
  }
}

// Runs `sql` with the socket columns as $1..$9 and the row's three extra
// columns as $10..$12.
template <typename... Extra>
pqxx::result Exec(pqxx::work& tx, const std::string& sql,
                  const SocketColumns& c, const Extra&... extra) {
  return tx.exec_params(
      sql, PgIntArray(c.agent), PgTextArray(c.kind), PgIntArray(c.proto),
      PgTextArray(c.laddr), PgIntArray(c.lport), PgTextArray(c.raddr),
      PgIntArray(c.rport), PgTextArray(c.exe), PgTextArray(c.name), extra...);
}

// Socket facts are rows of socket_fact_rows, their program an id into
// socket_programs and their kind one byte (migration 0019).
constexpr char kSocketKindCode[] =
    "(CASE c.key_kind WHEN 'listener' THEN 'l' WHEN 'remote' THEN 'r'"
    " WHEN 'inbound' THEN 'i' END)::\"char\"";

constexpr char kSocketProgramJoin[] =
    " JOIN socket_programs p ON p.agent_id = c.agent_id AND p.exe = c.exe";

std::string SocketKeyMatch() {
  return absl::StrCat(
      " f.agent_id = c.agent_id AND f.kind = ", kSocketKindCode,
      " AND f.proto = c.proto AND f.local_address = c.local_address"
      " AND f.local_port = c.local_port AND f.remote_address = c.remote_address"
      " AND f.remote_port = c.remote_port AND f.program_id = p.id");
}

// Gives each program path of `c` not yet known for its agent an id. Only
// the new ones are inserted (an INSERT that conflicts still takes a number
// from the identity, and a busy collector would run through them); ON
// CONFLICT covers a race with another collector.
void AddSocketPrograms(pqxx::work& tx, const SocketColumns& c) {
  tx.exec_params(
      "INSERT INTO socket_programs (agent_id, exe)"
      " SELECT DISTINCT a, e FROM unnest($1::bigint[], $2::text[]) AS c(a, e)"
      " WHERE NOT EXISTS (SELECT 1 FROM socket_programs p"
      "  WHERE p.agent_id = c.a AND p.exe = c.e)"
      " ON CONFLICT (agent_id, exe) DO NOTHING",
      PgIntArray(c.agent), PgTextArray(c.exe));
}

std::string SocketRows(const char* extra) {
  return absl::StrCat(
      " FROM unnest($1::bigint[], $2::text[], $3::smallint[], $4::text[],"
      "  $5::int[], $6::text[], $7::int[], $8::text[], $9::text[], ",
      extra,
      ") AS c(agent_id, key_kind, proto, local_address, local_port,"
      "  remote_address, remote_port, exe, process_name, x, y, z)");
}

void WriteSocketBook(pqxx::work& tx, const SocketBook& book) {
  if (!book.deltas.empty()) {
    SocketColumns cols;
    for (const auto& [ak, d] : book.deltas) {
      cols.AddKey(ak.first, ak.second, d.info);
      cols.first.push_back(d.first_seen);
      cols.last.push_back(d.last_seen);
      cols.present.push_back(d.present ? 1 : 0);
    }
    AddSocketPrograms(tx, cols);
    Exec(tx,
         absl::StrCat("INSERT INTO socket_fact_rows AS f (agent_id, kind,"
                      "  proto, local_address, local_port, remote_address,"
                      "  remote_port, program_id, process_name, first_seen,"
                      "  last_seen, present)"
                      " SELECT c.agent_id, ",
                      kSocketKindCode,
                      ", c.proto, c.local_address,"
                      "  c.local_port, c.remote_address, c.remote_port, p.id,"
                      "  c.process_name, to_timestamp(c.x / 1e6),"
                      "  to_timestamp(c.y / 1e6), c.z <> 0",
                      SocketRows("$10::bigint[], $11::bigint[], $12::int[]"),
                      kSocketProgramJoin,
                      " ON CONFLICT (agent_id, kind, proto, remote_port,"
                      "  local_port, program_id, remote_address, local_address)"
                      " DO UPDATE SET present = EXCLUDED.present,"
                      "  process_name = EXCLUDED.process_name,"
                      "  last_seen = CASE WHEN EXCLUDED.present THEN"
                      "   f.last_seen ELSE EXCLUDED.last_seen END"),
         cols, PgIntArray(cols.first), PgIntArray(cols.last),
         PgIntArray(cols.present));
    // Facts that went are last seen at the snapshot before the one that
    // missed them: the statement above writes that for those still gone;
    // this one for those that came back in the same batch (rare). One new
    // row version for the common case, not two: a second UPDATE of every
    // gone fact doubled the facts tables' dead rows.
    SocketColumns gone;
    for (const auto& [ak, d] : book.deltas) {
      if (!d.set_last || !d.present) continue;
      gone.AddKey(ak.first, ak.second, d.info);
      gone.last.push_back(d.last_seen);
      gone.first.push_back(0);
      gone.present.push_back(0);
    }
    if (!gone.agent.empty()) {
      Exec(tx,
           absl::StrCat("UPDATE socket_fact_rows f SET"
                        "  last_seen = to_timestamp(c.y / 1e6)",
                        SocketRows("$10::bigint[], $11::bigint[],"
                                   " $12::int[]"),
                        kSocketProgramJoin, " WHERE", SocketKeyMatch()),
           gone, PgIntArray(gone.first), PgIntArray(gone.last),
           PgIntArray(gone.present));
    }
  }
  if (!book.events.empty()) {
    // One row per snapshot (migration 0016): its events packed in order.
    std::map<std::tuple<int64_t, int64_t, int64_t>,
             std::vector<PackedSocketEvent>>
        sets;
    for (const auto& e : book.events) {
      sets[{e.agent, e.seq, e.at}].push_back(PackedSocketEvent{
          e.change, model::KindName(e.key.kind), e.key.proto,
          e.key.local_address, e.key.local_port, e.key.remote_address,
          e.key.remote_port, e.key.owner, e.info.process_name});
    }
    std::vector<int64_t> agents, seqs, ats, counts;
    std::vector<std::string> packed;
    for (const auto& [k, events] : sets) {
      agents.push_back(std::get<0>(k));
      seqs.push_back(std::get<1>(k));
      ats.push_back(std::get<2>(k));
      counts.push_back(static_cast<int64_t>(events.size()));
      packed.push_back(absl::BytesToHexString(PackSocketEvents(events)));
    }
    tx.exec_params(
        "INSERT INTO socket_event_sets (agent_id, at, seq, events, changes)"
        " SELECT a, to_timestamp(t / 1e6), s, n, decode(h, 'hex')"
        " FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::int[],"
        "  $5::text[]) AS c(a, t, s, n, h)",
        PgIntArray(agents), PgIntArray(ats), PgIntArray(seqs),
        PgIntArray(counts), PgTextArray(packed));
  }
}
// Runs `sql` with the file columns as $1..$7 and the row's three extra
// columns as $8..$10.
template <typename... Extra>
pqxx::result Exec(pqxx::work& tx, const std::string& sql, const FileColumns& c,
                  const Extra&... extra) {
  return tx.exec_params(sql, PgIntArray(c.agent), PgTextArray(c.exe),
                        PgTextArray(c.path), PgIntArray(c.kind),
                        PgTextArray(c.name), PgIntArray(c.uid),
                        PgIntArray(c.deleted), extra...);
}

std::string FileRows(const char* extra) {
  return absl::StrCat(
      " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::smallint[],"
      "  $5::text[], $6::bigint[], $7::int[], ",
      extra,
      ") AS c(agent_id, exe, path, kind, process_name, uid, deleted, x, y,"
      "  z)");
}

void WriteFileBook(pqxx::work& tx, const FileBook& book) {
  if (!book.deltas.empty()) {
    FileColumns cols;
    for (const auto& [ak, d] : book.deltas) {
      cols.AddKey(ak.first, ak.second, d.info);
      cols.first.push_back(d.first_seen);
      cols.last.push_back(d.last_seen);
      cols.present.push_back(d.present ? 1 : 0);
    }
    Exec(tx,
         absl::StrCat("INSERT INTO file_facts (agent_id, exe, path, kind,"
                      "  process_name, uid, deleted, exe_deleted,"
                      "  first_seen, last_seen, present)"
                      " SELECT agent_id, exe, path, kind, process_name,"
                      "  uid, (deleted & 1) <> 0, (deleted & 2) <> 0,"
                      "  to_timestamp(x / 1e6),"
                      "  to_timestamp(y / 1e6), z <> 0",
                      FileRows("$8::bigint[], $9::bigint[], $10::int[]"),
                      " ON CONFLICT (agent_id, exe, path, kind) DO UPDATE"
                      " SET present = EXCLUDED.present,"
                      "  last_seen = CASE WHEN EXCLUDED.present THEN"
                      "   file_facts.last_seen ELSE EXCLUDED.last_seen END,"
                      "  process_name = EXCLUDED.process_name,"
                      "  uid = EXCLUDED.uid, deleted = EXCLUDED.deleted,"
                      "  exe_deleted = EXCLUDED.exe_deleted"),
         cols, PgIntArray(cols.first), PgIntArray(cols.last),
         PgIntArray(cols.present));
    // As for sockets: only the facts that went and came back in the batch.
    FileColumns gone;
    for (const auto& [ak, d] : book.deltas) {
      if (!d.set_last || !d.present) continue;
      gone.AddKey(ak.first, ak.second, d.info);
      gone.first.push_back(0);
      gone.last.push_back(d.last_seen);
      gone.present.push_back(0);
    }
    if (!gone.agent.empty()) {
      Exec(tx,
           absl::StrCat("UPDATE file_facts f SET"
                        "  last_seen = to_timestamp(c.y / 1e6)",
                        FileRows("$8::bigint[], $9::bigint[], $10::int[]"),
                        " WHERE f.agent_id = c.agent_id"
                        "  AND f.exe = c.exe AND f.path = c.path"
                        "  AND f.kind = c.kind"),
           gone, PgIntArray(gone.first), PgIntArray(gone.last),
           PgIntArray(gone.present));
    }
  }
  if (!book.events.empty()) {
    FileColumns ev;
    for (const auto& e : book.events) {
      ev.AddKey(e.agent, e.key, e.info);
      ev.seq.push_back(e.seq);
      ev.at.push_back(e.at);
      ev.change.push_back(e.change);
    }
    Exec(tx,
         absl::StrCat("INSERT INTO file_events (agent_id, seq, at, change,"
                      "  exe, path, kind, process_name)"
                      " SELECT agent_id, x, to_timestamp(y / 1e6), z, exe,"
                      "  path, kind, process_name",
                      FileRows("$8::bigint[], $9::bigint[], $10::text[]")),
         ev, PgIntArray(ev.seq), PgIntArray(ev.at), PgTextArray(ev.change));
  }
}

// The route ids of a batch's path runs (migration 0018), by agent and packed
// route: each distinct route of an agent in one statement, made where it is
// new, its last_used moved forward where it is a day old. A run the pack
// cannot hold (history::PackPathFigures) has none: it keeps its payload.
using PathRouteIds = std::map<std::pair<int64_t, std::string>, int64_t>;

// The id of each (agent, packed route) of $1..$3 (agents, routes in hex,
// newest run start in microseconds), by input position. The routes that
// exist are read from the statement's snapshot; those it makes come from
// RETURNING. The agents' rows are locked by the batch, so no other
// transaction makes the same agent's routes meanwhile.
constexpr char kPathRoutesStatement[] = "nv_path_routes";
constexpr char kPathRoutesSql[] =
    "WITH c AS ("
    "  SELECT n, a, h, sha256(h) AS d, to_timestamp(t / 1e6) AS t"
    "  FROM (SELECT n, a, decode(x, 'hex') AS h, t FROM"
    "   unnest($1::bigint[], $2::text[], $3::bigint[])"
    "   WITH ORDINALITY AS u(a, x, t, n)) v),"
    " e AS (SELECT c.n, r.id, r.last_used FROM c"
    "  LEFT JOIN path_routes r ON r.agent_id = c.a AND r.digest = c.d),"
    // Only routes that are new or a day unused go through the
    // INSERT: one that is there and current (nearly every run's) is
    // only read, neither locked nor written.
    " ins AS ("
    "  INSERT INTO path_routes AS r (agent_id, digest, hops, last_used)"
    "  SELECT a, d, h, t FROM c JOIN e USING (n)"
    "  WHERE e.id IS NULL OR e.last_used < c.t - interval '1 day'"
    "  ON CONFLICT (agent_id, digest) DO UPDATE"
    "   SET last_used = EXCLUDED.last_used"
    "   WHERE r.last_used < EXCLUDED.last_used - interval '1 day'"
    "  RETURNING agent_id, digest, id)"
    " SELECT c.n, COALESCE(i.id, e.id) FROM c JOIN e USING (n)"
    " LEFT JOIN ins i ON i.agent_id = c.a AND i.digest = c.d";

PathRouteIds WritePathRoutes(
    pqxx::work& tx,
    const std::vector<std::pair<int64_t, const v1::Result*>>& items) {
  // The newest start of each (agent, route).
  std::map<std::pair<int64_t, std::string>, int64_t> newest;
  for (const auto& [agent, r] : items) {
    if (!r->has_path() || !history::PackPathFigures(r->path()).ok()) continue;
    const int64_t at = r->path().has_started_at()
                           ? ProtoTimeToEpochMicros(r->path().started_at())
                           : SnapshotTime(*r);
    auto [it, fresh] =
        newest.try_emplace({agent, history::PackPathRoute(r->path())}, at);
    if (!fresh) it->second = std::max(it->second, at);
  }
  PathRouteIds ids;
  if (newest.empty()) return ids;
  std::vector<int64_t> agents, ats;
  std::vector<std::string> hex;
  std::vector<const std::pair<int64_t, std::string>*> keys;
  for (const auto& [k, at] : newest) {
    agents.push_back(k.first);
    hex.push_back(absl::BytesToHexString(k.second));
    ats.push_back(at);
    keys.push_back(&k);
  }
  // A prepared statement (per connection; libpqxx prepares it at its first
  // use and takes the same definition again as a no-op): planning this one
  // cost about 1 ms of PostgreSQL's CPU a batch, more than running it.
  tx.conn().prepare(kPathRoutesStatement, kPathRoutesSql);
  for (const auto& row :
       tx.exec_prepared(kPathRoutesStatement, PgIntArray(agents),
                        PgTextArray(hex), PgIntArray(ats))) {
    ids[*keys.at(row[0].as<size_t>() - 1)] = row[1].as<int64_t>();
  }
  return ids;
}

void WritePath(pqxx::work& tx, int64_t agent_id, int64_t seq,
               const v1::PathRun& run, int64_t at_us,
               const PathRouteIds& routes) {
  const v1::PathHop& d = run.destination();
  // The hops: the route's id and the packed figures, or neither (the
  // result then keeps its payload, pg_store.cc).
  // Route ids start at 1: 0 is "none" (NULL in both columns).
  int64_t route_id = 0;
  std::string figures;
  if (absl::StatusOr<std::string> f = history::PackPathFigures(run); f.ok()) {
    auto it = routes.find({agent_id, history::PackPathRoute(run)});
    if (it != routes.end()) {
      route_id = it->second;
      figures = std::move(*f);
    }
  }
  tx.exec_params(
      "INSERT INTO path_runs (agent_id, seq, target, resolved_address,"
      "  started_at, destination_reached, loss_percent, avg_ms, best_ms,"
      "  worst_ms, hop_count, error, route_id, figures)"
      " VALUES ($1, $2, $3, $4, to_timestamp($5 / 1e6), $6, $7, $8, $9, $10,"
      "  $11, $12, NULLIF($13::bigint, 0),"
      "  CASE WHEN $13::bigint = 0 THEN NULL ELSE $14::bytea END)"
      " ON CONFLICT DO NOTHING",
      agent_id, seq, run.target(), run.resolved_address(),
      run.has_started_at() ? ProtoTimeToEpochMicros(run.started_at()) : at_us,
      run.destination_reached(),
      run.destination_reached() || d.sent() > 0 ? d.loss_percent() : 100.0,
      d.avg_ms(), d.best_ms(), d.worst_ms(), run.hops_size(), run.error(),
      route_id, pqxx::binarystring(figures));
}

void WriteSpeed(pqxx::work& tx, int64_t agent_id, int64_t seq,
                const v1::SpeedResult& s, int64_t at_us) {
  const int64_t started =
      s.has_started_at() ? ProtoTimeToEpochMicros(s.started_at()) : at_us;
  const int64_t finished =
      s.has_finished_at() ? ProtoTimeToEpochMicros(s.finished_at()) : started;
  tx.exec_params(
      "INSERT INTO speed_results (agent_id, seq, client, server, external,"
      "  started_at, finished_at, outcome, error, forward_bps, reverse_bps,"
      "  retransmits, schedule_id)"
      " VALUES ($1, $2, $3, $4, $5, to_timestamp($6 / 1e6),"
      "  to_timestamp($7 / 1e6), $8, $9, $10, $11, $12, $13)"
      " ON CONFLICT DO NOTHING",
      agent_id, seq, s.client(), s.server(), s.external(), started, finished,
      static_cast<int>(s.outcome()), s.error(), s.forward().received_bps(),
      s.reverse_figures().received_bps(),
      static_cast<int64_t>(s.forward().retransmits() +
                           s.reverse_figures().retransmits()),
      s.schedule_id());
}

// The count stored is what the range really misses: numbers of the range
// that are stored (sent before they were dropped, gap records, results a
// lying agent claims lost) are not lost, whatever the record says. The
// gap's own number is left out: a refused result's gap record is its own
// range.
void WriteGap(pqxx::work& tx, int64_t agent_id, int64_t seq, const v1::Gap& g) {
  tx.exec_params(
      "INSERT INTO gaps (agent_id, seq, first_seq, last_seq, count, first_at,"
      "  last_at, reason)"
      " SELECT $1::bigint, $2::bigint, $3::bigint, $4::bigint,"
      "  LEAST($5::bigint, ($4::bigint - $3::bigint + 1) - ("
      "    SELECT count(*) FROM results WHERE agent_id = $1::bigint"
      "    AND seq BETWEEN $3::bigint AND $4::bigint AND seq <> $2::bigint)),"
      "  to_timestamp($6::bigint / 1e6), to_timestamp($7::bigint / 1e6),"
      "  $8::text"
      " ON CONFLICT DO NOTHING",
      agent_id, seq, static_cast<int64_t>(g.first_seq()),
      static_cast<int64_t>(g.last_seq()), static_cast<int64_t>(g.count()),
      ProtoTimeToEpochMicros(g.first_produced_at()),
      ProtoTimeToEpochMicros(g.last_produced_at()), g.reason());
}

}  // namespace

namespace {}  // namespace

// Moves the present facts of `agents` that the cache holds for the snapshot
// probe_state names (in `state`) into `present`, and takes those agents out
// of `agents` (what is left is read from the tables); every one of them gets
// an entry in `committed`, filled at the end of Flush.
namespace {

template <typename E, typename Info>
void FromCache(PresentFactsCache& cache,
               std::map<std::pair<int64_t, std::string>, Previous>& state,
               const char* kind,
               bool (PresentFactsCache::*take)(int64_t, int64_t, E&),
               std::set<int64_t>& agents, std::map<int64_t, Info>& present,
               std::map<int64_t, E>& committed) {
  for (auto it = agents.begin(); it != agents.end();) {
    const Previous& p = state[{*it, kind}];
    committed[*it];
    E e;
    if (p.exists && (cache.*take)(*it, p.last_seq, e)) {
      present[*it] = std::move(e.facts);
      it = agents.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace

void HistoryBatch::Flush() {
  if (items_.empty()) return;
  using StateKey = std::pair<int64_t, std::string>;
  std::map<StateKey, Previous> state;
  std::set<StateKey> dirty;
  std::set<int64_t> socket_agents, file_agents;
  for (const auto& [agent, r] : items_) {
    if (const char* kind = StateKind(*r)) state[{agent, kind}];
    if (r->has_sockets()) socket_agents.insert(agent);
    if (r->has_files()) file_agents.insert(agent);
  }
  if (!state.empty()) {
    std::vector<int64_t> ids;
    std::vector<std::string> kinds;
    for (const auto& [k, p] : state) {
      ids.push_back(k.first);
      kinds.push_back(k.second);
    }
    for (const auto& row : tx_.exec_params(
             absl::StrCat("SELECT agent_id, kind, last_seq, ",
                          EpochMicrosSql("last_at"),
                          " FROM probe_state WHERE (agent_id, kind) IN"
                          "  (SELECT * FROM unnest($1::bigint[], $2::text[]))"
                          " ORDER BY agent_id, kind FOR UPDATE"),
             PgIntArray(ids), PgTextArray(kinds))) {
      Previous& p = state[{row[0].as<int64_t>(), row[1].as<std::string>()}];
      p.exists = true;
      p.last_seq = row[2].as<int64_t>();
      p.last_at_us = row[3].as<int64_t>();
    }
  }
  SocketBook sockets;
  FileBook files;
  // Present facts from the cache where it holds the snapshot probe_state
  // names; the others from the tables.
  if (cache_ != nullptr) {
    FromCache(*cache_, state, "sockets", &PresentFactsCache::TakeSockets,
              socket_agents, sockets.present, cached_sockets_);
    FromCache(*cache_, state, "files", &PresentFactsCache::TakeFiles,
              file_agents, files.present, cached_files_);
  }
  if (!socket_agents.empty()) LoadSockets(tx_, socket_agents, sockets);
  if (!file_agents.empty()) LoadFiles(tx_, file_agents, files);

  const PathRouteIds routes = WritePathRoutes(tx_, items_);
  for (const auto& [agent, r] : items_) {
    const int64_t seq = static_cast<int64_t>(r->seq());
    const int64_t at = SnapshotTime(*r);
    Previous before;
    if (const char* kind = StateKind(*r)) {
      Previous& p = state[{agent, kind}];
      before = p;
      if (!p.exists || seq > p.last_seq) {
        p = Previous{true, seq, at};
        dirty.insert({agent, kind});
      }
    }
    // A snapshot older than the newest one stored (never expected: results
    // arrive in order) is kept raw but does not rewrite history.
    const bool stale = before.exists && seq < before.last_seq;
    const int64_t gone_at = before.exists ? before.last_at_us : at;
    switch (r->payload_case()) {
      case v1::Result::kSockets:
        if (!stale)
          sockets.Apply(agent, seq, at, gone_at,
                        model::SocketFactsOf(r->sockets(), fact_options_));
        break;
      case v1::Result::kFiles:
        if (!stale)
          files.Apply(agent, seq, at, gone_at, model::FileFactsOf(r->files()));
        break;
      case v1::Result::kPath:
        WritePath(tx_, agent, seq, r->path(), at, routes);
        break;
      case v1::Result::kSpeed:
        WriteSpeed(tx_, agent, seq, r->speed(), at);
        break;
      case v1::Result::kGap:
        WriteGap(tx_, agent, seq, r->gap());
        break;
      case v1::Result::PAYLOAD_NOT_SET:
        break;
    }
  }
  WriteSocketBook(tx_, sockets);
  WriteFileBook(tx_, files);
  if (!dirty.empty()) {
    std::vector<int64_t> ids, seqs, ats;
    std::vector<std::string> kinds;
    for (const StateKey& k : dirty) {
      const Previous& p = state.at(k);
      ids.push_back(k.first);
      kinds.push_back(k.second);
      seqs.push_back(p.last_seq);
      ats.push_back(p.last_at_us);
    }
    tx_.exec_params(
        "INSERT INTO probe_state (agent_id, kind, last_seq, last_at)"
        " SELECT a, k, s, to_timestamp(t / 1e6)"
        " FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[])"
        "  AS c(a, k, s, t)"
        " ON CONFLICT (agent_id, kind) DO UPDATE SET"
        "  last_seq = EXCLUDED.last_seq, last_at = EXCLUDED.last_at",
        PgIntArray(ids), PgTextArray(kinds), PgIntArray(seqs), PgIntArray(ats));
  }
  // What the cache gets after the commit: each agent's facts as its newest
  // snapshot left them, under that snapshot's number.
  for (auto& [agent, e] : cached_sockets_) {
    e.seq = state.at({agent, "sockets"}).last_seq;
    e.facts = std::move(sockets.present[agent]);
  }
  for (auto& [agent, e] : cached_files_) {
    e.seq = state.at({agent, "files"}).last_seq;
    e.facts = std::move(files.present[agent]);
  }
  items_.clear();
}

void HistoryBatch::Committed() {
  if (cache_ == nullptr) return;
  cache_->Put(std::move(cached_sockets_), std::move(cached_files_));
  cached_sockets_.clear();
  cached_files_.clear();
}

void WriteHistory(pqxx::work& tx, int64_t agent_id, const v1::Result& r,
                  model::FactOptions facts) {
  HistoryBatch batch(tx, nullptr, facts);
  batch.Add(agent_id, r);
  batch.Flush();
}

}  // namespace netvigil::collector
