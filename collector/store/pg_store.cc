#include "collector/store/pg_store.h"

#include <pqxx/pqxx>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "collector/store/history_writer.h"
#include "collector/store/migrations.h"
#include "collector/store/path_pack.h"
#include "common/pg_time.h"
#include "common/proto_time.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {
namespace {

// Arbitrary but fixed: every netvigil collector takes this lock to migrate.
constexpr int64_t kMigrationLockKey = 0x6e76'6d69'6772;  // "nvmigr"

std::string TextArray(
    const google::protobuf::RepeatedPtrField<std::string>& v) {
  return PgTextArray(std::vector<std::string>(v.begin(), v.end()));
}

const char* KindOf(const v1::Result& r) {
  switch (r.payload_case()) {
    case v1::Result::kPath:
      return "path";
    case v1::Result::kSockets:
      return "sockets";
    case v1::Result::kFiles:
      return "files";
    case v1::Result::kSpeed:
      return "speed";
    case v1::Result::kGap:
      return "gap";
    case v1::Result::PAYLOAD_NOT_SET:
      break;
  }
  return "none";
}

bool IsSnapshot(const v1::Result& r) {
  return r.has_sockets() || r.has_files();
}

// The UTC day of a result, in days since the epoch.
int64_t UtcDay(const v1::Result& r) {
  const int64_t s = r.produced_at().seconds();
  return s >= 0 ? s / 86400 : (s - 86399) / 86400;
}

// (agent id, kind, UTC day) of a snapshot whose payload is kept.
using SnapshotDay = std::tuple<int64_t, std::string, int64_t>;

// The days of the batch's snapshots that already have a kept payload: one
// index read of results_kept_payloads over those days only (partition pruning
// keeps it to their partitions).
std::set<SnapshotDay> PayloadDays(
    pqxx::work& tx, const std::vector<Store::IngestItem>& items,
    std::map<std::string, std::pair<int64_t, uint64_t>>& agents) {
  std::set<SnapshotDay> out;
  std::set<int64_t> ids;
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (const Store::IngestItem& it : items) {
    if (!IsSnapshot(*it.result)) continue;
    ids.insert(agents[it.agent].first);
    lo = std::min(lo, UtcDay(*it.result));
    hi = std::max(hi, UtcDay(*it.result));
  }
  if (ids.empty()) return out;
  for (const auto& row : tx.exec_params(
           "SELECT DISTINCT agent_id, kind,"
           "  floor(extract(epoch FROM produced_at) / 86400)::bigint"
           " FROM results WHERE agent_id = ANY($1::bigint[])"
           "  AND kind IN ('sockets', 'files')"
           "  AND produced_at >= to_timestamp($2::bigint * 86400)"
           "  AND produced_at < to_timestamp(($3::bigint + 1) * 86400)"
           "  AND payload IS NOT NULL",
           PgIntArray(std::vector<int64_t>(ids.begin(), ids.end())), lo, hi)) {
    out.emplace(row[0].as<int64_t>(), row[1].as<std::string>(),
                row[2].as<int64_t>());
  }
  return out;
}

// A path run keeps no payload when its hops are stored packed (migration
// 0018, history_writer.cc WritePath): the pack loses only what rounds to a
// microsecond, so a day's first payload would add nothing (unlike a socket
// snapshot's, whose pids and states no fact keeps). A run the pack cannot
// hold keeps it.
bool PathWithoutPayload(const v1::Result& r) {
  return r.has_path() && history::PackPathFigures(r.path()).ok();
}

}  // namespace

PgStore::PgStore(std::string dsn, int pool_size)
    : main_(std::move(dsn), pool_size),
      facts_cache_(std::make_unique<PresentFactsCache>()) {}

PgStore::~PgStore() = default;

void PgStore::SetReadDsn(std::string dsn, int pool_size) {
  if (dsn.empty()) {
    reads_.reset();
  } else {
    reads_ = std::make_unique<Pool>(std::move(dsn), pool_size);
  }
}

std::unique_ptr<pqxx::connection> PgStore::Pool::Take() {
  absl::MutexLock l(&mu_);
  mu_.Await(absl::Condition(
      +[](Pool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
        return p->free_ > 0 || !p->idle_.empty();
      },
      this));
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }
  --free_;
  return nullptr;  // The caller connects.
}

void PgStore::Pool::Give(std::unique_ptr<pqxx::connection> c) {
  absl::MutexLock l(&mu_);
  if (c) {
    idle_.push_back(std::move(c));
  } else {
    ++free_;
  }
}

absl::Status PgStore::WithConnection(
    const std::function<void(pqxx::connection&)>& fn) {
  return WithPool(main_, fn);
}

absl::Status PgStore::WithReadConnection(
    const std::function<void(pqxx::connection&)>& fn) {
  return WithPool(reads_ ? *reads_ : main_, fn);
}

absl::Status PgStore::WithPool(
    Pool& pool, const std::function<void(pqxx::connection&)>& fn) {
  std::unique_ptr<pqxx::connection> c = pool.Take();
  absl::Status status;
  try {
    if (!c || !c->is_open()) {
      c = std::make_unique<pqxx::connection>(pool.dsn());
    }
    fn(*c);
  } catch (const pqxx::broken_connection& e) {
    c.reset();
    status = absl::UnavailableError(absl::StrCat(
        "database unavailable: ", absl::StripAsciiWhitespace(e.what())));
  } catch (const pqxx::sql_error& e) {
    // A connection that failed mid-transaction may be unusable; start anew.
    if (c && !c->is_open()) c.reset();
    status = absl::InternalError(
        absl::StrCat("database error: ", absl::StripAsciiWhitespace(e.what()),
                     " (query: ", e.query().substr(0, 200), ")"));
  } catch (const pqxx::failure& e) {
    c.reset();
    status = absl::UnavailableError(absl::StrCat(
        "database unavailable: ", absl::StripAsciiWhitespace(e.what())));
  } catch (const std::exception& e) {
    c.reset();
    status =
        absl::InternalError(absl::StrCat("database client error: ", e.what()));
  }
  pool.Give(std::move(c));
  return status;
}

absl::Status PgStore::NotReady() {
  absl::MutexLock l(&reason_mu_);
  return absl::UnavailableError(not_ready_reason_);
}

absl::Status PgStore::Migrate() {
  absl::Status s = MigrateOnce();
  if (s.ok()) {
    ready_.store(true);
    // Today's partitions and a few days ahead; without them rows would wait
    // in the DEFAULT partitions (correct, but retention then deletes them
    // row by row). Retention and ingest try again.
    const absl::Time now = absl::Now();
    if (absl::Status p =
            EnsurePartitions(now - absl::Hours(24), now + absl::Hours(24 * 3));
        !p.ok()) {
      spdlog::warn("partitions_failed error=\"{}\"", std::string(p.message()));
    }
  } else {
    absl::MutexLock l(&reason_mu_);
    not_ready_reason_ = std::string(s.message());
  }
  return s;
}

absl::Status PgStore::MigrateOnce() {
  auto ordered = OrderMigrations(EmbeddedMigrations());
  if (!ordered.ok()) return ordered.status();
  absl::Status result;
  absl::Status s = WithConnection([&](pqxx::connection& c) {
    // Session-level lock: held across the transactions below until
    // unlocked (or the connection ends).
    {
      pqxx::nontransaction lock(c);
      lock.exec_params("SELECT pg_advisory_lock($1)", kMigrationLockKey);
    }
    try {
      {
        pqxx::work tx(c);
        tx.exec0(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())");
        tx.commit();
      }
      std::vector<std::string> applied;
      {
        pqxx::read_transaction tx(c);
        for (const auto& row : tx.exec("SELECT name FROM schema_migrations")) {
          applied.push_back(row[0].as<std::string>());
        }
      }
      auto pending = PendingMigrations(*ordered, applied);
      if (!pending.ok()) {
        result = pending.status();
      } else {
        for (const Migration& m : *pending) {
          pqxx::work tx(c);
          tx.exec(m.sql);
          tx.exec_params("INSERT INTO schema_migrations (name) VALUES ($1)",
                         m.name);
          tx.commit();
          spdlog::info("migration_applied name={}", m.name);
        }
      }
    } catch (...) {
      try {
        pqxx::nontransaction unlock(c);
        unlock.exec_params("SELECT pg_advisory_unlock($1)", kMigrationLockKey);
      } catch (...) {
      }
      throw;
    }
    pqxx::nontransaction unlock(c);
    unlock.exec_params("SELECT pg_advisory_unlock($1)", kMigrationLockKey);
  });
  if (!s.ok()) return s;
  return result;
}

absl::Status PgStore::Ping() {
  if (!ready_.load()) return NotReady();

  return WithConnection([](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec("SELECT 1");
  });
}

absl::StatusOr<uint64_t> PgStore::AgentConnected(const v1::Hello& hello,
                                                 const std::string& session_id,
                                                 absl::Time now) {
  if (!ready_.load()) return NotReady();

  uint64_t acked = 0;
  absl::Status s = WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    pqxx::row row = tx.exec_params1(
        "INSERT INTO agents (name, hostname, addresses, version, boot_id,"
        "  first_seen, last_seen, connected_since, session_id)"
        " VALUES ($1, $2, $3::text[], $4, $5, to_timestamp($6 / 1e6),"
        "  to_timestamp($6 / 1e6), to_timestamp($6 / 1e6), $7)"
        " ON CONFLICT (name) DO UPDATE SET hostname = EXCLUDED.hostname,"
        "  addresses = EXCLUDED.addresses, version = EXCLUDED.version,"
        "  boot_id = EXCLUDED.boot_id, last_seen = EXCLUDED.last_seen,"
        "  connected_since = EXCLUDED.connected_since,"
        "  session_id = EXCLUDED.session_id"
        " RETURNING acked_through_seq",
        hello.agent_name(), hello.hostname(), TextArray(hello.addresses()),
        hello.version(), hello.boot_id(), ToEpochMicros(now), session_id);
    acked = row[0].as<int64_t>();
    tx.commit();
  });
  if (!s.ok()) return s;
  return acked;
}

absl::Status PgStore::AgentSeen(const std::string& name,
                                const std::string& session_id, absl::Time now) {
  if (!ready_.load()) return NotReady();

  return WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "UPDATE agents SET last_seen = to_timestamp($3 / 1e6)"
        " WHERE name = $1 AND session_id = $2",
        name, session_id, ToEpochMicros(now));
    tx.commit();
  });
}

absl::Status PgStore::AgentDisconnected(const std::string& name,
                                        const std::string& session_id,
                                        absl::Time now) {
  if (!ready_.load()) return NotReady();

  return WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "UPDATE agents SET session_id = NULL, connected_since = NULL,"
        "  last_seen = to_timestamp($3 / 1e6)"
        " WHERE name = $1 AND session_id = $2",
        name, session_id, ToEpochMicros(now));
    tx.commit();
  });
}

absl::StatusOr<std::vector<v1::AgentInfo>> PgStore::ListAgents(
    absl::Duration timeout) {
  if (!ready_.load()) return NotReady();

  std::vector<v1::AgentInfo> out;
  absl::Status s = WithConnection([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    pqxx::result rows = tx.exec_params(
        absl::StrCat(
            "SELECT name, hostname, array_to_string(addresses, ' '), version,"
            "  boot_id, ",
            EpochMicrosSql("first_seen"), ", ", EpochMicrosSql("last_seen"),
            ", COALESCE(", EpochMicrosSql("connected_since"),
            ", 0),"
            "  session_id IS NOT NULL"
            "   AND last_seen > now() - make_interval(secs => $1),"
            // Revoked: it had certificates and none of them is still good.
            "  EXISTS (SELECT 1 FROM certificates c"
            "          WHERE c.role = 'agent' AND c.name = agents.name)"
            "  AND NOT EXISTS (SELECT 1 FROM certificates c"
            "          WHERE c.role = 'agent' AND c.name = agents.name"
            "            AND c.revoked_at IS NULL)"
            " FROM agents ORDER BY name"),
        absl::ToDoubleSeconds(timeout));
    for (const auto& row : rows) {
      v1::AgentInfo a;
      a.set_name(row[0].as<std::string>());
      a.set_hostname(row[1].as<std::string>());
      for (absl::string_view addr :
           absl::StrSplit(row[2].as<std::string>(), ' ', absl::SkipEmpty())) {
        a.add_addresses(std::string(addr));
      }
      a.set_version(row[3].as<std::string>());
      a.set_boot_id(row[4].as<std::string>());
      *a.mutable_first_seen() = EpochMicrosToProtoTime(row[5].as<int64_t>());
      *a.mutable_last_seen() = EpochMicrosToProtoTime(row[6].as<int64_t>());
      const bool online = row[8].as<bool>();
      a.set_online(online);
      a.set_revoked(row[9].as<bool>());
      if (online && row[7].as<int64_t>() != 0) {
        *a.mutable_connected_since() =
            EpochMicrosToProtoTime(row[7].as<int64_t>());
      }
      out.push_back(std::move(a));
    }
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::map<std::string, uint64_t>> PgStore::StoreBatch(
    const std::vector<IngestItem>& items) {
  if (!ready_.load()) return NotReady();
  std::map<std::string, uint64_t> acked;
  if (items.empty()) return acked;
  // A day the partitions do not cover yet (after midnight before the next
  // retention pass, or a spool replayed after days offline).
  if (absl::Status p = EnsurePartitionsFor(items); !p.ok()) return p;

  absl::Status unknown;
  absl::Status s = WithConnection([&](pqxx::connection& c) {
    acked.clear();
    pqxx::work tx(c);
    // Lock the agents in id order (no deadlock with another batch) and learn
    // what each has committed: every result at or below that is a resend.
    std::set<std::string> names;
    for (const IngestItem& it : items) names.insert(it.agent);
    std::map<std::string, std::pair<int64_t, uint64_t>> agents;
    for (const auto& row :
         tx.exec_params("SELECT name, id, acked_through_seq FROM agents"
                        " WHERE name = ANY($1::text[]) ORDER BY id FOR UPDATE",
                        PgTextArray(std::vector<std::string>(names.begin(),
                                                             names.end())))) {
      agents[row[0].as<std::string>()] = {row[1].as<int64_t>(),
                                          row[2].as<int64_t>()};
    }
    for (const std::string& n : names) {
      if (agents.count(n) == 0) {
        unknown = absl::NotFoundError(absl::StrCat("unknown agent '", n, "'"));
        return;
      }
    }
    // The new results go in with one statement, their payloads as binary
    // parameters (no hex text to build, escape and parse), with ON CONFLICT
    // DO NOTHING: the primary key stays the last word on "nothing twice"
    // even if a resend slips through.
    std::map<std::pair<int64_t, int64_t>, const v1::Result*> fresh;
    std::vector<int64_t> fresh_ids, fresh_seqs;
    std::vector<std::string> kinds, produced, commands;
    std::vector<pqxx::binarystring> payloads;
    std::string placeholders;
    {
      // Socket and file snapshots keep their payload only as the first of
      // their UTC day (agent, kind): PayloadDays says which days have one.
      std::set<SnapshotDay> kept = PayloadDays(tx, items, agents);
      std::string bytes;
      for (const IngestItem& it : items) {
        const auto& [id, committed] = agents[it.agent];
        const v1::Result& r = *it.result;
        if (r.seq() <= committed) continue;
        if (!fresh
                 .emplace(std::make_pair(id, static_cast<int64_t>(r.seq())), &r)
                 .second) {
          continue;  // the same result twice in one batch
        }
        fresh_ids.push_back(id);
        fresh_seqs.push_back(static_cast<int64_t>(r.seq()));
        kinds.emplace_back(KindOf(r));
        produced.push_back(ToPgTimestamptz(FromProtoTime(r.produced_at())));
        commands.push_back(r.command_id());
        if ((IsSnapshot(r) &&
             !kept.insert({id, kinds.back(), UtcDay(r)}).second) ||
            PathWithoutPayload(r)) {
          absl::StrAppend(&placeholders, placeholders.empty() ? "" : ",",
                          "NULL::bytea");
          continue;
        }
        bytes.clear();
        r.SerializeToString(&bytes);
        payloads.emplace_back(bytes);
        absl::StrAppend(&placeholders, placeholders.empty() ? "" : ",", "$",
                        payloads.size() + 5, "::bytea");
      }
    }
    std::set<std::pair<int64_t, int64_t>> inserted;
    if (!fresh.empty()) {
      for (const auto& row : tx.exec_params(
               absl::StrCat(
                   "INSERT INTO results (agent_id, seq, kind, produced_at,"
                   "  command_id, payload)"
                   " SELECT * FROM unnest($1::bigint[], $2::bigint[],"
                   "  $3::text[], $4::timestamptz[], $5::text[], ARRAY[",
                   placeholders,
                   "])"
                   // No conflict target: the key of the partitioned
                   // table is (agent_id, seq, produced_at) (migration
                   // 0014); acked_through_seq above keeps resends out.
                   " ON CONFLICT DO NOTHING"
                   " RETURNING agent_id, seq"),
               PgIntArray(fresh_ids), PgIntArray(fresh_seqs),
               PgTextArray(kinds), PgTextArray(produced), PgTextArray(commands),
               pqxx::prepare::make_dynamic_params(payloads))) {
        inserted.emplace(row[0].as<int64_t>(), row[1].as<int64_t>());
      }
    }
    // History in each agent's sequence order, for what was really new.
    HistoryBatch history(tx, facts_cache_.get(), fact_options_);
    for (const IngestItem& it : items) {
      const int64_t id = agents[it.agent].first;
      const auto key =
          std::make_pair(id, static_cast<int64_t>(it.result->seq()));
      auto f = fresh.find(key);
      if (f == fresh.end() || f->second != it.result) continue;
      if (inserted.count(key) == 0) continue;
      history.Add(id, *it.result);
    }
    history.Flush();
    std::vector<int64_t> ids, seqs;
    for (auto& [name, a] : agents) {
      for (const IngestItem& it : items) {
        if (it.agent == name)
          a.second = std::max<uint64_t>(a.second, it.result->seq());
      }
      ids.push_back(a.first);
      seqs.push_back(static_cast<int64_t>(a.second));
      acked[name] = a.second;
    }
    tx.exec_params(
        "UPDATE agents a SET acked_through_seq = c.s"
        " FROM unnest($1::bigint[], $2::bigint[]) AS c(i, s)"
        " WHERE a.id = c.i AND a.acked_through_seq < c.s",
        PgIntArray(ids), PgIntArray(seqs));
    tx.commit();
    history.Committed();
  });
  if (!s.ok()) return s;
  if (!unknown.ok()) return unknown;
  return acked;
}

absl::Status PgStore::StoreCollectorSpeedResult(const v1::SpeedResult& result) {
  if (!ready_.load()) return NotReady();
  return WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    pqxx::result id = tx.exec_params("SELECT id FROM agents WHERE name = $1",
                                     result.client());
    if (id.empty()) return;  // An agent never seen has no history to add to.
    const int64_t agent_id = id[0][0].as<int64_t>();
    const int64_t seq =
        -tx.exec1("SELECT nextval('collector_result_seq')")[0].as<int64_t>();
    v1::Result r;
    r.set_seq(0);
    if (result.has_finished_at()) {
      *r.mutable_produced_at() = result.finished_at();
    } else if (result.has_started_at()) {
      *r.mutable_produced_at() = result.started_at();
    } else {
      *r.mutable_produced_at() =
          EpochMicrosToProtoTime(ToEpochMicros(absl::Now()));
    }
    *r.mutable_speed() = result;
    std::string bytes;
    r.SerializeToString(&bytes);
    tx.exec_params(
        "INSERT INTO results (agent_id, seq, kind, produced_at, payload)"
        " VALUES ($1, $2, 'speed', to_timestamp($3 / 1e6), $4)",
        agent_id, seq, ProtoTimeToEpochMicros(r.produced_at()),
        pqxx::binarystring(bytes));
    WriteHistory(tx, agent_id, [&] {
      v1::Result w = r;
      w.set_seq(static_cast<uint64_t>(seq));  // negative, as stored
      return w;
    }());
    tx.commit();
  });
}

}  // namespace netvigil::collector
