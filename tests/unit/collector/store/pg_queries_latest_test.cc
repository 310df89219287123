// The Overview's "latest of each" reads (LatestPaths and LatestPathsOfAll,
// SpeedMatrix) walk indexes instead of sorting whole histories; on a real
// PostgreSQL they must answer exactly what the plain DISTINCT ON over every
// row answers, for histories whose sequence order is not their time order,
// targets whose runs stopped long ago, agents without runs, and pairs whose
// newest result is an external test.
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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
using ::netvigil::testing::StatusIs;

constexpr int64_t kT0 = 1'790'000'000;  // seconds

v1::Result PathResult(uint64_t seq, const std::string& target, int64_t at_s,
                      double loss) {
  v1::Result r;
  r.set_seq(seq);
  *r.mutable_produced_at() = TimeUtil::SecondsToTimestamp(at_s + 5);
  v1::PathRun* run = r.mutable_path();
  run->set_target(target);
  run->set_resolved_address("198.19.0.1");
  *run->mutable_started_at() = TimeUtil::SecondsToTimestamp(at_s);
  run->set_destination_reached(loss < 100);
  v1::PathHop* h = run->add_hops();
  h->set_ttl(1);
  h->set_sent(10);
  h->set_loss_percent(loss);
  h->set_avg_ms(at_s % 97);
  *run->mutable_destination() = *h;
  return r;
}

v1::Result SpeedResult(uint64_t seq, const std::string& client,
                       const std::string& server, bool external, int64_t at_s,
                       double bps) {
  v1::Result r;
  r.set_seq(seq);
  *r.mutable_produced_at() = TimeUtil::SecondsToTimestamp(at_s + 10);
  v1::SpeedResult* s = r.mutable_speed();
  s->set_client(client);
  s->set_server(server);
  s->set_external(external);
  s->set_outcome(v1::SPEED_OUTCOME_OK);
  *s->mutable_started_at() = TimeUtil::SecondsToTimestamp(at_s);
  *s->mutable_finished_at() = TimeUtil::SecondsToTimestamp(at_s + 10);
  s->mutable_forward()->set_received_bps(bps);
  return r;
}

class StoreLatestTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto c = PgCluster::Start();
    ASSERT_TRUE(c.ok()) << c.status();
    pg_.reset(*c);
    store_ = std::make_unique<PgStore>(pg_->dsn(), 2);
    ASSERT_THAT(store_->Migrate(), IsOk());
    for (const char* name : {"a", "b", "idle"}) {
      v1::Hello hello;
      hello.set_agent_name(name);
      ASSERT_THAT(
          store_->AgentConnected(hello, "s", absl::FromUnixSeconds(kT0)),
          IsOk());
    }
    // Agent a: four targets, runs stored in an order that is not their time
    // order (a late, slow result carries an early start); "old" stopped
    // long before the others. Agent b: one target.
    std::vector<v1::Result> a, b;
    uint64_t seq = 0, seq_b = 0;
    uint64_t x = 12345;
    auto next = [&x] {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      return x >> 33;
    };
    for (int i = 0; i < 60; ++i) {
      for (const char* t : {"internet", "gateway", "nas"}) {
        const int64_t at = kT0 + 60 * i + static_cast<int64_t>(next() % 300);
        a.push_back(PathResult(++seq, t, at, static_cast<double>(next() % 3)));
      }
      if (i < 5) a.push_back(PathResult(++seq, "old", kT0 + 60 * i, 100));
    }
    for (int i = 0; i < 20; ++i) {
      b.push_back(PathResult(++seq_b, "internet", kT0 + 60 * i, 0));
    }
    // Speed: a->b on the LAN; a->ext external only; b->a whose newest
    // result is an external test under the same server name, so the LAN
    // cell is an older one.
    for (int i = 0; i < 10; ++i) {
      a.push_back(SpeedResult(++seq, "a", "b", false, kT0 + 600 * i, 9e8 + i));
      a.push_back(SpeedResult(++seq, "a", "ext", true, kT0 + 600 * i, 9e7 + i));
      b.push_back(
          SpeedResult(++seq_b, "b", "a", false, kT0 + 600 * i, 8e8 + i));
    }
    b.push_back(SpeedResult(++seq_b, "b", "a", true, kT0 + 9000, 1));
    ASSERT_THAT(store_->StoreResults("a", a), IsOk());
    ASSERT_THAT(store_->StoreResults("b", b), IsOk());
  }
  static void TearDownTestSuite() {
    store_.reset();
    pg_.reset();
  }

  // Rows of `sql` (one parameter), fields joined by '|'.
  std::vector<std::string> Rows(const std::string& sql,
                                const std::string& param) {
    std::vector<std::string> out;
    EXPECT_THAT(store_->WithConnection([&](pqxx::connection& c) {
      pqxx::read_transaction tx(c);
      for (const auto& row : tx.exec_params(sql, param)) {
        std::string line;
        for (const auto& f : row) absl::StrAppend(&line, f.c_str(), "|");
        out.push_back(line);
      }
    }),
                IsOk());
    return out;
  }

  static std::unique_ptr<PgCluster> pg_;
  static std::unique_ptr<PgStore> store_;
};

std::unique_ptr<PgCluster> StoreLatestTest::pg_;
std::unique_ptr<PgStore> StoreLatestTest::store_;

TEST_F(StoreLatestTest, LatestPathsIsDistinctOnOverAllRuns) {
  for (const std::string agent : {"a", "b", "idle"}) {
    const std::vector<std::string> want = Rows(
        "SELECT DISTINCT ON (target) target,"
        " (extract(epoch FROM started_at) * 1e6)::bigint,"
        " destination_reached, loss_percent, avg_ms, hop_count, error"
        " FROM path_runs WHERE agent_id = (SELECT id FROM agents"
        "  WHERE name = $1) ORDER BY target, started_at DESC",
        agent);
    auto got = store_->LatestPaths(agent);
    ASSERT_THAT(got, IsOk());
    std::vector<std::string> lines;
    for (const v1::PathSummary& p : *got) {
      lines.push_back(absl::StrCat(
          p.target(), "|", TimeUtil::TimestampToMicroseconds(p.at()), "|",
          p.destination_reached() ? "t" : "f", "|", p.loss_percent(), "|",
          p.avg_ms(), "|", p.hop_count(), "|", p.error(), "|"));
    }
    EXPECT_EQ(lines, want) << agent;
  }
  auto a = store_->LatestPaths("a");
  ASSERT_THAT(a, IsOk());
  ASSERT_EQ(a->size(), 4u);
  EXPECT_EQ((*a)[3].target(), "old");
  EXPECT_FALSE((*a)[3].destination_reached());
  EXPECT_THAT(store_->LatestPaths("idle"), IsOk());
  EXPECT_TRUE(store_->LatestPaths("idle")->empty());
  EXPECT_THAT(store_->LatestPaths("nobody"),
              StatusIs(absl::StatusCode::kNotFound, "nobody"));
}

TEST_F(StoreLatestTest, LatestPathsOfAllIsLatestPathsOfEachAgent) {
  auto all = store_->LatestPathsOfAll();
  ASSERT_THAT(all, IsOk());
  EXPECT_EQ(all->size(), 2u);  // "idle" has no runs
  EXPECT_EQ(all->count("idle"), 0u);
  for (const std::string agent : {"a", "b"}) {
    auto one = store_->LatestPaths(agent);
    ASSERT_THAT(one, IsOk());
    ASSERT_EQ((*all)[agent].size(), one->size()) << agent;
    for (size_t i = 0; i < one->size(); ++i) {
      EXPECT_EQ((*all)[agent][i].SerializeAsString(),
                (*one)[i].SerializeAsString())
          << agent << " " << i;
    }
  }
}

TEST_F(StoreLatestTest, SpeedMatrixIsDistinctOnOverLanResults) {
  const std::vector<std::string> want = Rows(
      "SELECT DISTINCT ON (client, server) client, server,"
      " forward_bps::bigint,"
      " (extract(epoch FROM started_at) * 1e6)::bigint"
      " FROM speed_results WHERE NOT external AND $1 = $1"
      " ORDER BY client, server, started_at DESC",
      "");
  auto got = store_->SpeedMatrix();
  ASSERT_THAT(got, IsOk());
  std::vector<std::string> lines;
  for (const v1::SpeedCell& c : got->cells()) {
    lines.push_back(absl::StrCat(
        c.client(), "|", c.server(), "|", static_cast<int64_t>(c.bps()), "|",
        TimeUtil::TimestampToMicroseconds(c.at()), "|"));
  }
  EXPECT_EQ(lines, want);
  ASSERT_EQ(got->cells_size(), 2);
  EXPECT_EQ(got->cells(1).client(), "b");
  EXPECT_EQ(got->cells(1).bps(), 8e8 + 9);  // not the newer external test
}

}  // namespace
}  // namespace netvigil::collector
