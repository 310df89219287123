// Socket rules: new listener (proto, address, port, executable), a program
// talking out on a port class it never used (proto, executable, class) and
// a new inbound peer from outside the LAN, never keyed on PIDs or ephemeral
// ports.
#include "gmock/gmock.h"
#include "tests/unit/collector/analysis/analysis_test_util.h"

namespace netvigil::collector::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const Sock kSsh{.lport = 22, .exe = "/usr/sbin/sshd", .pid = 10};
const Sock kDnsClient{.proto = "udp",
                      .state = "UNCONN",
                      .local = "0.0.0.0",
                      .lport = 45123,
                      .exe = "/usr/lib/systemd/systemd-resolved"};

Sock Outbound(uint32_t local_port, uint32_t pid) {
  return {.state = "ESTAB",
          .local = "192.168.1.10",
          .lport = local_port,
          .remote = "203.0.113.5",
          .rport = 443,
          .exe = "/usr/bin/curl",
          .pid = pid};
}

class SocketRulesTest : public AnalyzerTest {};

TEST_F(SocketRulesTest, NewListenerAlertsAndResolvesWhenItCloses) {
  Send("a", SocketsResult({kSsh}));
  EXPECT_THAT(Open(), IsEmpty()) << "the first snapshot teaches";
  Sock web{
      .local = "::", .lport = 8080, .exe = "/usr/bin/python3.11", .pid = 77};
  Send("a", SocketsResult({kSsh, web}));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].kind(), "new_listener");
  EXPECT_EQ(open[0].subject(), "tcp [::]:8080 /usr/bin/python3.11");
  EXPECT_EQ(open[0].scope(), v1::ALERT_SCOPE_HOST);
  EXPECT_EQ(open[0].severity(), v1::SEVERITY_WARNING);
  EXPECT_EQ(open[0].remote_address(), "");
  EXPECT_EQ(open[0].evidence(0).seq(), 2u);
  // Still there next run: no new event.
  Send("a", SocketsResult({kSsh, web}));
  EXPECT_EQ(events_.size(), 1u);
  Send("a", SocketsResult({kSsh}));
  EXPECT_THAT(Open(), IsEmpty());
  EXPECT_EQ(Events(v1::AlertEvent::TYPE_RESOLVED).size(), 1u);
}

TEST_F(SocketRulesTest, ARestartWithANewPidIsNotNews) {
  Sock web{.lport = 8080, .exe = "/usr/bin/python3.11", .pid = 77};
  Send("a", SocketsResult({kSsh, web}));
  web.pid = 4242;
  Send("a", SocketsResult({kSsh, web}));
  Sock ssh2 = kSsh;
  ssh2.pid = 999;
  Send("a", SocketsResult({ssh2, web}));
  EXPECT_THAT(events_, IsEmpty());
}

TEST_F(SocketRulesTest, EphemeralPortsAreNeverNews) {
  Send("a", SocketsResult({kSsh, kDnsClient, Outbound(40001, 5)}));
  // The same connection from a new local port and PID, and a resolver
  // socket on another ephemeral port: churn, not news.
  Sock dns = kDnsClient;
  dns.lport = 51999;
  Send("a", SocketsResult({kSsh, dns, Outbound(40777, 6), Outbound(40778, 6)}));
  // An inbound ssh session from a known peer on a new source port.
  Sock in{.state = "ESTAB",
          .local = "192.168.1.10",
          .lport = 22,
          .remote = "203.0.113.20",
          .rport = 50000,
          .exe = "/usr/sbin/sshd"};
  Send("a", SocketsResult({kSsh, in}));
  EXPECT_EQ(Opened(), 1u) << "a new peer is news once";
  events_.clear();
  in.rport = 50001;
  in.pid = 11;
  Send("a", SocketsResult({kSsh, in}));
  EXPECT_THAT(events_, IsEmpty());
}

TEST_F(SocketRulesTest, NewRemoteEndpointCarriesTheRemoteAddress) {
  Send("a", SocketsResult({kSsh, Outbound(40001, 5)}));
  Sock other = Outbound(40002, 5);
  other.remote = "::ffff:198.51.100.23";
  other.rport = 6667;
  Send("a", SocketsResult({kSsh, Outbound(40003, 5), other}));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].kind(), "new_remote");
  EXPECT_EQ(open[0].subject(), "tcp /usr/bin/curl -> irc");
  EXPECT_EQ(open[0].summary(),
            "/usr/bin/curl talks out on a port class it never used (irc): "
            "tcp 198.51.100.23:6667 on a");
  EXPECT_EQ(open[0].remote_address(), "198.51.100.23");
}

TEST_F(SocketRulesTest,
       AnOwnerProcNeverShowedIsAnUnknownProcessNotAQuestionMark) {
  Send("a", SocketsResult({kSsh}));
  Sock orphan = Outbound(40002, 5);
  orphan.exe = "";  // no /proc entry owned it: a kernel socket, a process gone
  Send("a", SocketsResult({kSsh, orphan}));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].summary(),
            "first outbound connection of unknown process (web): tcp "
            "203.0.113.5:443 on a");
  // The key keeps its "?" (the fact model's owner when nothing could be
  // read); only the words for people say it.
  EXPECT_EQ(open[0].subject(), "tcp ? -> web");
}

// The quickstart's first speed mesh raised "new peer connected to tcp port
// 5201 (/usr/bin/iperf3)": netvigil's own tests. The agent marks its own
// iperf3's sockets; they are never news, and the same socket from an iperf3
// the agent did not start still is.
TEST_F(SocketRulesTest, TheAgentsOwnIperf3IsNeverNews) {
  Sock server{.lport = 5201, .exe = "/usr/bin/iperf3", .agent_own = true};
  Send("a", SocketsResult({kSsh, server}));
  Sock in{.state = "ESTAB",
          .local = "198.18.1.13",
          .lport = 5201,
          .remote = "198.18.1.12",
          .rport = 51000,
          .exe = "/usr/bin/iperf3",
          .agent_own = true};
  Sock out{.state = "ESTAB",
           .local = "198.18.1.13",
           .lport = 52000,
           .remote = "198.18.1.11",
           .rport = 5201,
           .exe = "/usr/bin/iperf3",
           .agent_own = true};
  Sock second_server{
      .lport = 5202, .exe = "/usr/bin/iperf3", .agent_own = true};
  Send("a", SocketsResult({kSsh, server, in, out, second_server}));
  EXPECT_THAT(Open(), IsEmpty());
  // A stranger's iperf3 on the same host is news.
  Sock stranger = out;
  stranger.agent_own = false;
  stranger.remote = "203.0.113.9";
  Send("a", SocketsResult({kSsh, server, stranger}));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].subject(), "tcp /usr/bin/iperf3 -> port 5201");
}

TEST_F(SocketRulesTest, NewInboundPeerCarriesItsAddress) {
  Send("a", SocketsResult({kSsh}));
  Sock in{.state = "ESTAB",
          .local = "192.168.1.10",
          .lport = 22,
          .remote = "203.0.113.66",
          .rport = 61000,
          .exe = "/usr/sbin/sshd"};
  Send("a", SocketsResult({kSsh, in}));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].kind(), "new_inbound");
  EXPECT_EQ(open[0].subject(), "tcp /usr/sbin/sshd :22 <- 203.0.113.66");
  EXPECT_EQ(open[0].remote_address(), "203.0.113.66");
}

// Local IPC and LAN peers are not news (the listener was); a peer from
// outside the LAN is, with its address for fail2ban.
TEST_F(SocketRulesTest, LoopbackAndLanPeersAreNotNews) {
  Send("a", SocketsResult({kSsh}));
  Sock in{.state = "ESTAB",
          .local = "127.0.0.1",
          .lport = 22,
          .remote = "127.0.0.1",
          .rport = 61000,
          .exe = "/usr/sbin/sshd"};
  Sock lan = in;
  lan.local = "192.168.1.10";
  lan.remote = "192.168.1.77";
  Sock ipc{.state = "ESTAB",
           .local = "127.0.0.1",
           .lport = 50000,
           .remote = "127.0.0.1",
           .rport = 631,
           .exe = "/usr/bin/lpstat"};
  Send("a", SocketsResult({kSsh, in, lan, ipc}));
  EXPECT_THAT(Open(), IsEmpty());
  Sock outside = lan;
  outside.remote = "203.0.113.66";
  Send("a", SocketsResult({kSsh, outside}));
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_EQ(Open()[0].remote_address(), "203.0.113.66");
}

// The other end of a speed test: the agent cannot tell it from a stranger's
// connection (its iperf3 child may be gone, the socket ownerless), but the
// collector knows the agents' addresses and the speed port.
TEST_F(SocketRulesTest, TheOtherEndOfASpeedTestIsNotNews) {
  model::OwnEndpoints own;
  own.speed_port = 5201;
  own.agents = {"198.18.1.11", "198.18.1.12"};
  own.servers = {{"203.0.113.50", 5201}};
  analyzer_->SetOwnEndpoints(own);
  Send("h2", SocketsResult({kSsh}));
  Sock client{.state = "ESTAB",
              .local = "198.18.1.12",
              .lport = 41000,
              .remote = "198.18.1.11",
              .rport = 5201,
              .exe = ""};  // ownerless: the iperf3 client has exited
  Sock external = client;
  external.remote = "203.0.113.50";
  Sock server{.lport = 5201, .exe = "/usr/bin/iperf3"};
  Sock accepted{.state = "ESTAB",
                .local = "198.18.1.12",
                .lport = 5201,
                .remote = "198.18.1.11",
                .rport = 45000,
                .exe = "/usr/bin/iperf3"};
  server.agent_own = true;
  Send("h2", SocketsResult({kSsh, server, client, external, accepted}));
  EXPECT_THAT(Open(), IsEmpty());
  // A stranger on the same port from outside is news.
  Sock stranger = accepted;
  stranger.remote = "203.0.113.99";
  Send("h2", SocketsResult({kSsh, server, stranger}));
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_EQ(Open()[0].kind(), "new_inbound");
}

TEST_F(SocketRulesTest, UdpServicesOnFixedPortsAreListeners) {
  Send("a", SocketsResult({kSsh}));
  Sock dns{.proto = "udp",
           .state = "UNCONN",
           .local = "0.0.0.0",
           .lport = 53,
           .exe = "/usr/sbin/dnsmasq"};
  Send("a", SocketsResult({kSsh, dns}));
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_EQ(Open()[0].subject(), "udp 0.0.0.0:53 /usr/sbin/dnsmasq");
}

class LearningTest : public AnalyzerTest {
 protected:
  static AnalysisOptions WithLearning() {
    AnalysisOptions o = TestOptions();
    o.learning_period = absl::Hours(24);
    return o;
  }
  LearningTest() : AnalyzerTest(WithLearning()) {}
};

TEST_F(LearningTest, WhatAppearsWhileLearningIsBaseline) {
  Send("a", SocketsResult({kSsh}));
  clock_.Advance(absl::Hours(2));
  Sock web{.lport = 8080, .exe = "/usr/bin/python3.11"};
  Send("a", SocketsResult({kSsh, web}));
  EXPECT_THAT(events_, IsEmpty());
  clock_.Advance(absl::Hours(23));
  Sock db{.lport = 5432, .exe = "/usr/lib/postgresql/15/bin/postgres"};
  Send("a", SocketsResult({kSsh, web, db}));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].subject(),
            "tcp 0.0.0.0:5432 /usr/lib/postgresql/15/bin/postgres");
}

}  // namespace
}  // namespace netvigil::collector::testing

namespace netvigil::collector::testing {
namespace {

// A baseline learnt before port classes knew endpoints: each one teaches
// its class after an upgrade, so a known program is not news again.
TEST_F(SocketRulesTest, EndpointsKnownBeforePortClassesTeachTheirClass) {
  Send("a", SocketsResult({kSsh}));  // the first snapshot: learnt
  ASSERT_TRUE(store_
                  .PutState({"a", "known:new_remote",
                             "tcp /usr/bin/curl -> [2001:db8::5]:443", ""})
                  .ok());
  Restart();
  Sock out = Outbound(40001, 5);
  out.remote = "198.51.100.99";  // a server curl never reached
  Send("a", SocketsResult({kSsh, out}));
  EXPECT_THAT(Open(), IsEmpty());
  out.rport = 4444;
  Send("a", SocketsResult({kSsh, out}));
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_EQ(Open()[0].subject(), "tcp /usr/bin/curl -> port 4444");
}

}  // namespace
}  // namespace netvigil::collector::testing

namespace netvigil::collector::testing {
namespace {

// The same program talking out on a new class on several hosts is one
// alert across them, whatever endpoints each reached.
TEST_F(SocketRulesTest, TheSameNewRemoteClassOnTwoHostsIsOneAlert) {
  Send("a", SocketsResult({kSsh}));
  Send("b", SocketsResult({kSsh}));
  Sock out{.state = "ESTAB",
           .local = "192.168.1.10",
           .lport = 40001,
           .remote = "203.0.113.7",
           .rport = 4444,
           .exe = "/usr/sbin/sshd"};
  Send("a", SocketsResult({kSsh, out}));
  out.remote = "203.0.113.8";
  Send("b", SocketsResult({kSsh, out}));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].subject(), "tcp /usr/sbin/sshd -> port 4444");
  EXPECT_EQ(open[0].scope(), v1::ALERT_SCOPE_MULTI_HOST);
  EXPECT_THAT(open[0].hosts(), ElementsAre("a", "b"));
}

}  // namespace
}  // namespace netvigil::collector::testing
