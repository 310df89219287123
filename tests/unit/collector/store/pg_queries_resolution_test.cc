// History at its resolution, on a real PostgreSQL: a range spanning raw rows
// and hourly aggregates (folded by the real retention) answers each part at
// its own resolution; HOURLY folds raw rows into hours on the fly; a range
// over max_points is answered in coarser buckets; RAW reads raw rows only.
#include <cmath>
#include <memory>
#include <pqxx/pqxx>

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

// "Now" in these tests: a whole hour, so hours are easy to name.
constexpr int64_t kNow = 1'790'000'000 - 1'790'000'000 % 3600;  // seconds
constexpr int64_t kDay = 86400;
constexpr int64_t kUs = 1'000'000;

v1::Result PathRun(uint64_t seq, int64_t at, double avg_ms, double loss,
                   bool reached = true) {
  v1::Result r;
  r.set_seq(seq);
  *r.mutable_produced_at() = TimeUtil::SecondsToTimestamp(at);
  auto* p = r.mutable_path();
  p->set_target("internet");
  *p->mutable_started_at() = r.produced_at();
  p->set_destination_reached(reached);
  p->add_hops()->set_ttl(1);
  p->mutable_destination()->set_loss_percent(loss);
  p->mutable_destination()->set_avg_ms(avg_ms);
  p->mutable_destination()->set_best_ms(avg_ms - 0.5);
  p->mutable_destination()->set_worst_ms(avg_ms + 0.5);
  return r;
}

v1::Result SpeedRun(uint64_t seq, int64_t at, const std::string& client,
                    const std::string& server, double bps) {
  v1::Result r;
  r.set_seq(seq);
  *r.mutable_produced_at() = TimeUtil::SecondsToTimestamp(at);
  auto* s = r.mutable_speed();
  s->set_client(client);
  s->set_server(server);
  *s->mutable_started_at() = r.produced_at();
  s->set_outcome(v1::SPEED_OUTCOME_OK);
  s->mutable_forward()->set_received_bps(bps);
  return r;
}

double StddevPop(std::vector<double> v) {
  double mean = 0, sq = 0;
  for (double x : v) mean += x / v.size();
  for (double x : v) sq += (x - mean) * (x - mean) / v.size();
  return std::sqrt(sq);
}

class StoreResolutionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::make_unique<PgStore>(g_pg->dsn(), 2);
    ASSERT_THAT(store_->Migrate(), IsOk());
    agent_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    v1::Hello hello;
    hello.set_agent_name(agent_);
    ASSERT_THAT(
        store_->AgentConnected(hello, "s1", absl::FromUnixSeconds(kNow)),
        IsOk());
    // Nine and a bit days ago, two hours of three runs each: 1, 2, 9 ms
    // (median 2, mean 4) and 3, 3, 3 ms, one of them unreached. Then, inside
    // raw retention, five runs in the last hour.
    std::vector<v1::Result> runs;
    const int64_t old = kNow - 9 * kDay;
    runs.push_back(PathRun(1, old + 60, 1, 0));
    runs.push_back(PathRun(2, old + 120, 2, 0));
    runs.push_back(PathRun(3, old + 180, 9, 30));
    runs.push_back(PathRun(4, old + 3600 + 60, 3, 0));
    runs.push_back(PathRun(5, old + 3600 + 120, 3, 0));
    runs.push_back(PathRun(6, old + 3600 + 180, 0, 100, false));
    for (uint64_t i = 0; i < 5; ++i) {
      runs.push_back(PathRun(7 + i, kNow - 3600 + 600 * i, 10 + i, 0));
    }
    ASSERT_THAT(store_->StoreResults(agent_, runs), IsOk());
    // Retention as the collector runs it with raw_days 7.
    auto folded = store_->ApplyRetention(Store::RetentionPolicy(),
                                         absl::FromUnixSeconds(kNow));
    ASSERT_THAT(folded, IsOk());
    ASSERT_EQ(folded->path_runs_aggregated, 6);
  }

  Store::HistoryQuery Range(v1::Resolution resolution = v1::RESOLUTION_AUTO) {
    Store::HistoryQuery q;
    q.since_us = (kNow - 10 * kDay) * kUs;
    q.until_us = (kNow + 60) * kUs;
    q.resolution = resolution;
    return q;
  }

  std::unique_ptr<PgStore> store_;
  std::string agent_;
};

TEST_F(StoreResolutionTest, ARangeSpanningRawAndHourlyAnswersEachPartAtItsOwn) {
  auto r = store_->PathHistory(agent_, "internet", Range());
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->runs_size(), 7) << r->DebugString();
  EXPECT_EQ(r->resolution(), v1::RESOLUTION_MIXED);
  EXPECT_EQ(r->bucket_seconds(), 3600u);
  EXPECT_EQ(TimeUtil::TimestampToSeconds(r->raw_since()), kNow - 3600);

  const int64_t old = kNow - 9 * kDay;
  const v1::StoredPathRun& h1 = r->runs(0);
  EXPECT_EQ(h1.resolution(), v1::RESOLUTION_HOURLY);
  EXPECT_EQ(TimeUtil::TimestampToSeconds(h1.run().started_at()), old);
  EXPECT_EQ(h1.aggregate().bucket_seconds(), 3600u);
  EXPECT_EQ(h1.aggregate().runs(), 3u);
  EXPECT_EQ(h1.aggregate().reached_runs(), 3u);
  EXPECT_DOUBLE_EQ(h1.aggregate().median_ms(), 2);
  EXPECT_DOUBLE_EQ(h1.aggregate().avg_ms(), 4);
  EXPECT_NEAR(h1.aggregate().spread_ms(), StddevPop({1, 2, 9}), 1e-9);
  EXPECT_DOUBLE_EQ(h1.aggregate().best_ms(), 0.5);
  EXPECT_DOUBLE_EQ(h1.aggregate().worst_ms(), 9.5);
  EXPECT_DOUBLE_EQ(h1.aggregate().avg_loss_percent(), 10);
  EXPECT_DOUBLE_EQ(h1.aggregate().max_loss_percent(), 30);

  const v1::StoredPathRun& h2 = r->runs(1);
  EXPECT_EQ(h2.resolution(), v1::RESOLUTION_HOURLY);
  EXPECT_EQ(h2.aggregate().runs(), 3u);
  EXPECT_EQ(h2.aggregate().reached_runs(), 2u);
  EXPECT_DOUBLE_EQ(h2.aggregate().median_ms(), 3);
  EXPECT_DOUBLE_EQ(h2.aggregate().spread_ms(), 0);

  for (int i = 2; i < 7; ++i) {
    EXPECT_EQ(r->runs(i).resolution(), v1::RESOLUTION_RAW);
    EXPECT_EQ(r->runs(i).seq(), static_cast<uint64_t>(5 + i));
    EXPECT_EQ(r->runs(i).run().hops_size(), 1) << "a raw run is whole";
    EXPECT_FALSE(r->runs(i).has_aggregate());
  }

  // `limit` keeps the newest points: the raw ones first.
  Store::HistoryQuery newest = Range();
  newest.limit = 6;
  auto cut = store_->PathHistory(agent_, "internet", newest);
  ASSERT_THAT(cut, IsOk());
  ASSERT_EQ(cut->runs_size(), 6);
  EXPECT_EQ(cut->runs(0).resolution(), v1::RESOLUTION_HOURLY);
  EXPECT_EQ(TimeUtil::TimestampToSeconds(cut->runs(0).run().started_at()),
            old + 3600);
}

TEST_F(StoreResolutionTest, HourlyFoldsRawRowsIntoHours) {
  auto r =
      store_->PathHistory(agent_, "internet", Range(v1::RESOLUTION_HOURLY));
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->runs_size(), 3) << r->DebugString();
  EXPECT_EQ(r->resolution(), v1::RESOLUTION_HOURLY);
  for (const auto& p : r->runs()) {
    EXPECT_EQ(p.resolution(), v1::RESOLUTION_HOURLY);
  }
  const v1::PathAggregate& last = r->runs(2).aggregate();
  EXPECT_EQ(TimeUtil::TimestampToSeconds(r->runs(2).run().started_at()),
            kNow - 3600);
  EXPECT_EQ(last.runs(), 5u);
  EXPECT_DOUBLE_EQ(last.median_ms(), 12);
  EXPECT_NEAR(last.spread_ms(), StddevPop({10, 11, 12, 13, 14}), 1e-9);
  EXPECT_DOUBLE_EQ(last.best_ms(), 9.5);
  EXPECT_DOUBLE_EQ(last.worst_ms(), 14.5);
}

TEST_F(StoreResolutionTest, PastMaxPointsTheAnswerIsInCoarserBuckets) {
  Store::HistoryQuery q = Range();
  q.max_points = 2;
  auto r = store_->PathHistory(agent_, "internet", q);
  ASSERT_THAT(r, IsOk());
  ASSERT_LE(r->runs_size(), 2) << r->DebugString();
  ASSERT_GE(r->runs_size(), 1);
  EXPECT_EQ(r->resolution(), v1::RESOLUTION_COARSE);
  EXPECT_GT(r->bucket_seconds(), 3600u);
  EXPECT_EQ(r->bucket_seconds() % 3600, 0u);
  uint32_t runs = 0;
  for (const auto& p : r->runs()) {
    EXPECT_EQ(p.resolution(), v1::RESOLUTION_COARSE);
    EXPECT_EQ(p.aggregate().bucket_seconds(), r->bucket_seconds());
    runs += p.aggregate().runs();
  }
  EXPECT_EQ(runs, 11u) << "every run counted once";
  // The pooled spread of the old hours' five reached runs, if they share
  // a bucket (they are two adjacent hours of a bucket of days).
  if (r->runs_size() == 2) {
    EXPECT_NEAR(r->runs(0).aggregate().spread_ms(), StddevPop({1, 2, 9, 3, 3}),
                1e-9);
    EXPECT_DOUBLE_EQ(r->runs(0).aggregate().avg_ms(), 18.0 / 5);
  }
}

TEST_F(StoreResolutionTest, RawReadsRawRowsOnly) {
  auto r = store_->PathHistory(agent_, "internet", Range(v1::RESOLUTION_RAW));
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->runs_size(), 5);
  EXPECT_EQ(r->resolution(), v1::RESOLUTION_RAW);
  EXPECT_EQ(r->bucket_seconds(), 0u);
  // A target known only from its aggregates is still known.
  EXPECT_THAT(store_->PathHistory(agent_, "nowhere", Range()),
              StatusIs(absl::StatusCode::kNotFound, "nowhere"));
}

TEST_F(StoreResolutionTest,
       AnHourSplitBetweenTwoRetentionPassesPoolsItsSpread) {
  // Eight days back, one hour: two runs folded by one pass (1, 3 ms), then
  // three late ones (5, 6, 10 ms: an agent's spool sent them after the
  // hour's day was folded and dropped) by the next.
  const int64_t hour = kNow - 8 * kDay;
  std::vector<v1::Result> first = {PathRun(20, hour + 60, 1, 0),
                                   PathRun(21, hour + 120, 3, 0),
                                   PathRun(25, kNow - 60, 1, 0)};
  ASSERT_THAT(store_->StoreResults(agent_, first), IsOk());
  ASSERT_THAT(store_->ApplyRetention(Store::RetentionPolicy(),
                                     absl::FromUnixSeconds(kNow)),
              IsOk());
  std::vector<v1::Result> late = {PathRun(26, hour + 600, 5, 0),
                                  PathRun(27, hour + 660, 6, 0),
                                  PathRun(28, hour + 720, 10, 0)};
  ASSERT_THAT(store_->StoreResults(agent_, late), IsOk());
  ASSERT_THAT(store_->ApplyRetention(Store::RetentionPolicy(),
                                     absl::FromUnixSeconds(kNow)),
              IsOk());
  Store::HistoryQuery q = Range();
  q.since_us = hour * kUs;
  q.until_us = (hour + 3600) * kUs;
  auto r = store_->PathHistory(agent_, "internet", q);
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->runs_size(), 1) << r->DebugString();
  const v1::PathAggregate& a = r->runs(0).aggregate();
  EXPECT_EQ(a.runs(), 5u);
  EXPECT_DOUBLE_EQ(a.avg_ms(), 5);
  EXPECT_NEAR(a.spread_ms(), StddevPop({1, 3, 5, 6, 10}), 1e-9)
      << "pooled exactly across the two passes";
  EXPECT_DOUBLE_EQ(a.median_ms(), 6) << "the larger part's median";
}

TEST_F(StoreResolutionTest, SpeedHistorySpansRawAndHourlyToo) {
  v1::Hello peer;
  peer.set_agent_name(agent_ + "-nas");
  ASSERT_THAT(store_->AgentConnected(peer, "s2", absl::FromUnixSeconds(kNow)),
              IsOk());
  const std::string server = agent_ + "-nas";
  const int64_t old = kNow - 30 * kDay;
  std::vector<v1::Result> rs = {
      SpeedRun(100, old + 60, agent_, server, 100e6),
      SpeedRun(101, old + 600, agent_, server, 300e6),
      SpeedRun(102, old + 1200, agent_, server, 900e6),
      SpeedRun(103, kNow - 600, agent_, server, 500e6)};
  ASSERT_THAT(store_->StoreResults(agent_, rs), IsOk());
  ASSERT_THAT(store_->ApplyRetention(Store::RetentionPolicy(),
                                     absl::FromUnixSeconds(kNow)),
              IsOk());
  Store::HistoryQuery q = Range();
  q.since_us = (kNow - 60 * kDay) * kUs;
  auto r = store_->SpeedHistory(agent_, server, q);
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->points_size(), 2) << r->DebugString();
  EXPECT_EQ(r->resolution(), v1::RESOLUTION_MIXED);
  EXPECT_EQ(r->points(0).resolution(), v1::RESOLUTION_HOURLY);
  EXPECT_EQ(TimeUtil::TimestampToSeconds(r->points(0).at()), old);
  const v1::SpeedAggregate& a = r->points(0).aggregate();
  EXPECT_EQ(a.runs(), 3u);
  EXPECT_EQ(a.ok_runs(), 3u);
  EXPECT_DOUBLE_EQ(a.median_bps(), 300e6);
  EXPECT_NEAR(a.spread_bps(), StddevPop({100e6, 300e6, 900e6}), 1);
  EXPECT_DOUBLE_EQ(a.min_bps(), 100e6);
  EXPECT_DOUBLE_EQ(a.max_bps(), 900e6);
  EXPECT_EQ(r->points(1).resolution(), v1::RESOLUTION_RAW);
  EXPECT_DOUBLE_EQ(r->points(1).result().forward().received_bps(), 500e6);
  ASSERT_EQ(r->results_size(), 1) << "results: the raw points, as before";
  // The old call (raw only) still answers.
  auto raw = store_->SpeedHistory(agent_, server, q.since_us, q.until_us, 10);
  ASSERT_THAT(raw, IsOk());
  EXPECT_EQ(raw->size(), 1u);
}

}  // namespace
}  // namespace netvigil::collector
