// The history the store keeps from snapshots, on a real PostgreSQL: exactly
// the expected appeared/gone events, nothing for an unchanged snapshot, no
// news from ephemeral-port churn or a restarted process, nothing twice on a
// resend; and the Query reads over it.
#include <memory>
#include <pqxx/pqxx>

#include "collector/store/pg_store.h"
#include "common/model/facts.h"
#include "common/wire_kinds.h"
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

constexpr int64_t kT0 = 1'790'000'000;  // seconds

v1::SocketEntry Sock(const std::string& state, const std::string& laddr,
                     uint32_t lport, const std::string& raddr, uint32_t rport,
                     uint32_t pid, const std::string& exe,
                     v1::Transport proto = v1::TRANSPORT_TCP) {
  v1::SocketEntry e;
  e.set_proto(proto);
  e.set_family(laddr.find(':') != std::string::npos ? 6 : 4);
  e.set_state(state);
  e.set_local_address(laddr);
  e.set_local_port(lport);
  e.set_remote_address(raddr);
  e.set_remote_port(rport);
  auto* p = e.add_processes();
  p->set_pid(pid);
  p->set_exe(exe);
  p->set_name(exe.substr(exe.rfind('/') + 1));
  return e;
}

v1::Result SocketsResult(uint64_t seq, std::vector<v1::SocketEntry> entries) {
  v1::Result r;
  r.set_seq(seq);
  *r.mutable_produced_at() = TimeUtil::SecondsToTimestamp(kT0 + 60 * seq);
  *r.mutable_sockets()->mutable_taken_at() = r.produced_at();
  for (auto& e : entries) *r.mutable_sockets()->add_sockets() = e;
  return r;
}

class StoreHistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::make_unique<PgStore>(g_pg->dsn(), 2);
    ASSERT_THAT(store_->Migrate(), IsOk());
    agent_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    v1::Hello hello;
    hello.set_agent_name(agent_);
    ASSERT_THAT(store_->AgentConnected(hello, "s1", absl::FromUnixSeconds(kT0)),
                IsOk());
  }

  int64_t Count(const std::string& table) {
    int64_t n = -1;
    EXPECT_THAT(store_->WithConnection([&](pqxx::connection& c) {
      pqxx::read_transaction tx(c);
      n = tx.exec_params1("SELECT count(*) FROM " + table +
                              " t JOIN agents a ON a.id = t.agent_id"
                              " WHERE a.name = $1",
                          agent_)[0]
              .as<int64_t>();
    }),
                IsOk());
    return n;
  }
  // Socket events stored, packed a snapshot a row (migration 0016).
  int64_t SocketEvents() {
    int64_t n = -1;
    EXPECT_THAT(store_->WithConnection([&](pqxx::connection& c) {
      pqxx::read_transaction tx(c);
      n = tx.exec_params1(
                "SELECT COALESCE(sum(events), 0)"
                " FROM socket_event_sets t"
                " JOIN agents a ON a.id = t.agent_id"
                " WHERE a.name = $1",
                agent_)[0]
              .as<int64_t>();
    }),
                IsOk());
    return n;
  }

  std::vector<std::string> Changes() {
    auto r = store_->SocketChanges(agent_, 0);
    EXPECT_THAT(r, IsOk());
    std::vector<std::string> out;
    for (const auto& c : r->changes()) {
      const auto& f = c.fact();
      out.push_back(
          absl::StrCat(c.change(), " ", SocketKeyKindName(f.key_kind()), " ",
                       f.local_address(), ":", f.local_port(), " ",
                       f.remote_address(), ":", f.remote_port(), " ", f.exe()));
    }
    return out;
  }

  std::unique_ptr<PgStore> store_;
  std::string agent_;
};

TEST_F(StoreHistoryTest, SnapshotsYieldExactlyTheExpectedEvents) {
  // t1: sshd listens; firefox talks to a web server; a client is connected
  // to sshd.
  ASSERT_THAT(
      store_->StoreResults(
          agent_,
          {SocketsResult(1,
                         {
                             Sock("LISTEN", "0.0.0.0", 22, "0.0.0.0", 0, 100,
                                  "/usr/sbin/sshd"),
                             Sock("ESTAB", "198.18.1.11", 40001, "198.51.100.7",
                                  443, 200, "/usr/bin/firefox"),
                             Sock("ESTAB", "198.18.1.11", 22, "198.51.100.9",
                                  51000, 101, "/usr/sbin/sshd"),
                         })}),
      IsOk());
  EXPECT_THAT(Changes(),
              ::testing::ElementsAre(
                  "appeared inbound :22 198.51.100.9:0 /usr/sbin/sshd",
                  "appeared listener 0.0.0.0:22 :0 /usr/sbin/sshd",
                  "appeared remote :0 198.51.100.7:443 /usr/bin/firefox"));
  const int64_t facts = Count("socket_facts");
  EXPECT_EQ(facts, 3);

  // t2: the same things with churn that is not news: new ephemeral local
  // ports, a new client port, sshd and firefox restarted with new PIDs,
  // and a TIME-WAIT leftover without an owner.
  v1::SocketEntry orphan =
      Sock("TIME-WAIT", "198.18.1.11", 40001, "198.51.100.7", 443, 0, "");
  orphan.clear_processes();
  ASSERT_THAT(
      store_->StoreResults(
          agent_,
          {SocketsResult(2,
                         {
                             Sock("LISTEN", "0.0.0.0", 22, "0.0.0.0", 0, 300,
                                  "/usr/sbin/sshd"),
                             Sock("ESTAB", "198.18.1.11", 40777, "198.51.100.7",
                                  443, 400, "/usr/bin/firefox"),
                             Sock("ESTAB", "198.18.1.11", 22, "198.51.100.9",
                                  52999, 301, "/usr/sbin/sshd"),
                             orphan,
                         })}),
      IsOk());
  EXPECT_EQ(Changes().size(), 3u) << "an unchanged snapshot is no news";
  EXPECT_EQ(Count("socket_facts"), facts) << "and writes no fact rows";
  EXPECT_EQ(SocketEvents(), 3);
  EXPECT_EQ(Count("results"), 2) << "only its own record";

  // t3: sshd stops listening, a new listener appears, firefox reaches a
  // second server.
  ASSERT_THAT(
      store_->StoreResults(
          agent_,
          {SocketsResult(
              3,
              {
                  Sock("LISTEN", "::", 8080, "::", 0, 500, "/usr/bin/python3"),
                  Sock("ESTAB", "198.18.1.11", 40778, "198.51.100.7", 443, 400,
                       "/usr/bin/firefox"),
                  Sock("ESTAB", "198.18.1.11", 40779, "198.51.100.8", 443, 400,
                       "/usr/bin/firefox"),
              })}),
      IsOk());
  const auto changes = Changes();
  ASSERT_EQ(changes.size(), 7u);
  EXPECT_THAT(std::vector<std::string>(changes.begin() + 3, changes.end()),
              ::testing::UnorderedElementsAre(
                  "appeared listener :::8080 :0 /usr/bin/python3",
                  "appeared remote :0 198.51.100.8:443 /usr/bin/firefox",
                  "gone listener 0.0.0.0:22 :0 /usr/sbin/sshd",
                  "gone inbound :22 198.51.100.9:0 /usr/sbin/sshd"));

  // A resend of seq 3 (the agent crashed before the ack) changes nothing.
  auto acked = store_->StoreResults(agent_, {SocketsResult(3, {})});
  ASSERT_THAT(acked, IsOk());
  EXPECT_EQ(*acked, 3u);
  EXPECT_EQ(Changes().size(), 7u);

  // The current view: what is present now, first seen when it appeared.
  auto current = store_->CurrentSockets(agent_);
  ASSERT_THAT(current, IsOk());
  // The facts, not a stored snapshot (migration 0014: most keep none).
  EXPECT_EQ(current->sockets_size(), 0);
  EXPECT_EQ(current->facts_size(), 3);
  EXPECT_EQ(current->taken_at().seconds(), kT0 + 180);
  for (const auto& f : current->facts()) {
    EXPECT_TRUE(f.present());
    if (f.remote_address() == "198.51.100.7") {
      EXPECT_EQ(f.first_seen().seconds(), kT0 + 60);
      EXPECT_EQ(f.last_seen().seconds(), kT0 + 180);
    }
  }
}

TEST_F(StoreHistoryTest, Ipv4MappedPeersKeyAsTheirIpv4Address) {
  ASSERT_THAT(store_->StoreResults(
                  agent_, {SocketsResult(1,
                                         {
                                             Sock("ESTAB", "::ffff:198.18.1.11",
                                                  40001, "::ffff:198.51.100.7",
                                                  443, 1, "/usr/bin/curl"),
                                         })}),
              IsOk());
  ASSERT_THAT(store_->StoreResults(
                  agent_, {SocketsResult(
                              2,
                              {
                                  Sock("ESTAB", "198.18.1.11", 40002,
                                       "198.51.100.7", 443, 2, "/usr/bin/curl"),
                              })}),
              IsOk());
  EXPECT_THAT(Changes(),
              ::testing::ElementsAre(
                  "appeared remote :0 198.51.100.7:443 /usr/bin/curl"));
}

v1::Result FilesResult(uint64_t seq,
                       std::vector<std::pair<std::string, uint32_t>> held) {
  v1::Result r;
  r.set_seq(seq);
  *r.mutable_produced_at() = TimeUtil::SecondsToTimestamp(kT0 + 60 * seq);
  for (const auto& [path, pid] : held) {
    auto* e = r.mutable_files()->add_entries();
    e->set_path(path);
    e->set_kind(v1::FILE_ACCESS_FD);
    e->set_fd(3);
    e->set_mode("r");
    e->mutable_process()->set_pid(pid);
    e->mutable_process()->set_exe("/usr/bin/vim");
    e->mutable_process()->set_name("vim");
  }
  return r;
}

TEST_F(StoreHistoryTest, FileFactsAppearAndGo) {
  ASSERT_THAT(
      store_->StoreResults(agent_, {FilesResult(1, {{"/home/a/x", 10}})}),
      IsOk());
  // Restarted editor, same file: no news.
  ASSERT_THAT(
      store_->StoreResults(agent_, {FilesResult(2, {{"/home/a/x", 99}})}),
      IsOk());
  EXPECT_EQ(Count("file_events"), 1);
  ASSERT_THAT(
      store_->StoreResults(agent_, {FilesResult(3, {{"/home/a/y", 99}})}),
      IsOk());
  EXPECT_EQ(Count("file_events"), 3);
  auto access = store_->FileAccess(agent_, 0);
  ASSERT_THAT(access, IsOk());
  ASSERT_EQ(access->facts_size(), 2);
  EXPECT_EQ(access->facts(0).path(), "/home/a/x");
  EXPECT_FALSE(access->facts(0).present());
  EXPECT_EQ(access->facts(0).last_seen().seconds(), kT0 + 120);
  EXPECT_TRUE(access->facts(1).present());
}

// A process whose executable was unlinked keeps that mark in the history,
// apart from the file's own deleted flag, and the current view reads it.
TEST_F(StoreHistoryTest, FileFactsKeepADeletedExecutable) {
  v1::Result r = FilesResult(1, {{"/home/a/x", 10}, {"/home/a/y", 11}});
  r.mutable_files()->mutable_entries(1)->mutable_process()->set_exe(
      "/tmp/.x/miner");
  r.mutable_files()->mutable_entries(1)->mutable_process()->set_exe_deleted(
      true);
  ASSERT_THAT(store_->StoreResults(agent_, {r}), IsOk());
  auto access = store_->FileAccess(agent_, 0);
  ASSERT_THAT(access, IsOk());
  ASSERT_EQ(access->facts_size(), 2);
  EXPECT_EQ(access->facts(0).exe(), "/tmp/.x/miner");
  EXPECT_TRUE(access->facts(0).exe_deleted());
  EXPECT_FALSE(access->facts(0).deleted());
  EXPECT_EQ(access->facts(1).exe(), "/usr/bin/vim");
  EXPECT_FALSE(access->facts(1).exe_deleted());
}

// The history of a batch of many snapshots (of two agents, interleaved, in
// one transaction) is row for row the history of the same snapshots stored
// one at a time; a resend of the whole batch changes nothing.
TEST_F(StoreHistoryTest, ABatchWritesTheSameHistoryAsOneByOne) {
  const std::string one = agent_ + "-one", many = agent_ + "-many";
  for (const std::string& name : {one, many}) {
    v1::Hello hello;
    hello.set_agent_name(name);
    ASSERT_THAT(store_->AgentConnected(hello, "s", absl::FromUnixSeconds(kT0)),
                IsOk());
  }
  auto listener = [](uint32_t port, const std::string& exe) {
    return Sock("LISTEN", "0.0.0.0", port, "0.0.0.0", 0, 100, exe);
  };
  // Appear, stay, go, come back, and a process name that changes.
  std::vector<v1::Result> rs = {
      SocketsResult(
          1, {listener(22, "/usr/sbin/sshd"), listener(80, "/usr/sbin/nginx")}),
      SocketsResult(2, {listener(22, "/usr/sbin/sshd")}),
      FilesResult(3, {{"/home/a/x", 10}}),
      SocketsResult(
          4, {listener(22, "/usr/sbin/sshd"), listener(80, "/usr/sbin/nginx"),
              listener(8080, "/tmp/x")}),
      FilesResult(5, {{"/home/a/y", 11}}),
      SocketsResult(6, {listener(8080, "/tmp/x")}),
      FilesResult(7, {{"/home/a/x", 12}, {"/home/a/y", 11}}),
      SocketsResult(8, {listener(22, "/usr/sbin/sshd")}),
  };
  std::vector<Store::IngestItem> items;
  for (const v1::Result& r : rs) {
    ASSERT_THAT(store_->StoreResults(one, {r}), IsOk());
    items.push_back({many, &r});
    items.push_back({agent_, &r});  // another agent in the same batch
  }
  auto acked = store_->StoreBatch(items);
  ASSERT_THAT(acked, IsOk());
  EXPECT_EQ((*acked)[many], 8u);

  auto rows = [&](const std::string& name, const std::string& sql) {
    std::vector<std::string> out;
    EXPECT_THAT(store_->WithConnection([&](pqxx::connection& c) {
      pqxx::read_transaction tx(c);
      for (const auto& row : tx.exec_params(sql, name)) {
        std::string line;
        for (const auto& f : row) absl::StrAppend(&line, f.c_str(), "|");
        out.push_back(line);
      }
    }),
                IsOk());
    return out;
  };
  const char* kSocketFacts =
      "SELECT key_kind, local_port, exe, process_name, f.first_seen,"
      " f.last_seen, present FROM socket_facts f JOIN agents a ON a.id = "
      "f.agent_id"
      " WHERE a.name = $1 ORDER BY 1, 2, 3";
  const char* kSocketEvents =
      "SELECT seq, at, events, md5(changes) FROM socket_event_sets e"
      " JOIN agents a ON a.id = e.agent_id WHERE a.name = $1"
      " ORDER BY at, seq";
  const char* kFileFacts =
      "SELECT exe, path, kind, uid, deleted, f.first_seen, f.last_seen,"
      " present FROM file_facts f JOIN agents a ON a.id = f.agent_id"
      " WHERE a.name = $1 ORDER BY 1, 2, 3";
  const char* kFileEvents =
      "SELECT seq, at, change, path FROM file_events e"
      " JOIN agents a ON a.id = e.agent_id WHERE a.name = $1 ORDER BY e.id";
  const char* kState =
      "SELECT kind, last_seq, last_at FROM probe_state s"
      " JOIN agents a ON a.id = s.agent_id WHERE a.name = $1 ORDER BY 1";
  for (const char* sql :
       {kSocketFacts, kSocketEvents, kFileFacts, kFileEvents, kState}) {
    const auto expected = rows(one, sql);
    EXPECT_FALSE(expected.empty()) << sql;
    EXPECT_EQ(rows(many, sql), expected) << sql;
  }
  EXPECT_EQ(rows(many,
                 "SELECT sum(events) FROM socket_event_sets e JOIN agents a"
                 " ON a.id = e.agent_id WHERE a.name = $1"),
            std::vector<std::string>{"9|"});

  // The same batch again: nothing twice.
  const auto events = rows(many, kSocketEvents);
  ASSERT_THAT(store_->StoreBatch(items), IsOk());
  EXPECT_EQ(rows(many, kSocketEvents), events);
  EXPECT_EQ(rows(many,
                 "SELECT count(*) FROM results r JOIN agents a"
                 " ON a.id = r.agent_id WHERE a.name = $1"),
            std::vector<std::string>{"8|"});
}

TEST_F(StoreHistoryTest, ACollectorSharingTheDatabaseIsNotMisledByItsCache) {
  // Two collectors on one database (each store keeps the present facts of
  // its last batch): the second one's snapshot moves probe_state on, so the
  // first must read the facts back rather than compare with what it kept.
  PgStore other(g_pg->dsn(), 1);
  ASSERT_THAT(other.Migrate(), IsOk());
  auto listener = [](uint32_t port, const std::string& exe) {
    return Sock("LISTEN", "0.0.0.0", port, "0.0.0.0", 0, 100, exe);
  };
  ASSERT_THAT(store_->StoreResults(
                  agent_, {SocketsResult(1, {listener(22, "/usr/sbin/sshd")})}),
              IsOk());
  ASSERT_THAT(
      other.StoreResults(agent_,
                         {SocketsResult(2, {listener(22, "/usr/sbin/sshd"),
                                            listener(80, "/usr/sbin/nginx")})}),
      IsOk());
  ASSERT_THAT(
      store_->StoreResults(
          agent_, {SocketsResult(3, {listener(80, "/usr/sbin/nginx")})}),
      IsOk());
  EXPECT_THAT(Changes(), ::testing::UnorderedElementsAre(
                             "appeared listener 0.0.0.0:22 :0 /usr/sbin/sshd",
                             "appeared listener 0.0.0.0:80 :0 /usr/sbin/nginx",
                             "gone listener 0.0.0.0:22 :0 /usr/sbin/sshd"));
  EXPECT_EQ(SocketEvents(), 3);
}

TEST_F(StoreHistoryTest, PathHistoryAndTheLatestSummary) {
  std::vector<v1::Result> runs;
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    v1::Result r;
    r.set_seq(seq);
    *r.mutable_produced_at() = TimeUtil::SecondsToTimestamp(kT0 + 60 * seq);
    auto* p = r.mutable_path();
    p->set_target("internet");
    p->set_resolved_address("198.19.0.1");
    *p->mutable_started_at() = r.produced_at();
    p->set_destination_reached(true);
    for (uint32_t ttl = 1; ttl <= 4; ++ttl) {
      auto* h = p->add_hops();
      h->set_ttl(ttl);
      h->set_sent(10);
      h->set_received(10);
    }
    p->mutable_destination()->set_loss_percent(seq == 5 ? 20 : 0);
    p->mutable_destination()->set_avg_ms(1.5 * seq);
    runs.push_back(r);
  }
  ASSERT_THAT(store_->StoreResults(agent_, runs), IsOk());
  auto latest = store_->LatestPaths(agent_);
  ASSERT_THAT(latest, IsOk());
  ASSERT_EQ(latest->size(), 1u);
  EXPECT_EQ((*latest)[0].loss_percent(), 20);
  EXPECT_EQ((*latest)[0].hop_count(), 4u);

  const int64_t us = 1'000'000;
  auto hist = store_->PathHistory(agent_, "internet", (kT0 + 120) * us,
                                  (kT0 + 300) * us, 100);
  ASSERT_THAT(hist, IsOk());
  ASSERT_EQ(hist->size(), 3u) << "seq 2, 3, 4: since inclusive, until not";
  EXPECT_EQ((*hist)[0].seq(), 2u);
  EXPECT_EQ((*hist)[2].run().hops_size(), 4);
  auto newest = store_->PathHistory(agent_, "internet", 0, (kT0 + 999) * us, 2);
  ASSERT_THAT(newest, IsOk());
  ASSERT_EQ(newest->size(), 2u);
  EXPECT_EQ((*newest)[1].seq(), 5u) << "the newest runs, oldest first";

  EXPECT_THAT(store_->PathHistory(agent_, "nowhere", 0, kT0 * us, 10),
              StatusIs(absl::StatusCode::kNotFound, "nowhere"));
  EXPECT_THAT(store_->PathHistory("nobody", "internet", 0, kT0 * us, 10),
              StatusIs(absl::StatusCode::kNotFound, "unknown host 'nobody'"));
}

TEST_F(StoreHistoryTest, SpeedMatrixHoldsTheLatestOfEachPair) {
  v1::Hello other;
  other.set_agent_name(agent_ + "-peer");
  ASSERT_THAT(store_->AgentConnected(other, "s2", absl::FromUnixSeconds(kT0)),
              IsOk());
  std::vector<v1::Result> rs;
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    v1::Result r;
    r.set_seq(seq);
    *r.mutable_produced_at() = TimeUtil::SecondsToTimestamp(kT0 + seq);
    auto* s = r.mutable_speed();
    s->set_client(agent_);
    s->set_server(agent_ + "-peer");
    *s->mutable_started_at() = r.produced_at();
    s->set_outcome(v1::SPEED_OUTCOME_OK);
    s->mutable_forward()->set_received_bps(1e6 * seq);
    rs.push_back(r);
  }
  ASSERT_THAT(store_->StoreResults(agent_, rs), IsOk());
  v1::SpeedResult skipped;
  skipped.set_client(agent_ + "-peer");
  skipped.set_server(agent_);
  skipped.set_outcome(v1::SPEED_OUTCOME_SKIPPED);
  skipped.set_error("agent offline");
  ASSERT_THAT(store_->StoreCollectorSpeedResult(skipped), IsOk());
  auto m = store_->SpeedMatrix();
  ASSERT_THAT(m, IsOk());
  int mine = 0;
  for (const auto& c : m->cells()) {
    if (c.client() == agent_) {
      ++mine;
      EXPECT_EQ(c.bps(), 3e6);
    }
    if (c.client() == agent_ + "-peer") {
      EXPECT_EQ(c.outcome(), v1::SPEED_OUTCOME_SKIPPED);
      EXPECT_EQ(c.error(), "agent offline");
    }
  }
  EXPECT_EQ(mine, 1);
  auto h = store_->SpeedHistory(agent_, agent_ + "-peer", 0,
                                (kT0 + 100) * 1'000'000LL, 10);
  ASSERT_THAT(h, IsOk());
  EXPECT_EQ(h->size(), 3u);
}

TEST_F(StoreHistoryTest, RetentionFoldsOldRunsIntoHoursAndKeepsTheLatest) {
  std::vector<v1::Result> runs;
  // Six runs a minute apart from kT0 + 60 s: loss 0, 10, 20, 30, 40, 50 %.
  for (uint64_t seq = 1; seq <= 6; ++seq) {
    v1::Result r;
    r.set_seq(seq);
    *r.mutable_produced_at() = TimeUtil::SecondsToTimestamp(kT0 + 60 * seq);
    auto* p = r.mutable_path();
    p->set_target("internet");
    *p->mutable_started_at() = r.produced_at();
    p->set_destination_reached(true);
    p->mutable_destination()->set_loss_percent(10.0 * (seq - 1));
    p->mutable_destination()->set_avg_ms(seq);
    p->mutable_destination()->set_best_ms(seq);
    p->mutable_destination()->set_worst_ms(seq);
    runs.push_back(r);
  }
  // Runs 1-3 first; 4-6 arrive after their day's partitions are gone (an
  // agent that was offline for days): they wait in the DEFAULT partition
  // and the second pass merges them into the same hour.
  std::vector<v1::Result> late(runs.begin() + 3, runs.end());
  runs.resize(3);
  ASSERT_THAT(store_->StoreResults(agent_, runs), IsOk());
  Store::RetentionPolicy policy;
  policy.raw = absl::Hours(24);
  const absl::Time now = absl::FromUnixSeconds(kT0 + 2 * 86400);
  auto first = store_->ApplyRetention(policy, now);
  ASSERT_THAT(first, IsOk());
  EXPECT_GE(first->path_runs_aggregated, 3);
  EXPECT_EQ(Count("path_runs"), 0);
  ASSERT_THAT(store_->StoreResults(agent_, late), IsOk());
  EXPECT_EQ(Count("path_runs"), 3);
  auto second = store_->ApplyRetention(policy, now);
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(Count("path_runs"), 0);
  // The raw results follow retention.results_days (7 by default), not
  // raw_days.
  EXPECT_EQ(Count("results"), 6);
  double runs_n = 0, avg_loss = 0, max_loss = 0, best = 0, worst = 0;
  ASSERT_THAT(store_->WithConnection([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    pqxx::result r = tx.exec_params(
        "SELECT sum(runs), sum(avg_loss * runs) / sum(runs), max(max_loss),"
        " min(best_ms), max(worst_ms) FROM path_hourly h JOIN agents a"
        " ON a.id = h.agent_id WHERE a.name = $1",
        agent_);
    runs_n = r[0][0].as<double>();
    avg_loss = r[0][1].as<double>();
    max_loss = r[0][2].as<double>();
    best = r[0][3].as<double>();
    worst = r[0][4].as<double>();
  }),
              IsOk());
  EXPECT_EQ(runs_n, 6);
  EXPECT_NEAR(avg_loss, 25.0, 1e-9) << "weighted, across both passes";
  EXPECT_EQ(max_loss, 50);
  EXPECT_EQ(best, 1);
  EXPECT_EQ(worst, 6);
  // Past the hourly horizon (whole months) the aggregates go too.
  policy.hourly = absl::Hours(24);
  auto third =
      store_->ApplyRetention(policy, absl::FromUnixSeconds(kT0 + 70 * 86400));
  ASSERT_THAT(third, IsOk());
  EXPECT_GE(third->partitions_dropped, 1);
  EXPECT_EQ(Count("path_hourly"), 0);
}

}  // namespace
}  // namespace netvigil::collector
