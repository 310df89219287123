// The fact model: what the same socket and file access are, and the one
// diff. These are the decisions history and alerts used to make apart.
#include "common/model/facts.h"

#include <arpa/inet.h>

#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace netvigil::model {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

v1::SocketEntry Sock(v1::Transport proto, const std::string& state,
                     const std::string& laddr, uint32_t lport,
                     const std::string& raddr, uint32_t rport,
                     std::vector<std::pair<std::string, std::string>> owners) {
  v1::SocketEntry e;
  e.set_proto(proto);
  e.set_state(state);
  e.set_local_address(laddr);
  e.set_local_port(lport);
  e.set_remote_address(raddr);
  e.set_remote_port(rport);
  uint32_t pid = 100;
  for (const auto& [exe, name] : owners) {
    v1::ProcessRef* p = e.add_processes();
    p->set_pid(pid++);
    p->set_exe(exe);
    p->set_name(name);
  }
  return e;
}

std::vector<std::string> Texts(const SocketFacts& facts) {
  std::vector<std::string> out;
  for (const auto& [f, info] : facts) out.push_back(FactText(f));
  return out;
}

constexpr v1::Transport kTcp = v1::TRANSPORT_TCP;
constexpr v1::Transport kUdp = v1::TRANSPORT_UDP;

TEST(CanonicalAddressTest, OneSpellingPerAddress) {
  EXPECT_EQ(CanonicalAddress("::ffff:192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(CanonicalAddress("::FFFF:C000:0201"), "192.0.2.1");
  EXPECT_EQ(CanonicalAddress("2001:DB8:0:0::1"), "2001:db8::1");
  EXPECT_EQ(CanonicalAddress("192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(CanonicalAddress("*"), "*");
  EXPECT_EQ(CanonicalAddress("host.example"), "host.example");
  EXPECT_EQ(CanonicalAddress(std::string(300, 'a')), std::string(300, 'a'));
}

// CanonicalAddress answers what inet_pton and inet_ntop answer, for any
// string (its dotted-quad fast path included): seeded random strings near
// IPv4 and IPv6 literals, and their edge cases.
std::string ReferenceCanonical(const std::string& text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return text;
  char buf[INET6_ADDRSTRLEN];
  in_addr a4;
  if (inet_pton(AF_INET, text.c_str(), &a4) == 1) {
    return inet_ntop(AF_INET, &a4, buf, sizeof(buf));
  }
  in6_addr a6;
  if (inet_pton(AF_INET6, text.c_str(), &a6) == 1) {
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
      std::memcpy(&a4, &a6.s6_addr[12], 4);
      return inet_ntop(AF_INET, &a4, buf, sizeof(buf));
    }
    return inet_ntop(AF_INET6, &a6, buf, sizeof(buf));
  }
  return text;
}

TEST(CanonicalAddressTest, AgreesWithInetPtonAndNtopOnAnyString) {
  for (const char* edge :
       {"0.0.0.0", "255.255.255.255", "256.1.1.1", "1.2.3", "1.2.3.4.",
        ".1.2.3.4", "1..2.3", "01.2.3.4", "1.2.3.04", "1.2.3.4 ", "1.2.3.4.5",
        "1000.1.1.1", "0.0.0.00", "9.9.9.9", "::1", "::ffff:1.2.3.4"}) {
    EXPECT_EQ(CanonicalAddress(edge), ReferenceCanonical(edge)) << edge;
  }
  std::mt19937 rng(20261206);
  const std::string alphabet = "0123456789.:abf";
  for (int i = 0; i < 200000; ++i) {
    std::string text;
    if (i % 2 == 0) {
      // Near a dotted quad: four numbers, then perhaps one character off.
      text = absl::StrCat(rng() % 300, ".", rng() % 300, ".", rng() % 300, ".",
                          rng() % 300);
      if (rng() % 3 == 0) text[rng() % text.size()] = alphabet[rng() % 15];
      if (rng() % 5 == 0) text.insert(rng() % text.size(), "0");
    } else {
      const size_t n = rng() % 20;
      for (size_t j = 0; j < n; ++j) text += alphabet[rng() % alphabet.size()];
    }
    ASSERT_EQ(CanonicalAddress(text), ReferenceCanonical(text)) << text;
  }
}

TEST(CanonicalAddressTest, PrivateMeansTheLan) {
  for (const char* a :
       {"10.1.2.3", "172.16.0.1", "172.31.255.1", "192.168.1.1", "169.254.3.3",
        "127.0.0.1", "::1", "fe80::1", "fd00::5"}) {
    EXPECT_TRUE(IsPrivateAddress(a)) << a;
  }
  for (const char* a :
       {"172.32.0.1", "8.8.8.8", "2001:db8::1", "198.18.1.1", "nonsense"}) {
    EXPECT_FALSE(IsPrivateAddress(a)) << a;
  }
}

TEST(SocketFactsTest, UdpOnAnEphemeralPortIsNoListener) {
  v1::SocketSnapshot snap;
  *snap.add_sockets() = Sock(kUdp, "UNCONN", "0.0.0.0", 5353, "0.0.0.0", 0,
                             {{"/usr/sbin/avahi-daemon", "avahi-daemon"}});
  *snap.add_sockets() = Sock(kUdp, "UNCONN", "0.0.0.0", 45123, "*", 0,
                             {{"/usr/lib/systemd/systemd-resolved", "r"}});
  *snap.add_sockets() =
      Sock(kUdp, "UNCONN", "::", 0, "::", 0, {{"/usr/bin/app", "app"}});
  EXPECT_THAT(Texts(SocketFactsOf(snap)),
              ElementsAre("listener udp 0.0.0.0:5353 /usr/sbin/avahi-daemon"));
  FactOptions narrow;
  narrow.ephemeral_port_min = 50000;
  EXPECT_EQ(SocketFactsOf(snap, narrow).size(), 2u);
}

TEST(SocketFactsTest, EveryOwnerMakesItsFactAndUnreadableExesAreBracketed) {
  v1::SocketSnapshot snap;
  *snap.add_sockets() = Sock(kTcp, "LISTEN", "0.0.0.0", 80, "0.0.0.0", 0,
                             {{"/usr/sbin/nginx", "nginx"},
                              {"", "php-fpm"},
                              {"/usr/sbin/nginx", "nginx"}});
  *snap.add_sockets() = Sock(kTcp, "LISTEN", "::", 111, "::", 0, {});
  EXPECT_THAT(Texts(SocketFactsOf(snap)),
              ElementsAre("listener tcp 0.0.0.0:80 /usr/sbin/nginx",
                          "listener tcp 0.0.0.0:80 [php-fpm]",
                          "listener tcp [::]:111 ?"));
}

TEST(SocketFactsTest, ConnectionsKeyWithoutEphemeralPorts) {
  v1::SocketSnapshot snap;
  *snap.add_sockets() = Sock(kTcp, "LISTEN", "0.0.0.0", 22, "0.0.0.0", 0,
                             {{"/usr/sbin/sshd", "sshd"}});
  *snap.add_sockets() = Sock(kTcp, "ESTAB", "192.168.1.10", 22, "192.168.1.20",
                             50123, {{"/usr/sbin/sshd", "sshd"}});
  *snap.add_sockets() =
      Sock(kTcp, "ESTAB", "::ffff:192.168.1.10", 40001, "::ffff:198.51.100.7",
           443, {{"/usr/bin/firefox", "firefox"}});
  // Closing and ownerless: seen while it was owned.
  *snap.add_sockets() =
      Sock(kTcp, "TIME-WAIT", "192.168.1.10", 40002, "198.51.100.8", 443, {});
  // Connected and ownerless: kept, owned by "?".
  *snap.add_sockets() =
      Sock(kTcp, "ESTAB", "192.168.1.10", 40003, "198.51.100.9", 80, {});
  EXPECT_THAT(Texts(SocketFactsOf(snap)),
              ElementsAre("inbound tcp /usr/sbin/sshd :22 <- 192.168.1.20",
                          "listener tcp 0.0.0.0:22 /usr/sbin/sshd",
                          "remote tcp /usr/bin/firefox -> 198.51.100.7:443",
                          "remote tcp ? -> 198.51.100.9:80"));
}

TEST(SocketFactsTest, OwnOnlyWhenEverySocketOfTheKeyIsTheAgents) {
  v1::SocketSnapshot snap;
  v1::SocketEntry own = Sock(kTcp, "ESTAB", "10.0.0.2", 40000, "10.0.0.1", 5201,
                             {{"/usr/bin/iperf3", "iperf3"}});
  own.set_agent_own(true);
  *snap.add_sockets() = own;
  EXPECT_TRUE(SocketFactsOf(snap).begin()->second.agent_own);
  v1::SocketEntry stranger = own;
  stranger.set_agent_own(false);
  stranger.set_local_port(40001);
  *snap.add_sockets() = stranger;
  EXPECT_FALSE(SocketFactsOf(snap).begin()->second.agent_own);
}

TEST(SocketFactsTest, TheCollectorKnowsTheOtherEndOfASpeedTest) {
  OwnEndpoints own;
  own.speed_port = 5201;
  own.agents = {"10.0.0.1"};
  own.servers = {{"203.0.113.50", 9201}};
  SocketFact out{SocketFactKind::kRemote, kTcp, "", 0, "10.0.0.1", 5201, "?"};
  SocketFact in{SocketFactKind::kInbound, kTcp, "", 5201, "10.0.0.1", 0, "?"};
  SocketFact ext{SocketFactKind::kRemote, kTcp, "", 0,
                 "203.0.113.50",          9201, "?"};
  SocketFact other{SocketFactKind::kRemote, kTcp, "", 0, "10.0.0.1", 22, "?"};
  SocketFact stranger{
      SocketFactKind::kInbound, kTcp, "", 5201, "10.0.0.9", 0, "?"};
  EXPECT_TRUE(IsOwnTraffic(out, own));
  EXPECT_TRUE(IsOwnTraffic(in, own));
  EXPECT_TRUE(IsOwnTraffic(ext, own));
  EXPECT_FALSE(IsOwnTraffic(other, own));
  EXPECT_FALSE(IsOwnTraffic(stranger, own));
}

TEST(DiffFactsTest, AppearedAndGoneInKeyOrder) {
  std::map<int, int> before{{1, 0}, {2, 0}, {4, 0}};
  std::map<int, int> after{{2, 0}, {3, 0}, {5, 0}};
  FactDiff<int> d = DiffFacts(before, after);
  std::vector<int> appeared, gone;
  for (const int* k : d.appeared) appeared.push_back(*k);
  for (const int* k : d.gone) gone.push_back(*k);
  EXPECT_THAT(appeared, ElementsAre(3, 5));
  EXPECT_THAT(gone, ElementsAre(1, 4));
  EXPECT_THAT(DiffFacts(after, after).appeared, IsEmpty());
}

TEST(FileFactsTest, UnreadableExeIsBracketedLikeSockets) {
  v1::FileSnapshot snap;
  v1::FileEntry* e = snap.add_entries();
  e->mutable_process()->set_name("kworker");
  e->set_path("/home/a/x");
  e->set_kind(v1::FILE_ACCESS_FD);
  FileFacts f = FileFactsOf(snap);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f.begin()->first.owner, "[kworker]");
}

}  // namespace
}  // namespace netvigil::model
