// Partitions, retention and "store what changed, once" (issue 20) on a real
// PostgreSQL: migration 0014 keeps every row of today's tables and the
// Query reads over them; retention on a fake clock drops exactly what is
// past each horizon, across partition boundaries, and nothing else; an
// unchanged snapshot adds no payload while the current view stays right.
#include <memory>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "collector/store/migrations.h"
#include "collector/store/pg_store.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testing/pg_cluster.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using google::protobuf::util::TimeUtil;
using ::netvigil::testing::IsOk;
using ::netvigil::testing::PgCluster;

PgCluster* g_pg = nullptr;

class Env : public ::testing::Environment {
 public:
  void SetUp() override {
    auto c = PgCluster::Start();
    ASSERT_TRUE(c.ok()) << c.status();
    g_pg = *c;
  }
  void TearDown() override { delete g_pg; }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new Env);

// Midnight UTC of day 20000 (2024-10-04): day boundaries are round numbers.
constexpr int64_t kDay = 86400;
constexpr int64_t kD0 = 20000 * kDay;

// A database of its own per test: retention works on every agent's rows.
std::string FreshDatabase(const std::string& name) {
  pqxx::connection c(g_pg->dsn());
  pqxx::nontransaction tx(c);
  tx.exec0("DROP DATABASE IF EXISTS " + name);
  tx.exec0("CREATE DATABASE " + name);
  return g_pg->dsn() + " dbname=" + name;
}

google::protobuf::Timestamp At(int64_t s) {
  return TimeUtil::SecondsToTimestamp(s);
}

v1::SocketEntry Sock(const std::string& raddr, uint32_t rport,
                     const std::string& exe, uint32_t lport = 40000) {
  v1::SocketEntry e;
  e.set_proto(v1::TRANSPORT_TCP);
  e.set_family(4);
  e.set_state("ESTAB");
  e.set_local_address("192.0.2.10");
  e.set_local_port(lport);
  e.set_remote_address(raddr);
  e.set_remote_port(rport);
  auto* p = e.add_processes();
  p->set_pid(100);
  p->set_exe(exe);
  p->set_name(exe.substr(exe.rfind('/') + 1));
  return e;
}

v1::Result Sockets(uint64_t seq, int64_t at,
                   const std::vector<v1::SocketEntry>& entries) {
  v1::Result r;
  r.set_seq(seq);
  *r.mutable_produced_at() = At(at);
  *r.mutable_sockets()->mutable_taken_at() = At(at);
  for (const auto& e : entries) *r.mutable_sockets()->add_sockets() = e;
  return r;
}

v1::Result Path(uint64_t seq, int64_t at, double loss) {
  v1::Result r;
  r.set_seq(seq);
  *r.mutable_produced_at() = At(at);
  auto* p = r.mutable_path();
  p->set_target("internet");
  *p->mutable_started_at() = At(at);
  p->set_destination_reached(true);
  p->mutable_destination()->set_sent(10);
  p->mutable_destination()->set_loss_percent(loss);
  p->mutable_destination()->set_avg_ms(12.5);
  p->mutable_destination()->set_best_ms(10);
  p->mutable_destination()->set_worst_ms(15);
  p->add_hops()->set_ttl(1);
  return r;
}

class StoreRetentionTest : public ::testing::Test {
 protected:
  // A store on a database of its own with agent `a1`.
  void Open(const std::string& db) {
    dsn_ = FreshDatabase(db);
    store_ = std::make_unique<PgStore>(dsn_, 2);
    ASSERT_THAT(store_->Migrate(), IsOk());
    Connect("a1");
  }
  void Connect(const std::string& agent) {
    v1::Hello hello;
    hello.set_agent_name(agent);
    ASSERT_THAT(store_->AgentConnected(hello, "s1", absl::FromUnixSeconds(kD0)),
                IsOk());
  }

  // The first column of the first row of `sql`, as text ("" for NULL).
  std::string Value(const std::string& sql) {
    std::string out;
    EXPECT_THAT(store_->WithConnection([&](pqxx::connection& c) {
      pqxx::read_transaction tx(c);
      pqxx::row r = tx.exec1(sql);
      out = r[0].is_null() ? "" : r[0].as<std::string>();
    }),
                IsOk());
    return out;
  }
  int64_t Count(const std::string& sql) { return std::stoll(Value(sql)); }
  void Exec(const std::string& sql) {
    ASSERT_THAT(store_->WithConnection([&](pqxx::connection& c) {
      pqxx::work tx(c);
      tx.exec(sql);
      tx.commit();
    }),
                IsOk());
  }

  std::string dsn_;
  std::unique_ptr<PgStore> store_;
};

// --- migration 0014 -------------------------------------------------------

// Every row of a table as text, in a stable order: equal before and after
// means every column of every row is kept.
// The table's columns as they are now, for a row expression: a later
// migration may add columns (0015 adds median and spread to the hourly
// tables), and the rows kept are compared on the columns they had.
std::string Columns(pqxx::transaction_base& tx, const std::string& table) {
  return tx
      .exec_params1(
          "SELECT string_agg(quote_ident(column_name), ', '"
          " ORDER BY ordinal_position) FROM information_schema.columns"
          " WHERE table_schema = 'public' AND table_name = $1",
          table)[0]
      .as<std::string>();
}

std::string Fingerprint(pqxx::transaction_base& tx, const std::string& table,
                        const std::string& columns) {
  const std::string row = "ROW(" + columns + ")::text";
  return tx
      .exec1("SELECT count(*) || ':' || COALESCE(md5(string_agg(" + row +
             ", '|' ORDER BY " + row + ")), '') FROM " + table)[0]
      .as<std::string>();
}

const char* const kTables[] = {"results",       "path_runs",    "speed_results",
                               "socket_events", "file_events",  "path_hourly",
                               "speed_hourly",  "socket_facts", "file_facts",
                               "gaps",          "probe_state",  "alerts",
                               "alert_events"};

TEST_F(StoreRetentionTest, MigrationKeepsEveryRowAndEveryAnswer) {
  dsn_ = FreshDatabase("migrate");
  auto ordered = OrderMigrations(EmbeddedMigrations());
  ASSERT_THAT(ordered, IsOk());
  std::map<std::string, std::string> before, columns;
  std::vector<int64_t> path_seqs;
  {
    // Today's schema: the migrations before 0014, as an older collector
    // left them, with three days of history of two agents in it.
    pqxx::connection c(dsn_);
    pqxx::work tx(c);
    tx.exec0(
        "CREATE TABLE schema_migrations (name text PRIMARY KEY,"
        " applied_at timestamptz NOT NULL DEFAULT now())");
    for (const Migration& m : *ordered) {
      if (m.version >= 14) break;
      tx.exec(m.sql);
      tx.exec_params("INSERT INTO schema_migrations (name) VALUES ($1)",
                     m.name);
    }
    tx.exec0(
        "INSERT INTO agents (name, first_seen, last_seen, acked_through_seq)"
        " VALUES ('a1', to_timestamp(0), to_timestamp(0), 400),"
        " ('a2', to_timestamp(0), to_timestamp(0), 400)");
    for (int agent = 1; agent <= 2; ++agent) {
      // Path runs every 30 min over three days, each with its result.
      for (int i = 0; i < 144; ++i) {
        const int64_t seq = 1 + i;
        const int64_t at = kD0 - 3 * kDay + i * 1800 + agent;
        v1::Result r = Path(seq, at, i % 7);
        std::string bytes;
        r.SerializeToString(&bytes);
        tx.exec_params(
            "INSERT INTO results (agent_id, seq, kind, produced_at, payload)"
            " VALUES ($1, $2, 'path', to_timestamp($3), $4)",
            agent, seq, at, pqxx::binarystring(bytes));
        tx.exec_params(
            "INSERT INTO path_runs VALUES ($1, $2, 'internet', '192.0.2.1',"
            " to_timestamp($3), true, $4, 12.5, 10, 15, 1, '')",
            agent, seq, at, static_cast<double>(i % 7));
        if (agent == 1) path_seqs.push_back(seq);
      }
      for (int i = 0; i < 6; ++i) {
        const int64_t at = kD0 - 3 * kDay + i * 12 * 3600;
        tx.exec_params(
            "INSERT INTO speed_results VALUES ($1::int, $2::int,"
            " 'a' || $1::int, 'a' || (3 - $1::int), false, to_timestamp($3),"
            " to_timestamp($3 + 10), 1, '', 9e8 + $2::int, 8e8, 3, 's')",
            agent, 200 + i, at);
        tx.exec_params(
            "INSERT INTO socket_events (agent_id, seq, at, change, key_kind,"
            " proto, local_address, local_port, remote_address, remote_port,"
            " exe, process_name) VALUES ($1::int, $2::int, to_timestamp($3),"
            " 'appeared', 'remote', 6, '', 0, '198.51.100.' || $2::int, 443,"
            " '/usr/bin/curl', 'curl')",
            agent, 300 + i, at);
        tx.exec_params(
            "INSERT INTO socket_facts VALUES ($1, 'remote', 6, '', 0,"
            " '198.51.100.' || $2::int, 443, '/usr/bin/curl', 'curl',"
            " to_timestamp($3), to_timestamp($3), $4)",
            agent, 300 + i, at, i % 2 == 0);
        tx.exec_params(
            "INSERT INTO file_events (agent_id, seq, at, change, exe, path,"
            " kind, process_name) VALUES ($1::int, $2::int, to_timestamp($3),"
            " 'appeared', '/usr/bin/vim', '/home/u/f' || $2::int, 1, 'vim')",
            agent, 300 + i, at);
        tx.exec_params(
            "INSERT INTO file_facts VALUES ($1, '/usr/bin/vim',"
            " '/home/u/f' || $2::int, 1, 'vim', 1000, false, to_timestamp($3),"
            " to_timestamp($3), true, false)",
            agent, 300 + i, at);
      }
      // Aggregates over two months.
      for (int h = 0; h < 4; ++h) {
        const int64_t hour = kD0 - (40 - 10 * h) * kDay;
        tx.exec_params(
            "INSERT INTO path_hourly VALUES ($1, 'internet', to_timestamp($2),"
            " 60, 60, 0.5, 2, 12, 10, 20)",
            agent, hour);
        tx.exec_params(
            "INSERT INTO speed_hourly VALUES ($1, 'a1', 'a2',"
            " to_timestamp($2), 1, 1, 9e8, 9e8, 9e8)",
            agent, hour);
      }
      tx.exec_params(
          "INSERT INTO gaps VALUES ($1, 399, 150, 160, 11, to_timestamp($2),"
          " to_timestamp($2 + 60), 'spool full')",
          agent, kD0 - kDay);
      tx.exec_params(
          "INSERT INTO probe_state VALUES ($1, 'path', 144, to_timestamp($2))",
          agent, kD0 - 3 * kDay + 143 * 1800 + agent);
    }
    for (const char* t : kTables) {
      columns[t] = Columns(tx, t);
      before[t] = Fingerprint(tx, t, columns[t]);
    }
    tx.commit();
  }
  store_ = std::make_unique<PgStore>(dsn_, 2);
  ASSERT_THAT(store_->Migrate(), IsOk());
  {
    pqxx::connection c(dsn_);
    pqxx::read_transaction tx(c);
    for (const char* t : kTables) {
      EXPECT_EQ(Fingerprint(tx, t, columns[t]), before[t]) << t;
    }
    // The seven time tables are partitioned now, each day (or month) of
    // rows in a partition of its own, the DEFAULT partitions empty; and
    // the eighth, socket_event_sets (0016), is new and empty.
    EXPECT_EQ(
        tx.exec1("SELECT count(*) FROM pg_partitioned_table")[0].as<int>(), 8);
    EXPECT_EQ(tx.exec1("SELECT count(*) FROM socket_event_sets")[0].as<int>(),
              0);
    EXPECT_EQ(
        tx.exec1("SELECT count(*) FROM nv_part.results_default")[0].as<int>(),
        0);
    EXPECT_GE(tx.exec1("SELECT count(*) FROM pg_inherits WHERE inhparent ="
                       " 'results'::regclass")[0]
                  .as<int>(),
              4);
    EXPECT_EQ(tx.exec1("SELECT count(*) FROM ONLY results")[0].as<int>(), 0);
  }
  // The Query reads answer from the moved rows.
  auto runs = store_->PathHistory("a1", "internet", 0,
                                  (kD0 + kDay) * 1'000'000LL, 1000);
  ASSERT_THAT(runs, IsOk());
  ASSERT_EQ(runs->size(), path_seqs.size());
  for (size_t i = 0; i < runs->size(); ++i) {
    EXPECT_EQ((*runs)[i].seq(), path_seqs[i]);
    EXPECT_EQ((*runs)[i].run().hops_size(), 1);
  }
  auto latest = store_->LatestPaths("a2");
  ASSERT_THAT(latest, IsOk());
  ASSERT_EQ(latest->size(), 1u);
  EXPECT_EQ(latest->front().at().seconds(), kD0 - 3 * kDay + 143 * 1800 + 2);
  auto changes = store_->SocketChanges("a1", 0);
  ASSERT_THAT(changes, IsOk());
  EXPECT_EQ(changes->changes_size(), 6);
  auto files = store_->FileAccess("a2", 0);
  ASSERT_THAT(files, IsOk());
  EXPECT_EQ(files->facts_size(), 6);
  auto matrix = store_->SpeedMatrix();
  ASSERT_THAT(matrix, IsOk());
  EXPECT_EQ(matrix->cells_size(), 2);
  auto current = store_->CurrentSockets("a1");
  ASSERT_THAT(current, IsOk());
  EXPECT_EQ(current->facts_size(), 3);
  // Ingest goes on: new ids follow the old ones, and a resend of a result
  // the old tables hold is still nothing twice.
  ASSERT_THAT(store_->StoreResults(
                  "a1", {Path(144, kD0, 0), Path(401, kD0 + 60, 0),
                         Sockets(402, kD0 + 120,
                                 {Sock("203.0.113.1", 443, "/usr/bin/ssh")})}),
              IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM results WHERE agent_id = 1"), 146);
  EXPECT_EQ(Count("SELECT count(*) FROM results WHERE agent_id = 1 AND seq ="
                  " 144"),
            1);
  // Events from now on are packed a snapshot a row (migration 0016); the
  // old rows stay where they are, and SocketChanges answers both in time
  // order: the six old events as before, then the new snapshot's.
  EXPECT_EQ(Count("SELECT count(*) FROM socket_events WHERE seq = 402"), 0);
  const int64_t packed = Count(
      "SELECT sum(events) FROM socket_event_sets WHERE agent_id = 1 AND"
      " seq = 402");
  EXPECT_GE(packed, 1);
  auto after = store_->SocketChanges("a1", 0);
  ASSERT_THAT(after, IsOk());
  ASSERT_EQ(after->changes_size(), 6 + packed);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(after->changes(i).at().seconds(),
              changes->changes(i).at().seconds());
    EXPECT_EQ(after->changes(i).change(), changes->changes(i).change());
    EXPECT_EQ(after->changes(i).fact().remote_address(),
              changes->changes(i).fact().remote_address());
  }
  bool ssh = false;
  for (int i = 6; i < after->changes_size(); ++i) {
    const v1::SocketChange& c = after->changes(i);
    EXPECT_EQ(c.at().seconds(), kD0 + 120);
    if (c.fact().remote_address() == "203.0.113.1") {
      ssh = true;
      EXPECT_EQ(c.change(), "appeared");
      EXPECT_EQ(c.fact().exe(), "/usr/bin/ssh");
      EXPECT_TRUE(c.fact().present());
      EXPECT_EQ(c.fact().first_seen().seconds(), kD0 + 120);
    } else {
      EXPECT_EQ(c.change(), "gone") << c.ShortDebugString();
      EXPECT_FALSE(c.fact().present());
    }
  }
  EXPECT_TRUE(ssh);
}

// --- retention --------------------------------------------------------------

TEST_F(StoreRetentionTest, RetentionDropsWhatIsPastEachHorizonAndNothingElse) {
  Open("retention");
  // Partitions for eleven days; rows at each day's first and last second.
  ASSERT_THAT(store_->EnsurePartitions(absl::FromUnixSeconds(kD0 - 10 * kDay),
                                       absl::FromUnixSeconds(kD0)),
              IsOk());
  std::vector<v1::Result> batch;
  uint64_t seq = 0;
  for (int d = -10; d <= 0; ++d) {
    for (int64_t at : {kD0 + d * kDay, kD0 + d * kDay + kDay - 1}) {
      batch.push_back(Path(++seq, at, 0));
      // A new remote each time: an appeared event, and a gone one after.
      ++seq;
      batch.push_back(Sockets(
          seq, at, {Sock("198.51.100.1", 1000 + seq, "/usr/bin/firefox")}));
    }
  }
  ASSERT_THAT(store_->StoreResults("a1", batch), IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM nv_part.results_default"), 0);
  // Facts, alerts and gaps at chosen ages.
  // (socket_facts is a view of these two tables from migration 0019 on.)
  Exec("INSERT INTO socket_programs (agent_id, exe) VALUES (1, '/x')");
  Exec(absl::StrCat(
      "INSERT INTO socket_fact_rows (agent_id, kind, proto, local_address,"
      " local_port, remote_address, remote_port, program_id, process_name,"
      " first_seen, last_seen, present) SELECT 1, 'l', 6, '0.0.0.0', v.port,"
      " '', 0, p.id, 'x', to_timestamp(0), to_timestamp(v.last), v.present"
      " FROM socket_programs p, (VALUES (1, ",
      kD0 - 100 * kDay, ", false), (2, ", kD0 - 80 * kDay, ", false), (3, ",
      kD0 - 100 * kDay,
      ", true)) AS v(port, last, present) WHERE p.agent_id = 1 AND"
      " p.exe = '/x'"));
  for (int64_t resolved_days : {100, 80, -1}) {
    Exec(absl::StrCat(
        "WITH a AS (INSERT INTO alerts (kind, subject, severity, scope, hosts,"
        " remote_address, summary, first_seen, last_seen, resolved_at,"
        " payload) VALUES ('k', 's",
        resolved_days, "', 1, 1, '{a1}', '', '', to_timestamp(0),",
        " to_timestamp(0), ",
        resolved_days < 0
            ? std::string("NULL")
            : absl::StrCat("to_timestamp(", kD0 - resolved_days * kDay, ")"),
        ", '{}') RETURNING id) INSERT INTO alert_events (alert_id, type, at,"
        " payload) SELECT id, 1, to_timestamp(0), '{}' FROM a"));
  }
  const int64_t events = Count("SELECT sum(events) FROM socket_event_sets");
  const int64_t socket_facts = Count("SELECT count(*) FROM socket_facts");
  Store::RetentionPolicy policy;
  policy.raw = absl::Hours(24 * 3);
  policy.results = absl::Hours(24 * 5);
  policy.events = absl::Hours(24 * 7);
  policy.gone_facts = absl::Hours(24 * 90);
  policy.resolved_alerts = absl::Hours(24 * 90);
  // Noon of day 0: the horizons fall mid-day, so the partition that holds
  // each horizon is kept whole.
  const absl::Time now = absl::FromUnixSeconds(kD0 + kDay / 2);
  const absl::Time started = absl::Now();
  auto stats = store_->ApplyRetention(policy, now);
  const absl::Duration took = absl::Now() - started;
  ASSERT_THAT(stats, IsOk());
  EXPECT_LT(took, absl::Seconds(5)) << "a pass drops, it does not delete";
  // Path runs: days -10..-4 folded into hours and dropped; -3..0 kept (the
  // horizon is noon of day -3).
  EXPECT_EQ(Count("SELECT count(*) FROM path_runs"), 4 * 2);
  EXPECT_EQ(Count("SELECT extract(epoch FROM min(started_at))::bigint FROM"
                  " path_runs"),
            kD0 - 3 * kDay);
  EXPECT_EQ(stats->path_runs_aggregated, 7 * 2);
  EXPECT_EQ(Count("SELECT sum(runs) FROM path_hourly"), 7 * 2);
  // Results: days -5..0 kept; the first second of day -5 too, the last
  // second of day -6 not.
  EXPECT_EQ(Count("SELECT extract(epoch FROM min(produced_at))::bigint FROM"
                  " results"),
            kD0 - 5 * kDay);
  EXPECT_EQ(Count("SELECT count(*) FROM results"), 6 * 4);
  // Events: days -7..0.
  EXPECT_EQ(Count("SELECT extract(epoch FROM min(at))::bigint FROM"
                  " socket_event_sets"),
            kD0 - 7 * kDay);
  // Every snapshot after the first has one appeared and one gone event.
  EXPECT_EQ(events, 1 + 21 * 2);
  EXPECT_EQ(Count("SELECT sum(events) FROM socket_event_sets"), 8 * 2 * 2);
  EXPECT_EQ(Count("SELECT count(*) FROM socket_event_sets"), 8 * 2)
      << "a snapshot's events are one row";
  // Facts: only the one gone 100 days ago; a present one stays whatever
  // its age, and so does the history's own (present, recent).
  EXPECT_EQ(stats->facts_deleted, 1);
  EXPECT_EQ(Count("SELECT count(*) FROM socket_facts"), socket_facts - 1);
  EXPECT_EQ(Count("SELECT count(*) FROM socket_facts WHERE local_port = 1"), 0);
  // Alerts: the one resolved 100 days ago, with its event; the open one and
  // the one resolved 80 days ago stay.
  EXPECT_EQ(stats->alerts_deleted, 1);
  EXPECT_EQ(Count("SELECT count(*) FROM alerts"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM alerts WHERE subject = 's100'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM alert_events"), 2);
  // The partitions themselves are gone, not emptied.
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM pg_class WHERE relname"
                               " = 'results_p",
                               "20240928'")),
            0);
  EXPECT_EQ(Count("SELECT count(*) FROM pg_class WHERE relname ="
                  " 'results_p20240929'"),
            1);
  // A second pass at the same time finds nothing more to do.
  auto again = store_->ApplyRetention(policy, now);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->partitions_dropped, 0);
  EXPECT_EQ(again->path_runs_aggregated, 0);
  EXPECT_EQ(Count("SELECT count(*) FROM results"), 6 * 4);
  // The next day's pass takes day -5 of the results (and -2 of the runs).
  auto next = store_->ApplyRetention(policy, now + absl::Hours(24));
  ASSERT_THAT(next, IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM results"), 5 * 4);
  EXPECT_EQ(Count("SELECT count(*) FROM path_runs"), 3 * 2);
}

TEST_F(StoreRetentionTest, ADayPartitionOfAThousandAgentsGoesInUnderASecond) {
  Open("bigday");
  // Every partition the pass would make is made first: the figure is the
  // drop's alone.
  ASSERT_THAT(store_->EnsurePartitions(absl::FromUnixSeconds(kD0 - 10 * kDay),
                                       absl::FromUnixSeconds(kD0 + 5 * kDay)),
              IsOk());
  // 300,000 event rows in day -1 (a thousand busy agents' day of churn).
  Exec(absl::StrCat(
      "INSERT INTO socket_events (agent_id, seq, at, change, key_kind, proto,"
      " local_address, local_port, remote_address, remote_port, exe,"
      " process_name) SELECT 1, g, to_timestamp(",
      kD0 - kDay,
      " + g % 86400), 'appeared', 'remote', 6, '', 0, '198.51.100.' ||"
      " (g % 250), g % 65536, '/usr/bin/firefox', 'firefox'"
      " FROM generate_series(1, 300000) g"));
  Store::RetentionPolicy policy;
  policy.events = absl::Hours(24);
  const absl::Time started = absl::Now();
  auto stats =
      store_->ApplyRetention(policy, absl::FromUnixSeconds(kD0 + kDay + 60));
  const absl::Duration took = absl::Now() - started;
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM socket_events"), 0);
  EXPECT_LT(took, absl::Seconds(1));
  std::cout << "retention of a day partition of 300000 events took "
            << absl::FormatDuration(took) << "\n";
}

TEST_F(StoreRetentionTest, ADayWithoutAPartitionGetsOneOnDemandWithinBounds) {
  Open("ondemand");
  // Ten days ago (a spool replayed after an outage): made on demand. Four
  // hundred days ago (a hostile or broken clock): no partition is made, the
  // row waits in the DEFAULT partition, retention deletes it as a row.
  const int64_t today = absl::ToUnixSeconds(absl::Now()) / kDay * kDay;
  const int64_t recent = today - 10 * kDay + 3600;
  const int64_t ancient = today - 400 * kDay + 3600;
  auto name = [](int64_t t) {
    return absl::FormatTime("results_p%Y%m%d", absl::FromUnixSeconds(t),
                            absl::UTCTimeZone());
  };
  ASSERT_EQ(Count("SELECT count(*) FROM pg_class WHERE relname = '" +
                  name(recent) + "'"),
            0);
  ASSERT_THAT(
      store_->StoreResults("a1", {Path(1, ancient, 0), Path(2, recent, 0)}),
      IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM pg_class WHERE relname = '" +
                  name(recent) + "'"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM pg_class WHERE relname = '" +
                  name(ancient) + "'"),
            0);
  EXPECT_EQ(Count("SELECT count(*) FROM nv_part.results_default"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM nv_part.path_runs_default"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM results"), 2);
  Store::RetentionPolicy policy;
  auto stats = store_->ApplyRetention(policy, absl::Now());
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM nv_part.results_default"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM results"), 0) << "both past 7 days";
}

// --- store what changed, once -------------------------------------------

TEST_F(StoreRetentionTest, AnUnchangedSnapshotAddsNoPayload) {
  Open("once");
  const std::vector<v1::SocketEntry> table = {
      Sock("198.51.100.7", 443, "/usr/bin/firefox", 40001),
      Sock("198.51.100.8", 443, "/usr/bin/firefox", 40002)};
  ASSERT_THAT(store_->StoreResults("a1", {Sockets(1, kD0 + 3600, table)}),
              IsOk());
  const std::string payloads =
      "SELECT COALESCE(sum(octet_length(payload)), 0) FROM results";
  const int64_t first = Count(payloads);
  EXPECT_GT(first, 0) << "the first snapshot of the day is kept whole";
  // The same facts (a new ephemeral local port is not a new fact): a row,
  // no payload, no event.
  std::vector<v1::SocketEntry> churned = table;
  churned[0].set_local_port(40099);
  ASSERT_THAT(store_->StoreResults("a1", {Sockets(2, kD0 + 3660, churned)}),
              IsOk());
  EXPECT_EQ(Count(payloads), first);
  EXPECT_EQ(Count("SELECT count(*) FROM results"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM results WHERE payload IS NULL"), 1);
  EXPECT_EQ(Count("SELECT sum(events) FROM socket_event_sets"), 2);
  // The current view answers from the facts, as of the latest snapshot.
  auto current = store_->CurrentSockets("a1");
  ASSERT_THAT(current, IsOk());
  EXPECT_EQ(current->taken_at().seconds(), kD0 + 3660);
  ASSERT_EQ(current->facts_size(), 2);
  EXPECT_EQ(current->facts(0).remote_address(), "198.51.100.7");
  EXPECT_EQ(current->facts(0).last_seen().seconds(), kD0 + 3660);
  // A change is in the facts and events, not in a payload either.
  std::vector<v1::SocketEntry> changed = table;
  changed.push_back(Sock("203.0.113.5", 22, "/usr/bin/ssh"));
  ASSERT_THAT(store_->StoreResults("a1", {Sockets(3, kD0 + 3720, changed)}),
              IsOk());
  EXPECT_EQ(Count(payloads), first);
  current = store_->CurrentSockets("a1");
  ASSERT_THAT(current, IsOk());
  EXPECT_EQ(current->facts_size(), 3);
  // A resend changes nothing (nothing twice).
  ASSERT_THAT(store_->StoreResults("a1", {Sockets(3, kD0 + 3720, changed)}),
              IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM results"), 3);
  // The next UTC day's first snapshot is kept whole again, one per kind.
  ASSERT_THAT(
      store_->StoreResults("a1", {Sockets(4, kD0 + kDay + 30, changed),
                                  Sockets(5, kD0 + kDay + 90, changed)}),
      IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM results WHERE payload IS NOT NULL"), 2);
  EXPECT_EQ(Count("SELECT seq FROM results WHERE payload IS NOT NULL"
                  " ORDER BY seq DESC LIMIT 1"),
            4);
}

TEST_F(StoreRetentionTest, AFactNamesItsProgramByIdAndReadsAsBefore) {
  // Migration 0019: a fact's program path is stored once per agent
  // (socket_programs) and named by id; its kind is one byte. Readers see
  // the same facts and changes as before.
  Open("programs");
  Connect("a2");
  const int64_t t = kD0 + 3600;
  const std::string curl = "/usr/bin/curl", ssh = "/usr/bin/ssh";
  ASSERT_THAT(
      store_->StoreResults("a1", {Sockets(1, t,
                                          {Sock("198.51.100.1", 443, curl),
                                           Sock("198.51.100.2", 22, ssh)})}),
      IsOk());
  ASSERT_THAT(
      store_->StoreResults(
          "a1", {Sockets(2, t + 60, {Sock("198.51.100.1", 443, curl)})}),
      IsOk());
  ASSERT_THAT(store_->StoreResults(
                  "a1", {Sockets(3, t + 120,
                                 {Sock("198.51.100.1", 443, curl),
                                  Sock("198.51.100.3", 443, curl, 40001)})}),
              IsOk());
  ASSERT_THAT(store_->StoreResults(
                  "a2", {Sockets(1, t, {Sock("198.51.100.1", 443, curl)})}),
              IsOk());
  // Each agent's programs once; batches that name a known program take no
  // new number (ids stay small: they are 4 bytes in every fact and key).
  EXPECT_EQ(Count("SELECT count(*) FROM socket_programs"), 3);
  EXPECT_EQ(Count("SELECT max(id) FROM socket_programs"), 3);
  EXPECT_EQ(Count("SELECT count(DISTINCT program_id) FROM socket_fact_rows"
                  " WHERE agent_id = 1"),
            2);
  EXPECT_EQ(Count("SELECT count(*) FROM socket_fact_rows WHERE kind = 'r'"), 4);
  // The view keeps the old columns.
  EXPECT_EQ(Value("SELECT string_agg(key_kind || ' ' || exe || ' ' ||"
                  " remote_address, ',' ORDER BY remote_address) FROM"
                  " socket_facts WHERE agent_id = 1"),
            "remote /usr/bin/curl 198.51.100.1,remote /usr/bin/ssh "
            "198.51.100.2,remote /usr/bin/curl 198.51.100.3");
  auto current = store_->CurrentSockets("a1");
  ASSERT_THAT(current, IsOk());
  ASSERT_EQ(current->facts_size(), 2);
  for (const auto& f : current->facts()) EXPECT_EQ(f.exe(), curl);
  auto changes = store_->SocketChanges("a1", 0);
  ASSERT_THAT(changes, IsOk());
  // Appeared 1 and 2, gone 2, appeared 3.
  ASSERT_EQ(changes->changes_size(), 4);
  const v1::SocketChange& gone = changes->changes(2);
  EXPECT_EQ(gone.change(), "gone");
  EXPECT_EQ(gone.fact().exe(), ssh);
  EXPECT_EQ(gone.fact().remote_port(), 22u);
  EXPECT_FALSE(gone.fact().present());
  EXPECT_EQ(gone.fact().first_seen().seconds(), t);
  EXPECT_EQ(gone.fact().last_seen().seconds(), t) << "last seen in seq 1";
  EXPECT_EQ(changes->changes(3).fact().remote_address(), "198.51.100.3");
  EXPECT_TRUE(changes->changes(3).fact().present());
  EXPECT_EQ(changes->changes(3).fact().first_seen().seconds(), t + 120);
  // The other agent's fact with the same text is its own.
  auto other = store_->CurrentSockets("a2");
  ASSERT_THAT(other, IsOk());
  ASSERT_EQ(other->facts_size(), 1);
  EXPECT_EQ(other->facts(0).first_seen().seconds(), t);
}

TEST_F(StoreRetentionTest, AFactThatGoesIsUpdatedInPlace) {
  // Migration 0017: no index names what the "gone" update changes, so it
  // is a heap-only update and adds no second entry to the key index (where
  // its page has room: 0019 fills pages, and on the sizing desktop 87 % of
  // these updates still are).
  Open("hot");
  std::vector<v1::SocketEntry> table;
  for (int i = 0; i < 20; ++i) {
    table.push_back(Sock(absl::StrCat("198.51.100.", i), 443, "/usr/bin/curl"));
  }
  ASSERT_THAT(store_->StoreResults("a1", {Sockets(1, kD0 + 3600, table)}),
              IsOk());
  ASSERT_THAT(store_->StoreResults("a1", {Sockets(2, kD0 + 3660, {})}), IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM socket_facts WHERE NOT present"), 20);
  // Statistics reach pg_stat_user_tables when the writing backend is idle
  // (within about a second in PostgreSQL 15).
  int64_t updates = 0, hot = 0;
  for (int i = 0; i < 100 && updates < 20; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    updates = Count(
        "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname ="
        " 'socket_fact_rows'");
    hot = Count(
        "SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname ="
        " 'socket_fact_rows'");
  }
  EXPECT_EQ(updates, 20);
  EXPECT_EQ(hot, updates) << "every gone update heap-only";
  // And retention still finds a fact gone long ago, by its first_seen.
  Store::RetentionPolicy policy;
  policy.gone_facts = absl::Hours(24);
  auto stats =
      store_->ApplyRetention(policy, absl::FromUnixSeconds(kD0 + 3 * kDay));
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->facts_deleted, 20);
  EXPECT_EQ(Count("SELECT count(*) FROM socket_facts"), 0);
  // Their events stay (events_days); with the facts gone they read as the
  // old rows did: first and last seen at the event, not present.
  auto changes = store_->SocketChanges("a1", 0);
  ASSERT_THAT(changes, IsOk());
  ASSERT_EQ(changes->changes_size(), 40);
  for (const v1::SocketChange& c : changes->changes()) {
    EXPECT_EQ(c.fact().first_seen().seconds(), c.at().seconds());
    EXPECT_EQ(c.fact().last_seen().seconds(), c.at().seconds());
    EXPECT_FALSE(c.fact().present());
  }
  EXPECT_EQ(changes->changes(0).change(), "appeared");
  EXPECT_EQ(changes->changes(0).at().seconds(), kD0 + 3600);
  EXPECT_EQ(changes->changes(39).change(), "gone");
  EXPECT_EQ(changes->changes(39).at().seconds(), kD0 + 3660);
}

}  // namespace
}  // namespace netvigil::collector
