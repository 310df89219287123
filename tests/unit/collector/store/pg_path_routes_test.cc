// Path hops stored by what changes (migration 0018), on a real PostgreSQL:
// a path run keeps no result payload, its route is stored once per agent
// and its figures packed in its row, and PathHistory rebuilds every run the
// agent sent (figures to the microsecond); migration keeps every row and
// every answer of runs stored before it; retention deletes routes no kept
// run names and nothing else; an agent adds at most one route a run.
#include <memory>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "collector/store/migrations.h"
#include "collector/store/pg_store.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testing/pg_cluster.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using google::protobuf::util::DefaultFieldComparator;
using google::protobuf::util::MessageDifferencer;
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

constexpr int64_t kDay = 86400;
constexpr int64_t kD0 = 20000 * kDay;  // midnight UTC, 2024-10-04
constexpr int64_t kUs = 1'000'000;

std::string FreshDatabase(const std::string& name) {
  pqxx::connection c(g_pg->dsn());
  pqxx::nontransaction tx(c);
  tx.exec0("DROP DATABASE IF EXISTS " + name);
  tx.exec0("CREATE DATABASE " + name);
  return g_pg->dsn() + " dbname=" + name;
}

// A run as the probe makes it: `hops` hops, the third silent, the fifth
// with two routers; `route` picks the addresses (another route), `seq` the
// figures; the destination a copy of the last hop.
v1::Result PathResult(uint64_t seq, int64_t at, int route = 0, int hops = 8) {
  v1::Result r;
  r.set_seq(seq);
  *r.mutable_produced_at() = TimeUtil::SecondsToTimestamp(at + 10);
  v1::PathRun* p = r.mutable_path();
  p->set_target("internet");
  p->set_resolved_address("192.0.2.1");
  p->set_ip_version(4);
  *p->mutable_started_at() =
      TimeUtil::NanosecondsToTimestamp(at * 1'000'000'000 + 123'456'789);
  *p->mutable_finished_at() = TimeUtil::SecondsToTimestamp(at + 10);
  p->set_count(10);
  p->set_interval_s(1);
  p->set_max_ttl(30);
  p->set_payload_bytes(56);
  p->set_socket_kind(v1::PATH_SOCKET_KIND_RAW);
  for (int ttl = 1; ttl <= hops; ++ttl) {
    v1::PathHop* h = p->add_hops();
    h->set_ttl(ttl);
    h->set_sent(10);
    if (ttl == 3) {
      h->set_loss_percent(100);
      continue;
    }
    h->set_received(10);
    v1::HopAddress* a = h->add_addresses();
    a->set_address(absl::StrCat("10.", route, ".0.", ttl));
    a->set_received(10);
    if (ttl == 5) {
      a->set_received(7);
      v1::HopAddress* b = h->add_addresses();
      b->set_address(absl::StrCat("10.", route, ".1.", ttl));
      b->set_received(3);
    }
    const double base = 0.987654 * ttl + 0.001 * static_cast<double>(seq % 97);
    h->set_best_ms(base);
    h->set_avg_ms(base + 0.3333333);
    h->set_worst_ms(base + 1.4142136);
    h->set_last_ms(base + 0.25);
    h->set_stdev_ms(0.2718281);
  }
  v1::PathHop* d = p->mutable_hops(hops - 1);
  d->set_is_destination(true);
  p->set_destination_reached(true);
  *p->mutable_destination() = *d;
  return r;
}

// Equal but for the millisecond figures (to the microsecond, rounded) and
// the times (to the microsecond, truncated).
void ExpectSameRun(const v1::PathRun& got, const v1::PathRun& want) {
  v1::PathRun w = want;
  for (auto* t : {w.mutable_started_at(), w.mutable_finished_at()}) {
    t->set_nanos(t->nanos() / 1000 * 1000);
  }
  MessageDifferencer d;
  DefaultFieldComparator cmp;
  cmp.set_float_comparison(DefaultFieldComparator::APPROXIMATE);
  cmp.SetDefaultFractionAndMargin(0, 0.0005 + 1e-9);
  d.set_field_comparator(&cmp);
  std::string diff;
  d.ReportDifferencesToString(&diff);
  EXPECT_TRUE(d.Compare(got, w)) << diff;
}

class PathRoutesTest : public ::testing::Test {
 protected:
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
  int64_t Count(const std::string& sql) {
    int64_t n = -1;
    EXPECT_THAT(store_->WithConnection([&](pqxx::connection& c) {
      pqxx::read_transaction tx(c);
      n = tx.exec1(sql)[0].as<int64_t>();
    }),
                IsOk());
    return n;
  }
  // Each route's row version (ctid, xmax): changed by a write or a lock.
  std::string Versions() {
    std::string out;
    EXPECT_THAT(store_->WithConnection([&](pqxx::connection& c) {
      pqxx::read_transaction tx(c);
      out = tx.exec1(
                  "SELECT string_agg(id || ' ' || ctid::text || ' ' ||"
                  " xmax::text, ',' ORDER BY id) FROM path_routes")[0]
                .as<std::string>();
    }),
                IsOk());
    return out;
  }
  std::vector<v1::StoredPathRun> History(const std::string& agent,
                                         bool without_hops = false) {
    Store::HistoryQuery q;
    q.since_us = 0;
    q.until_us = (kD0 + 30 * kDay) * kUs;
    q.limit = 10000;
    q.resolution = v1::RESOLUTION_RAW;
    q.without_hops = without_hops;
    auto h = store_->PathHistory(agent, "internet", q);
    EXPECT_THAT(h, IsOk());
    if (!h.ok()) return {};
    return {h->runs().begin(), h->runs().end()};
  }

  std::string dsn_;
  std::unique_ptr<PgStore> store_;
};

TEST_F(PathRoutesTest, RunsKeepNoPayloadAndReadBackAsSent) {
  Open("routes_read");
  // A day of runs every 10 minutes over two routes (a flap), in batches.
  std::vector<v1::Result> sent;
  for (int i = 0; i < 144; ++i) {
    sent.push_back(PathResult(1 + i, kD0 + i * 600, (i / 10) % 2));
  }
  for (size_t i = 0; i < sent.size(); i += 16) {
    std::vector<v1::Result> batch(sent.begin() + i,
                                  sent.begin() + std::min(sent.size(), i + 16));
    ASSERT_THAT(store_->StoreResults("a1", batch), IsOk());
  }
  EXPECT_EQ(Count("SELECT count(*) FROM results WHERE kind = 'path'"), 144);
  EXPECT_EQ(Count("SELECT count(*) FROM results WHERE payload IS NOT NULL"), 0)
      << "no path run keeps its payload";
  EXPECT_EQ(Count("SELECT count(*) FROM path_runs WHERE figures IS NULL"
                  " OR route_id IS NULL"),
            0);
  EXPECT_EQ(Count("SELECT count(*) FROM path_routes"), 2) << "one a route";
  // A hop's figures are about a dozen bytes.
  EXPECT_LT(Count("SELECT max(length(figures)) FROM path_runs"), 8 * 14 + 20);

  const std::vector<v1::StoredPathRun> runs = History("a1");
  ASSERT_EQ(runs.size(), sent.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].seq(), sent[i].seq());
    ExpectSameRun(runs[i].run(), sent[i].path());
  }
  // The timeline's read is what it was: the rows alone.
  const std::vector<v1::StoredPathRun> bare = History("a1", true);
  ASSERT_EQ(bare.size(), sent.size());
  EXPECT_EQ(bare[0].run().hops_size(), 0);
  EXPECT_NEAR(bare[0].run().destination().avg_ms(),
              sent[0].path().destination().avg_ms(), 1e-9);
  EXPECT_EQ(bare[0].route_id(), 0u) << "no route ids unless asked";
  // Asked, each run names its route and the answer holds the two routes
  // once: a timeline marks the route changes with no hops read.
  Store::HistoryQuery q;
  q.until_us = (kD0 + 30 * kDay) * kUs;
  q.limit = 10000;
  q.resolution = v1::RESOLUTION_RAW;
  q.without_hops = true;
  q.with_routes = true;
  auto routed = store_->PathHistory("a1", "internet", q);
  ASSERT_THAT(routed, IsOk());
  ASSERT_EQ(routed->runs_size(), 144);
  ASSERT_EQ(routed->routes_size(), 2);
  std::map<uint64_t, const v1::PathRoute*> by_id;
  for (const v1::PathRoute& r : routed->routes()) by_id[r.id()] = &r;
  for (int i = 0; i < 144; ++i) {
    const v1::StoredPathRun& run = routed->runs(i);
    EXPECT_EQ(run.run().hops_size(), 0);
    ASSERT_EQ(by_id.count(run.route_id()), 1u) << i;
    // Runs of the same route share its id; a change is a new id.
    if (i > 0) {
      EXPECT_EQ(run.route_id() == routed->runs(i - 1).route_id(),
                (i / 10) % 2 == ((i - 1) / 10) % 2)
          << i;
    }
    const v1::PathRoute& r = *by_id[run.route_id()];
    const v1::PathRun& p = sent[i].path();
    ASSERT_EQ(r.hops_size(), p.hops_size());
    for (int h = 0; h < r.hops_size(); ++h) {
      EXPECT_EQ(r.hops(h).ttl(), p.hops(h).ttl());
      EXPECT_EQ(r.hops(h).is_destination(), p.hops(h).is_destination());
      ASSERT_EQ(r.hops(h).addresses_size(), p.hops(h).addresses_size());
      for (int a = 0; a < r.hops(h).addresses_size(); ++a) {
        EXPECT_EQ(r.hops(h).addresses(a).address(),
                  p.hops(h).addresses(a).address());
      }
      EXPECT_EQ(r.hops(h).sent(), 0u) << "no figures in a route";
    }
  }
  // A resend changes nothing.
  ASSERT_THAT(store_->StoreResults("a1", {sent[5]}), IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM path_runs"), 144);
  EXPECT_EQ(Count("SELECT count(*) FROM path_routes"), 2);
}

TEST_F(PathRoutesTest, ARunThePackCannotHoldKeepsItsPayload) {
  Open("routes_odd");
  // Not from an agent (validation refuses these), but the store is not
  // the place to lose them: a destination that is no hop, a failed run.
  v1::Result odd = PathResult(1, kD0);
  odd.mutable_path()->mutable_destination()->set_avg_ms(77);
  v1::Result failed;
  failed.set_seq(2);
  *failed.mutable_produced_at() = TimeUtil::SecondsToTimestamp(kD0 + 60);
  failed.mutable_path()->set_target("internet");
  failed.mutable_path()->set_error("name does not resolve");
  ASSERT_THAT(store_->StoreResults("a1", {odd, failed}), IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM results WHERE payload IS NOT NULL"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM path_runs WHERE figures IS NULL"), 1);
  const std::vector<v1::StoredPathRun> runs = History("a1");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_TRUE(MessageDifferencer::Equals(runs[0].run(), odd.path()));
  EXPECT_EQ(runs[1].run().error(), "name does not resolve");
  EXPECT_EQ(runs[1].run().hops_size(), 0);
  EXPECT_FALSE(runs[1].run().has_started_at()) << "the agent set none";
}

TEST_F(PathRoutesTest, AnAgentAddsAtMostOneRouteARun) {
  Open("routes_hostile");
  Connect("a2");
  // Every run a route of its own (an agent that lies, or a path that never
  // settles): one route a run, no more; the other agent's equal routes are
  // its own.
  std::vector<v1::Result> batch;
  for (int i = 0; i < 40; ++i) batch.push_back(PathResult(1 + i, kD0 + i, i));
  ASSERT_THAT(store_->StoreResults("a1", batch), IsOk());
  ASSERT_THAT(store_->StoreResults("a2", batch), IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM path_routes"), 80);
  EXPECT_EQ(Count("SELECT count(*) FROM path_routes r JOIN agents a"
                  " ON a.id = r.agent_id WHERE a.name = 'a1'"),
            40);
  // Routes are agents' own: a2's runs name a2's routes only.
  EXPECT_EQ(Count("SELECT count(*) FROM path_runs p JOIN path_routes r"
                  " ON r.id = p.route_id WHERE r.agent_id <> p.agent_id"),
            0);
  const auto runs = History("a2");
  ASSERT_EQ(runs.size(), 40u);
  ExpectSameRun(runs[39].run(), batch[39].path());
}

TEST_F(PathRoutesTest, RetentionDeletesRoutesNoKeptRunNames) {
  Open("routes_retention");
  // Route 1 taken on days 0 and 9; route 2 on day 0 only; route 3 on day 9.
  ASSERT_THAT(store_->StoreResults(
                  "a1", {PathResult(1, kD0, 1), PathResult(2, kD0 + 60, 2)}),
              IsOk());
  ASSERT_THAT(
      store_->StoreResults("a1", {PathResult(3, kD0 + 9 * kDay, 1),
                                  PathResult(4, kD0 + 9 * kDay + 60, 3)}),
      IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM path_routes"), 3);
  // Route 1's last_used moved to day 9 (more than a day on).
  const std::string day9 = std::to_string(kD0 + 9 * kDay);
  EXPECT_EQ(Count("SELECT count(*) FROM path_routes WHERE last_used >="
                  " to_timestamp(" +
                  day9 + ")"),
            2);
  // Within a day it does not move: the row is not rewritten every run.
  const std::string versions = Versions();
  ASSERT_THAT(
      store_->StoreResults("a1", {PathResult(5, kD0 + 9 * kDay + 3600, 1)}),
      IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM path_routes WHERE last_used >"
                  " to_timestamp(" +
                  day9 + " + 120)"),
            0);
  // Nor locked: a current route is only read (no row lock, no WAL): its
  // row version's xmax is what it was.
  EXPECT_EQ(Versions(), versions);
  Store::RetentionPolicy policy;  // raw: 7 days
  // Day 8: day 0's runs go (raw_cut is day 1); no route is a day older
  // than the cut.
  ASSERT_THAT(
      store_->ApplyRetention(policy, absl::FromUnixSeconds(kD0 + 8 * kDay + 1)),
      IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM path_runs"), 3);
  EXPECT_EQ(Count("SELECT count(*) FROM path_routes"), 3);
  // Day 9: route 2, last used on day 0, goes; routes 1 and 3 stay.
  ASSERT_THAT(
      store_->ApplyRetention(policy, absl::FromUnixSeconds(kD0 + 9 * kDay + 1)),
      IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM path_routes"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM path_runs"), 3);
  const auto runs = History("a1");
  ASSERT_EQ(runs.size(), 3u);
  ExpectSameRun(runs[0].run(), PathResult(3, kD0 + 9 * kDay, 1).path());
  ExpectSameRun(runs[1].run(), PathResult(4, kD0 + 9 * kDay + 60, 3).path());
  ExpectSameRun(runs[2].run(), PathResult(5, kD0 + 9 * kDay + 3600, 1).path());
}

// The tables a path run touches, as text (fingerprints of every row).
std::string Fingerprint(pqxx::transaction_base& tx, const std::string& table,
                        const std::string& columns) {
  const std::string row = "ROW(" + columns + ")::text";
  return tx
      .exec1("SELECT count(*) || ':' || COALESCE(md5(string_agg(" + row +
             ", '|' ORDER BY " + row + ")), '') FROM " + table)[0]
      .as<std::string>();
}

TEST_F(PathRoutesTest, MigrationKeepsEveryRowAndEveryAnswer) {
  dsn_ = FreshDatabase("routes_migrate");
  auto ordered = OrderMigrations(EmbeddedMigrations());
  ASSERT_THAT(ordered, IsOk());
  // Today's schema (the migrations before 0018), with runs stored as the
  // old collector stored them: the payload whole, path_runs' summary.
  std::vector<v1::Result> old;
  for (int i = 0; i < 48; ++i) old.push_back(PathResult(1 + i, kD0 + i * 1800));
  std::map<std::string, std::string> before;
  const std::map<std::string, std::string> columns = {
      {"results", "agent_id, seq, kind, produced_at, command_id, payload"},
      {"path_runs",
       "agent_id, seq, target, resolved_address, started_at,"
       " destination_reached, loss_percent, avg_ms, best_ms, worst_ms,"
       " hop_count, error"}};
  {
    pqxx::connection c(dsn_);
    pqxx::work tx(c);
    tx.exec0(
        "CREATE TABLE schema_migrations (name text PRIMARY KEY,"
        " applied_at timestamptz NOT NULL DEFAULT now())");
    for (const Migration& m : *ordered) {
      if (m.version >= 18) break;
      tx.exec(m.sql);
      tx.exec_params("INSERT INTO schema_migrations (name) VALUES ($1)",
                     m.name);
    }
    tx.exec0(
        "INSERT INTO agents (name, first_seen, last_seen, acked_through_seq)"
        " VALUES ('a1', to_timestamp(0), to_timestamp(0), 48)");
    for (const v1::Result& r : old) {
      std::string bytes;
      r.SerializeToString(&bytes);
      const v1::PathRun& p = r.path();
      tx.exec_params(
          "INSERT INTO results (agent_id, seq, kind, produced_at, payload)"
          " VALUES (1, $1, 'path', to_timestamp($2), $3)",
          static_cast<int64_t>(r.seq()), r.produced_at().seconds(),
          pqxx::binarystring(bytes));
      tx.exec_params(
          "INSERT INTO path_runs VALUES (1, $1, 'internet', '192.0.2.1',"
          " to_timestamp($2 / 1e6), true, 0, $3, $4, $5, $6, '')",
          static_cast<int64_t>(r.seq()),
          TimeUtil::TimestampToMicroseconds(p.started_at()),
          p.destination().avg_ms(), p.destination().best_ms(),
          p.destination().worst_ms(), p.hops_size());
    }
    for (const auto& [t, cols] : columns) before[t] = Fingerprint(tx, t, cols);
    tx.commit();
  }
  store_ = std::make_unique<PgStore>(dsn_, 2);
  ASSERT_THAT(store_->Migrate(), IsOk());
  {
    pqxx::connection c(dsn_);
    pqxx::read_transaction tx(c);
    for (const auto& [t, cols] : columns) {
      EXPECT_EQ(Fingerprint(tx, t, cols), before[t]) << t;
    }
    EXPECT_EQ(tx.exec1("SELECT count(*) FROM path_runs WHERE figures IS NULL"
                       " AND route_id IS NULL")[0]
                  .as<int>(),
              48);
  }
  // Every old run answers exactly as stored (from its payload).
  std::vector<v1::StoredPathRun> runs = History("a1");
  ASSERT_EQ(runs.size(), old.size());
  for (size_t i = 0; i < old.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(runs[i].run(), old[i].path())) << i;
  }
  // New runs go in packed; one read answers both, in time order.
  std::vector<v1::Result> fresh;
  for (int i = 0; i < 4; ++i) {
    fresh.push_back(PathResult(49 + i, kD0 + kDay + i * 1800));
  }
  ASSERT_THAT(store_->StoreResults("a1", fresh), IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM results WHERE seq > 48 AND"
                  " payload IS NULL"),
            4);
  runs = History("a1");
  ASSERT_EQ(runs.size(), old.size() + fresh.size());
  for (size_t i = 0; i < old.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(runs[i].run(), old[i].path())) << i;
  }
  for (size_t i = 0; i < fresh.size(); ++i) {
    ExpectSameRun(runs[old.size() + i].run(), fresh[i].path());
  }
  // Applied again (least_privilege_test replays them), 0018 changes
  // nothing.
  {
    pqxx::connection c(dsn_);
    pqxx::work tx(c);
    for (const Migration& m : *ordered) {
      if (m.version == 18) tx.exec(m.sql);
    }
    tx.commit();
  }
  EXPECT_EQ(Count("SELECT count(*) FROM path_routes"), 1);
  EXPECT_EQ(History("a1").size(), old.size() + fresh.size());
}

}  // namespace
}  // namespace netvigil::collector
