// database.read_dsn: the Query service's reads go to a streaming replica,
// everything else to database.dsn. On a real PostgreSQL, a copy of the
// database taken at one moment stands in for a replica that lags: what a
// read answers shows which database it asked.
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
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
using ::testing::UnorderedElementsAre;

constexpr int64_t kT0 = 1'790'000'000;  // seconds

// A one-hop path run of agent "a" to `target`.
v1::Result Run(uint64_t seq, const std::string& target) {
  v1::Result r;
  r.set_seq(seq);
  *r.mutable_produced_at() = TimeUtil::SecondsToTimestamp(kT0 + 60 * seq);
  v1::PathRun* run = r.mutable_path();
  run->set_target(target);
  run->set_resolved_address(target);
  *run->mutable_started_at() = TimeUtil::SecondsToTimestamp(kT0 + 60 * seq);
  run->set_destination_reached(true);
  v1::PathHop* h = run->add_hops();
  h->set_ttl(1);
  h->add_addresses()->set_address(target);
  h->set_sent(10);
  h->set_received(10);
  h->set_avg_ms(1.5);
  *run->mutable_destination() = *h;
  return r;
}

absl::Status Store(PgStore& store, uint64_t seq, const std::string& target) {
  const v1::Result r = Run(seq, target);
  return store.StoreBatch({{"a", &r}}).status();
}

std::vector<std::string> LatestTargets(PgStore& store) {
  std::vector<std::string> out;
  auto latest = store.LatestPaths("a");
  EXPECT_THAT(latest.status(), IsOk());
  if (latest.ok()) {
    for (const v1::PathSummary& p : *latest) out.push_back(p.target());
  }
  return out;
}

TEST(PgReadDsnTest, ReadsGoToTheReplicaAndEverythingElseToTheDatabase) {
  auto cluster = PgCluster::Start();
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  std::unique_ptr<PgCluster> pg(*cluster);
  {
    PgStore store(pg->dsn(), 2);
    ASSERT_THAT(store.Migrate(), IsOk());
    v1::Hello hello;
    hello.set_agent_name("a");
    ASSERT_THAT(
        store.AgentConnected(hello, "s", absl::FromUnixSeconds(kT0)).status(),
        IsOk());
    ASSERT_THAT(Store(store, 1, "198.18.0.1"), IsOk());
  }  // its connections close: the copy needs the database to itself
  const std::string replica_dsn =
      absl::StrReplaceAll(pg->dsn(), {{"dbname=netvigil", "dbname=replica"}});
  {
    pqxx::connection admin(absl::StrReplaceAll(
        pg->dsn(), {{"dbname=netvigil", "dbname=postgres"}}));
    pqxx::nontransaction(admin).exec0(
        "CREATE DATABASE replica TEMPLATE netvigil");
  }

  PgStore store(pg->dsn(), 2);
  store.SetReadDsn(replica_dsn, 1);
  ASSERT_THAT(store.Migrate(), IsOk());
  // Written to the database, acknowledged from it...
  ASSERT_THAT(Store(store, 2, "198.18.0.2"), IsOk());
  // ...and read from the replica, which has not caught up.
  EXPECT_THAT(LatestTargets(store), UnorderedElementsAre("198.18.0.1"));
  PgStore plain(pg->dsn(), 1);
  ASSERT_THAT(plain.Migrate(), IsOk());
  EXPECT_THAT(LatestTargets(plain),
              UnorderedElementsAre("198.18.0.1", "198.18.0.2"));

  // A replica that is away fails the reads, naming the database, and
  // nothing else: the ingest goes on.
  PgStore away(pg->dsn(), 2);
  away.SetReadDsn(
      absl::StrReplaceAll(pg->dsn(), {{"dbname=netvigil", "dbname=gone"}}), 1);
  ASSERT_THAT(away.Migrate(), IsOk());
  EXPECT_THAT(Store(away, 3, "198.18.0.3"), IsOk());
  auto latest = away.LatestPaths("a");
  EXPECT_THAT(latest.status(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(std::string(latest.status().message()),
              ::testing::HasSubstr("gone"));
  EXPECT_THAT(LatestTargets(plain),
              UnorderedElementsAre("198.18.0.1", "198.18.0.2", "198.18.0.3"));
}

}  // namespace
}  // namespace netvigil::collector
