// collector/analysis/rules/sockets.{h,cc}: which socket facts may be news,
// their keys and words, as pure functions.
#include "collector/analysis/rules/sockets.h"
#include "gmock/gmock.h"
#include "tests/unit/collector/analysis/analysis_test_util.h"

namespace netvigil::collector::rules {
namespace {

using ::netvigil::collector::testing::Sock;
using ::netvigil::collector::testing::SocketsResult;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

template <typename M>
std::vector<std::string> Keys(const M& m) {
  std::vector<std::string> out;
  for (const auto& [k, v] : m) out.push_back(k);
  return out;
}

TEST(RulesSocketsTest, CandidatesByKindSkipOwnLanAndLoopbackTraffic) {
  const std::vector<Sock> socks = {
      {.lport = 22, .exe = "/usr/sbin/sshd"},
      // Outside the LAN into sshd: news per peer.
      {.state = "ESTAB",
       .local = "192.168.1.5",
       .lport = 22,
       .remote = "203.0.113.7",
       .rport = 50000,
       .exe = "/usr/sbin/sshd"},
      // A LAN peer of the same listener: not news.
      {.state = "ESTAB",
       .local = "192.168.1.5",
       .lport = 22,
       .remote = "192.168.1.9",
       .rport = 50001,
       .exe = "/usr/sbin/sshd"},
      // Out to the web and to loopback.
      {.state = "ESTAB",
       .local = "192.168.1.5",
       .lport = 40000,
       .remote = "198.51.100.1",
       .rport = 443,
       .exe = "/usr/bin/curl"},
      {.state = "ESTAB",
       .local = "127.0.0.1",
       .lport = 40001,
       .remote = "127.0.0.1",
       .rport = 5432,
       .exe = "/usr/bin/psql"},
      // The agent's own link.
      {.state = "ESTAB",
       .local = "192.168.1.5",
       .lport = 40002,
       .remote = "192.168.1.1",
       .rport = 7443,
       .exe = "/usr/bin/netvigil-agent",
       .agent_own = true},
  };
  AnalysisOptions o;
  SocketCandidates c =
      SocketCandidatesOf(SocketsResult(socks).sockets(), {}, o);
  EXPECT_THAT(Keys(c.listeners),
              UnorderedElementsAre("tcp 0.0.0.0:22 /usr/sbin/sshd"));
  EXPECT_THAT(Keys(c.inbound),
              UnorderedElementsAre("tcp /usr/sbin/sshd :22 <- 203.0.113.7"));
  EXPECT_THAT(Keys(c.remotes),
              UnorderedElementsAre("tcp /usr/bin/curl -> web"));
  const auto& f = *c.sources[c.remotes.at("tcp /usr/bin/curl -> web")];
  EXPECT_EQ(f.remote_address, "198.51.100.1");
}

TEST(RulesSocketsTest, PortClasses) {
  AnalysisOptions o;
  EXPECT_EQ(PortClass(443, o), "web");
  EXPECT_EQ(PortClass(6667, o), "irc");
  EXPECT_EQ(PortClass(4444, o), "port 4444");
  EXPECT_EQ(PortClass(40000, o), "dynamic");
  EXPECT_EQ(RemoteKeyOfStored("tcp /usr/bin/curl -> [2001:db8::5]:443", o),
            "tcp /usr/bin/curl -> web");
  EXPECT_EQ(RemoteKeyOfStored("tcp /usr/bin/curl -> port 4444", o),
            "tcp /usr/bin/curl -> port 4444");
}

TEST(RulesSocketsTest, ARemoteSaysWhetherTheProgramTalkedOutBefore) {
  AnalysisOptions o;
  SocketCandidates c =
      SocketCandidatesOf(SocketsResult({{.state = "ESTAB",
                                         .local = "192.168.1.5",
                                         .lport = 40000,
                                         .remote = "203.0.113.9",
                                         .rport = 6667,
                                         .exe = "/usr/bin/python3.11"}})
                             .sockets(),
                         {}, o);
  ASSERT_EQ(c.sources.size(), 1u);
  Thing first = DescribeRemote(*c.sources[0], {}, o);
  EXPECT_THAT(first.summary,
              HasSubstr("first outbound connection of /usr/bin/python3.11 "
                        "(irc): tcp 203.0.113.9:6667"));
  EXPECT_EQ(first.remote_address, "203.0.113.9");
  Thing known =
      DescribeRemote(*c.sources[0], {"tcp /usr/bin/python3.11 -> web"}, o);
  EXPECT_THAT(known.summary, HasSubstr("talks out on a port class it never "
                                       "used (irc)"));
}

TEST(RulesSocketsTest, AListenerOnTheHostsOwnAddressIsOneGroupAcrossHosts) {
  AnalysisOptions o;
  SocketCandidates c = SocketCandidatesOf(
      SocketsResult(
          {{.local = "192.168.1.5", .lport = 8080, .exe = "/usr/bin/gunicorn"}})
          .sockets(),
      {}, o);
  ASSERT_EQ(c.sources.size(), 1u);
  Thing t = DescribeListener(*c.sources[0]);
  EXPECT_EQ(t.group, "tcp <host>:8080 /usr/bin/gunicorn");
  EXPECT_THAT(t.summary, HasSubstr("new listener tcp 192.168.1.5:8080"));
}

}  // namespace
}  // namespace netvigil::collector::rules
