// History and alerts tell the same story: one fixture of socket snapshots
// (UDP services and clients, a socket shared by several owners, unreadable
// and unknown executables, netvigil's own traffic) goes to the store's
// history writer on a real PostgreSQL (what `netvigil sockets --changes`
// shows) and to the analysis; both must name the same appeared and gone
// facts. Before the fact model they differed on every one of these.
#include <memory>
#include <set>

#include "collector/alerts/memory_alert_store.h"
#include "collector/analysis/analyzer.h"
#include "collector/store/pg_store.h"
#include "common/model/facts.h"
#include "common/wire_kinds.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/pg_cluster.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using google::protobuf::util::TimeUtil;
using ::netvigil::testing::IsOk;
using ::netvigil::testing::PgCluster;
using ::testing::IsEmpty;

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

struct Owner {
  std::string exe, name;
};

v1::SocketEntry Sock(v1::Transport proto, const std::string& state,
                     const std::string& laddr, uint32_t lport,
                     const std::string& raddr, uint32_t rport,
                     std::vector<Owner> owners, bool own = false) {
  v1::SocketEntry e;
  e.set_proto(proto);
  e.set_family(laddr.find(':') != std::string::npos ? 6 : 4);
  e.set_state(state);
  e.set_local_address(laddr);
  e.set_local_port(lport);
  e.set_remote_address(raddr);
  e.set_remote_port(rport);
  e.set_agent_own(own);
  uint32_t pid = 300;
  for (const Owner& o : owners) {
    v1::ProcessRef* p = e.add_processes();
    p->set_pid(pid++);
    p->set_exe(o.exe);
    p->set_name(o.name);
  }
  return e;
}

constexpr v1::Transport kTcp = v1::TRANSPORT_TCP;
constexpr v1::Transport kUdp = v1::TRANSPORT_UDP;

v1::Result Snapshot(uint64_t seq, std::vector<v1::SocketEntry> entries) {
  v1::Result r;
  r.set_seq(seq);
  *r.mutable_produced_at() = TimeUtil::SecondsToTimestamp(kT0 + 60 * seq);
  *r.mutable_sockets()->mutable_taken_at() = r.produced_at();
  for (auto& e : entries) *r.mutable_sockets()->add_sockets() = e;
  return r;
}

// The fixture: a base every snapshot has, and what appears then goes.
std::vector<v1::SocketEntry> Base() {
  return {Sock(kTcp, "LISTEN", "0.0.0.0", 22, "0.0.0.0", 0,
               {{"/usr/sbin/sshd", "sshd"}})};
}

std::vector<v1::SocketEntry> Extra() {
  return {
      // A UDP service whose exe is unreadable (another user's process).
      Sock(kUdp, "UNCONN", "0.0.0.0", 5353, "0.0.0.0", 0,
           {{"", "avahi-daemon"}}),
      // A UDP client on an ephemeral port: no fact anywhere.
      Sock(kUdp, "UNCONN", "0.0.0.0", 47001, "*", 0,
           {{"/usr/lib/systemd/systemd-resolved", "systemd-resolve"}}),
      // One listening socket, three owners (two distinct): two facts.
      Sock(kTcp, "LISTEN", "::", 8080, "::", 0,
           {{"/usr/bin/gunicorn", "gunicorn"},
            {"", "worker"},
            {"/usr/bin/gunicorn", "gunicorn"}}),
      // A kernel listener: no process at all.
      Sock(kUdp, "UNCONN", "0.0.0.0", 4789, "0.0.0.0", 0, {}),
      // A program talking out for the first time, through a mapped address.
      Sock(kTcp, "ESTAB", "::ffff:192.168.1.10", 40100, "::ffff:203.0.113.7",
           4444, {{"/tmp/x", "x"}}),
      // An inbound peer from outside the LAN.
      Sock(kTcp, "ESTAB", "192.168.1.10", 22, "198.51.100.9", 51000,
           {{"/usr/sbin/sshd", "sshd"}}),
      // netvigil's own: kept as history, never news.
      Sock(kTcp, "ESTAB", "192.168.1.10", 40200, "192.168.1.1", 7443,
           {{"/usr/bin/netvigil-agent", "netvigil-agent"}}, true),
  };
}

std::string Text(const v1::SocketFact& f) {
  model::SocketFact k;
  k.kind = *model::KindFromName(SocketKeyKindName(f.key_kind()));
  k.proto = f.proto();
  k.local_address = f.local_address();
  k.local_port = f.local_port();
  k.remote_address = f.remote_address();
  k.remote_port = f.remote_port();
  k.owner = f.exe();
  return model::FactText(k);
}

TEST(FactsAgreementTest, HistoryAndAlertsNameTheSameFacts) {
  std::vector<v1::Result> snaps;
  snaps.push_back(Snapshot(1, Base()));
  std::vector<v1::SocketEntry> both = Base();
  for (auto& e : Extra()) both.push_back(e);
  snaps.push_back(Snapshot(2, both));
  snaps.push_back(Snapshot(3, Base()));

  // History.
  PgStore store(g_pg->dsn(), 2);
  ASSERT_THAT(store.Migrate(), IsOk());
  v1::Hello hello;
  hello.set_agent_name("h1");
  ASSERT_THAT(store.AgentConnected(hello, "s1", absl::FromUnixSeconds(kT0)),
              IsOk());
  for (const v1::Result& r : snaps) {
    ASSERT_THAT(store.StoreResults("h1", {r}), IsOk());
  }
  auto changes = store.SocketChanges("h1", 0);
  ASSERT_THAT(changes, IsOk());
  std::set<std::string> history_appeared, history_gone;
  for (const v1::SocketChange& c : changes->changes()) {
    const int64_t at = TimeUtil::TimestampToSeconds(c.at());
    if (at == kT0 + 60) continue;  // the first snapshot: all appeared
    (c.change() == "appeared" ? history_appeared : history_gone)
        .insert(Text(c.fact()));
  }

  // Alerts.
  ::netvigil::testing::FakeClock clock(absl::FromUnixSeconds(kT0));
  MemoryAlertStore alerts;
  AnalysisOptions options;
  options.learning_period = absl::ZeroDuration();
  Analyzer analyzer(options, alerts, clock);
  ASSERT_THAT(analyzer.Load(), IsOk());
  std::set<std::string> alert_appeared, alert_gone;
  analyzer.AddListener([&](const v1::AlertEvent& e) {
    auto it = e.alert().details().find("fact");
    ASSERT_NE(it, e.alert().details().end()) << e.alert().summary();
    if (e.type() == v1::AlertEvent::TYPE_OPENED)
      alert_appeared.insert(it->second);
    if (e.type() == v1::AlertEvent::TYPE_RESOLVED)
      alert_gone.insert(it->second);
  });
  for (const v1::Result& r : snaps) {
    clock.Advance(absl::Seconds(60));
    analyzer.OnResult("h1", r);
  }
  // New things open after the multi-host hold (and resolve at once when
  // gone by then).
  clock.Advance(options.multi_host_window);
  analyzer.Tick();

  const std::string own =
      "remote tcp /usr/bin/netvigil-agent -> 192.168.1.1:7443";
  EXPECT_EQ(history_appeared.count(own), 1u) << "own traffic is history";
  EXPECT_EQ(alert_appeared.count(own), 0u) << "own traffic is never news";
  history_appeared.erase(own);
  history_gone.erase(own);
  EXPECT_EQ(history_appeared,
            (std::set<std::string>{
                "inbound tcp /usr/sbin/sshd :22 <- 198.51.100.9",
                "listener tcp [::]:8080 /usr/bin/gunicorn",
                "listener tcp [::]:8080 [worker]",
                "listener udp 0.0.0.0:4789 ?",
                "listener udp 0.0.0.0:5353 [avahi-daemon]",
                "remote tcp /tmp/x -> 203.0.113.7:4444",
            }));
  EXPECT_EQ(alert_appeared, history_appeared);
  EXPECT_EQ(history_gone, history_appeared);
  EXPECT_EQ(alert_gone, history_gone);
  EXPECT_THAT(analyzer.Open(), IsEmpty());
}

}  // namespace
}  // namespace netvigil::collector
