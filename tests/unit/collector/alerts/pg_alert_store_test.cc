// PgAlertStore on a real, private PostgreSQL cluster (deploy/pgcluster.sh in
// a temp folder, UNIX socket only, stopped and removed at the end), and the
// Analyzer's baselines surviving a restart through it.
#include "collector/alerts/pg_alert_store.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <map>
#include <memory>
#include <optional>
#include <pqxx/pqxx>

#include "collector/analysis/analyzer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/collector/analysis/analysis_test_util.h"

namespace netvigil::collector {
namespace {

using ::netvigil::testing::IsOk;
using ::netvigil::testing::StatusIs;
using ::testing::ElementsAre;

std::string g_dir;  // the cluster's folder, empty when it could not start

std::string Sh(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[512];
  while (fgets(buf, sizeof buf, p)) out += buf;
  if (pclose(p) != 0) return "";
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class PgAlertStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char dir[] = "/var/tmp/netvigil-alertpg-XXXXXX";
    if (!mkdtemp(dir)) return;
    chmod(dir, 0755);
    const std::string script =
        std::string(NETVIGIL_SOURCE_DIR) + "/deploy/pgcluster.sh";
    if (Sh(script + " init " + dir + "/pg >/dev/null && " + script + " start " +
           dir + "/pg && echo ok") == "ok") {
      g_dir = dir;
    } else {
      Sh(std::string("rm -rf ") + dir);
    }
  }
  static void TearDownTestSuite() {
    if (g_dir.empty()) return;
    const std::string script =
        std::string(NETVIGIL_SOURCE_DIR) + "/deploy/pgcluster.sh";
    Sh(script + " stop " + g_dir + "/pg immediate");
    Sh("rm -rf " + g_dir);
  }

  void SetUp() override {
    if (g_dir.empty()) GTEST_SKIP() << "no PostgreSQL cluster";
    const std::string script =
        std::string(NETVIGIL_SOURCE_DIR) + "/deploy/pgcluster.sh";
    pg_ = std::make_unique<PgStore>(Sh(script + " dsn " + g_dir + "/pg"), 2);
    ASSERT_THAT(pg_->Migrate(), IsOk());
    ASSERT_THAT(pg_->WithConnection([](pqxx::connection& c) {
      pqxx::work tx(c);
      tx.exec0("TRUNCATE alerts, alert_events, analysis_state");
      tx.commit();
    }),
                IsOk());
    store_ = std::make_unique<PgAlertStore>(*pg_);
  }

  std::unique_ptr<PgStore> pg_;
  std::unique_ptr<PgAlertStore> store_;
};

v1::Alert Sample() {
  v1::Alert a;
  a.set_kind("new_inbound");
  a.set_subject("tcp /usr/sbin/sshd :22 <- 203.0.113.66");
  a.set_severity(v1::SEVERITY_WARNING);
  a.set_scope(v1::ALERT_SCOPE_HOST);
  a.add_hosts("laptop");
  a.set_remote_address("203.0.113.66");
  a.set_summary("new peer, with 'quotes' and \"more\"");
  a.mutable_first_seen()->set_seconds(1'700'000'000);
  a.mutable_last_seen()->set_seconds(1'700'000'060);
  v1::Evidence* e = a.add_evidence();
  e->set_agent("laptop");
  e->set_seq(42);
  (*a.mutable_details())["key"] = "k";
  return a;
}

TEST_F(PgAlertStoreTest, SavesUpdatesAndReadsAlertsBack) {
  absl::StatusOr<int64_t> id = store_->SaveAlert(Sample());
  ASSERT_THAT(id, IsOk());
  absl::StatusOr<v1::Alert> got = store_->GetAlert(*id);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->id(), *id);
  EXPECT_EQ(got->summary(), Sample().summary());
  EXPECT_EQ(got->evidence(0).seq(), 42u);
  EXPECT_EQ(got->details().at("key"), "k");

  auto open = store_->UnresolvedAlerts();
  ASSERT_THAT(open, IsOk());
  ASSERT_EQ(open->size(), 1u);

  v1::Alert resolved = *got;
  resolved.mutable_resolved_at()->set_seconds(1'700'000'100);
  ASSERT_THAT(store_->SaveAlert(resolved), IsOk());
  open = store_->UnresolvedAlerts();
  ASSERT_THAT(open, IsOk());
  EXPECT_TRUE(open->empty());
  // The columns follow the payload.
  std::string resolved_col;
  ASSERT_THAT(pg_->WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    resolved_col =
        tx.exec_params1(
              "SELECT extract(epoch FROM resolved_at)::bigint::text || ' ' || "
              "array_to_string(hosts, ',') FROM alerts WHERE id = $1",
              *id)[0]
            .as<std::string>();
  }),
              IsOk());
  EXPECT_EQ(resolved_col, "1700000100 laptop");

  auto recent = store_->RecentAlerts(0, 10);
  ASSERT_THAT(recent, IsOk());
  EXPECT_EQ(recent->size(), 1u);
  EXPECT_THAT(store_->GetAlert(*id + 1000),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(PgAlertStoreTest, OneOpenAlertPerCondition) {
  ASSERT_THAT(store_->SaveAlert(Sample()), IsOk());
  EXPECT_FALSE(store_->SaveAlert(Sample()).ok());
}

TEST_F(PgAlertStoreTest, EventsAndStateRows) {
  absl::StatusOr<int64_t> id = store_->SaveAlert(Sample());
  ASSERT_THAT(id, IsOk());
  v1::AlertEvent e;
  e.set_type(v1::AlertEvent::TYPE_OPENED);
  *e.mutable_alert() = Sample();
  e.mutable_alert()->set_id(*id);
  e.mutable_at()->set_seconds(1'700'000'000);
  ASSERT_THAT(store_->AppendEvent(e), IsOk());
  ASSERT_THAT(
      store_->PutState({"a", "known:new_listener", "tcp 0.0.0.0:22 x", ""}),
      IsOk());
  ASSERT_THAT(store_->PutState({"a", "path", "t", "rtt=1,2\n"}), IsOk());
  ASSERT_THAT(store_->PutState({"a", "path", "t", "rtt=3\n"}), IsOk());
  auto rows = store_->LoadState();
  ASSERT_THAT(rows, IsOk());
  ASSERT_EQ(rows->size(), 2u);
  for (const auto& r : *rows) {
    if (r.kind == "path") {
      EXPECT_EQ(r.value, "rtt=3\n");
    }
  }
}

// Many rows in one call (the analyzer's per-result flush): all kept, the
// last value of a key given twice wins, quotes and backslashes intact.
TEST_F(PgAlertStoreTest, PutStatesWritesManyRowsAtOnce) {
  std::vector<AnalysisStateRow> rows;
  for (int i = 0; i < 300; ++i) {
    rows.push_back({"b", "known:new_remote", absl::StrCat("tcp x -> ", i), ""});
  }
  rows.push_back({"b", "path", "t", "first"});
  rows.push_back({"b", "path", "t", "say \"hi\" \\ {x}"});
  ASSERT_THAT(store_->PutStates(rows), IsOk());
  auto loaded = store_->LoadState();
  ASSERT_THAT(loaded, IsOk());
  int known = 0;
  for (const auto& r : *loaded) {
    if (r.agent != "b") continue;
    if (r.kind == "path") {
      EXPECT_EQ(r.value, "say \"hi\" \\ {x}");
    }
    if (r.kind == "known:new_remote") ++known;
  }
  EXPECT_EQ(known, 300);
}

// Baselines are bytes (any byte, none, or no bytes at all: a known key or
// a row of an older version), one at a time or many at once.
TEST_F(PgAlertStoreTest, StateBytesRoundTrip) {
  const std::string binary("\0\xff\x01'\\", 5);
  ASSERT_THAT(store_->PutState({"a", "path", "t1", "", binary}), IsOk());
  ASSERT_THAT(store_->PutStates({{"a", "path", "t2", "", std::string()},
                                 {"a", "path", "t3", "k=v\n"},
                                 {"a", "speed", "x>y", "", binary + binary}}),
              IsOk());
  auto rows = store_->LoadState();
  ASSERT_THAT(rows, IsOk());
  std::map<std::string, std::optional<std::string>> by_key;
  for (const auto& r : *rows) by_key[r.key] = r.bytes;
  ASSERT_EQ(by_key.size(), 4u);
  EXPECT_EQ(by_key["t1"], binary);
  EXPECT_EQ(by_key["t2"], std::string()) << "empty bytes, not NULL";
  EXPECT_EQ(by_key["t3"], std::nullopt);
  EXPECT_EQ(by_key["x>y"], binary + binary);
}

// A reserved id is inserted by its first SaveAlert; an id never given out
// is not.
TEST_F(PgAlertStoreTest, ReservedIdsAreInsertedOnTheirFirstSave) {
  auto ids = store_->ReserveAlertIds(3);
  ASSERT_THAT(ids, IsOk());
  ASSERT_EQ(ids->size(), 3u);
  v1::Alert a = Sample();
  a.set_id((*ids)[1]);
  EXPECT_THAT(store_->SaveAlert(a), IsOk());
  a.set_summary("again");
  EXPECT_THAT(store_->SaveAlert(a), IsOk());
  auto got = store_->GetAlert((*ids)[1]);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->summary(), "again");
  a.set_id((*ids)[2] + 1000);
  EXPECT_THAT(store_->SaveAlert(a).status(),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(PgAlertStoreTest, AnalyzerStateSurvivesARestart) {
  netvigil::testing::FakeClock clock;
  AnalysisOptions o = testing::TestOptions();
  const testing::Sock ssh{.lport = 22};
  const testing::Sock web{.lport = 8080, .exe = "/usr/bin/python3.11"};
  int64_t id = 0;
  {
    Analyzer an(o, *store_, clock);
    ASSERT_THAT(an.Load(), IsOk());
    an.OnResult("a", testing::SocketsResult({ssh}));
    an.OnResult("a", testing::SocketsResult({ssh, web}));
    ASSERT_EQ(an.Open().size(), 1u);
    id = an.Open()[0].id();
  }
  Analyzer an(o, *store_, clock);
  ASSERT_THAT(an.Load(), IsOk());
  ASSERT_EQ(an.Open().size(), 1u);
  EXPECT_EQ(an.Open()[0].id(), id);
  ASSERT_THAT(an.Ack(id, "ann"), IsOk());
  an.OnResult("a", testing::SocketsResult({ssh}));
  EXPECT_TRUE(an.Open().empty());
  an.OnResult("a", testing::SocketsResult({ssh, web}));
  EXPECT_TRUE(an.Open().empty()) << "acknowledged: part of the baseline";
  int events = 0;
  ASSERT_THAT(pg_->WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    events = tx.exec1("SELECT count(*) FROM alert_events")[0].as<int>();
  }),
              IsOk());
  EXPECT_EQ(events, 3);  // opened, acknowledged, resolved
}

}  // namespace
}  // namespace netvigil::collector
