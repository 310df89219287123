// Tests of the inet_diag dump parser on dumps recorded from this machine.
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <limits>
#include <map>
#include <string>

#include "agent/sys/netlink_inet_diag.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fixtures.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::IsOk;
using ::netvigil::testing::ReadFixture;
using ::netvigil::testing::StatusIs;

std::string NoName(uint32_t index) { return "if" + std::to_string(index); }

TEST(InetDiagParseTest, RecordedTcp4DumpHasListenerPairAndTimeWait) {
  v1::SocketSnapshot snap;
  ASSERT_THAT(ParseInetDiagDump(ReadFixture("sock_diag/tcp4.bin"),
                                v1::TRANSPORT_TCP, NoName, &snap),
              IsOk());
  ASSERT_EQ(snap.sockets_size(), 4);
  const v1::SocketEntry& listener = snap.sockets(0);
  EXPECT_EQ(listener.proto(), v1::TRANSPORT_TCP);
  EXPECT_EQ(listener.family(), 4u);
  EXPECT_EQ(listener.state(), "LISTEN");
  EXPECT_EQ(listener.local_address(), "127.0.0.1");
  EXPECT_EQ(listener.local_port(), 44299u);
  EXPECT_EQ(listener.remote_address(), "0.0.0.0");
  EXPECT_EQ(listener.remote_port(), 0u);
  EXPECT_EQ(listener.inode(), 53958u);
  EXPECT_EQ(listener.interface(), "");

  const v1::SocketEntry& client = snap.sockets(1);
  EXPECT_EQ(client.state(), "ESTAB");
  EXPECT_EQ(client.local_port(), 37992u);
  EXPECT_EQ(client.remote_address(), "127.0.0.1");
  EXPECT_EQ(client.remote_port(), 44299u);
  EXPECT_EQ(client.inode(), 53959u);

  // A TIME-WAIT minisocket has no inode and so no owner.
  EXPECT_EQ(snap.sockets(2).state(), "TIME-WAIT");
  EXPECT_EQ(snap.sockets(2).inode(), 0u);
  EXPECT_EQ(snap.sockets(3).local_port(), 44299u);
  EXPECT_EQ(snap.sockets(3).remote_port(), 37992u);
}

TEST(InetDiagParseTest, RecordedIpv6AndUdpDumps) {
  v1::SocketSnapshot snap;
  ASSERT_THAT(ParseInetDiagDump(ReadFixture("sock_diag/tcp6.bin"),
                                v1::TRANSPORT_TCP, NoName, &snap),
              IsOk());
  ASSERT_THAT(ParseInetDiagDump(ReadFixture("sock_diag/udp4.bin"),
                                v1::TRANSPORT_UDP, NoName, &snap),
              IsOk());
  ASSERT_THAT(ParseInetDiagDump(ReadFixture("sock_diag/udp6.bin"),
                                v1::TRANSPORT_UDP, NoName, &snap),
              IsOk());
  ASSERT_EQ(snap.sockets_size(), 3);
  EXPECT_EQ(snap.sockets(0).family(), 6u);
  EXPECT_EQ(snap.sockets(0).local_address(), "::1");
  EXPECT_EQ(snap.sockets(0).remote_address(), "::");
  EXPECT_EQ(snap.sockets(0).state(), "LISTEN");
  // An unconnected UDP socket is TCP_CLOSE in the kernel, UNCONN in ss.
  EXPECT_EQ(snap.sockets(1).proto(), v1::TRANSPORT_UDP);
  EXPECT_EQ(snap.sockets(1).state(), "UNCONN");
  EXPECT_EQ(snap.sockets(1).local_address(), "0.0.0.0");
  EXPECT_EQ(snap.sockets(1).local_port(), 40811u);
  // A connected UDP socket is ESTAB.
  EXPECT_EQ(snap.sockets(2).state(), "ESTAB");
  EXPECT_EQ(snap.sockets(2).remote_address(), "::1");
  EXPECT_EQ(snap.sockets(2).remote_port(), 55857u);
}

// Recorded by tests/fixtures/sock_diag/record_v6only.py: "::" sockets with
// IPV6_V6ONLY off (TCP 5004, UDP 5005) and on (TCP 7002, UDP 7003).
TEST(InetDiagParseTest, V6OnlyComesFromTheKernelsAttribute) {
  v1::SocketSnapshot snap;
  ASSERT_THAT(ParseInetDiagDump(ReadFixture("sock_diag/tcp6_v6only.bin"),
                                v1::TRANSPORT_TCP, NoName, &snap),
              IsOk());
  ASSERT_THAT(ParseInetDiagDump(ReadFixture("sock_diag/udp6_v6only.bin"),
                                v1::TRANSPORT_UDP, NoName, &snap),
              IsOk());
  ASSERT_EQ(snap.sockets_size(), 4);
  std::map<uint32_t, bool> v6only;
  for (const v1::SocketEntry& e : snap.sockets()) {
    EXPECT_EQ(e.local_address(), "::");
    ASSERT_TRUE(e.has_v6_only()) << e.ShortDebugString();
    v6only[e.local_port()] = e.v6_only();
  }
  EXPECT_EQ(v6only,
            (std::map<uint32_t, bool>{
                {5004, false}, {5005, false}, {7002, true}, {7003, true}}));

  // The kernel makes a socket bound to ::1 IPv6-only; IPv4 has no such bit.
  v1::SocketSnapshot other;
  ASSERT_THAT(ParseInetDiagDump(ReadFixture("sock_diag/tcp6.bin"),
                                v1::TRANSPORT_TCP, NoName, &other),
              IsOk());
  ASSERT_THAT(ParseInetDiagDump(ReadFixture("sock_diag/tcp4.bin"),
                                v1::TRANSPORT_TCP, NoName, &other),
              IsOk());
  EXPECT_TRUE(other.sockets(0).has_v6_only());
  EXPECT_TRUE(other.sockets(0).v6_only());
  EXPECT_FALSE(other.sockets(1).has_v6_only());
}

TEST(InetDiagParseTest, AttributeLongerThanItsMessageIsDataLoss) {
  std::string dump = ReadFixture("sock_diag/tcp6_v6only.bin");
  // The first attribute follows the 16-byte header and the 72-byte message.
  const uint16_t too_long = 0x4000;
  std::memcpy(dump.data() + 16 + 72, &too_long, sizeof(too_long));
  v1::SocketSnapshot snap;
  EXPECT_THAT(ParseInetDiagDump(dump, v1::TRANSPORT_TCP, NoName, &snap),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(InetDiagParseTest, ChunkWithoutDoneIsNotTheEnd) {
  std::string dump = ReadFixture("sock_diag/udp4.bin");
  // The first message alone (the DONE is the last 20 bytes).
  std::string first = dump.substr(0, dump.size() - 20);
  v1::SocketSnapshot snap;
  absl::StatusOr<bool> done =
      ParseInetDiagChunk(first, v1::TRANSPORT_UDP, NoName, &snap);
  ASSERT_THAT(done, IsOk());
  EXPECT_FALSE(*done);
  EXPECT_EQ(snap.sockets_size(), 1);
  EXPECT_THAT(ParseInetDiagDump(first, v1::TRANSPORT_UDP, NoName, &snap),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(InetDiagParseTest, TruncatedBytesAreDataLossNotACrash) {
  std::string dump = ReadFixture("sock_diag/tcp4.bin");
  for (size_t cut : {size_t{3}, size_t{16}, size_t{40}, size_t{123}}) {
    v1::SocketSnapshot snap;
    EXPECT_THAT(ParseInetDiagDump(dump.substr(0, cut), v1::TRANSPORT_TCP,
                                  NoName, &snap),
                StatusIs(absl::StatusCode::kDataLoss))
        << "cut at " << cut;
  }
}

TEST(InetDiagParseTest, BoundInterfaceIsNamed) {
  std::string dump = ReadFixture("sock_diag/udp4.bin");
  // idiag_if sits after the header (16), family..retrans (4), ports (4) and
  // two 16-byte addresses.
  const uint32_t lo = 1;
  std::memcpy(dump.data() + 16 + 4 + 4 + 32, &lo, sizeof(lo));
  v1::SocketSnapshot snap;
  ASSERT_THAT(ParseInetDiagDump(dump, v1::TRANSPORT_UDP, NoName, &snap),
              IsOk());
  EXPECT_EQ(snap.sockets(0).interface(), "if1");
}

// One NLMSG_ERROR message carrying `error`.
std::string ErrorMessage(int error) {
  struct {
    nlmsghdr h;
    nlmsgerr e;
  } msg{};
  msg.h.nlmsg_len = sizeof(msg);
  msg.h.nlmsg_type = NLMSG_ERROR;
  msg.e.error = error;
  return std::string(reinterpret_cast<const char*>(&msg), sizeof(msg));
}

TEST(InetDiagParseTest, KernelErrorBecomesItsErrno) {
  v1::SocketSnapshot snap;
  EXPECT_THAT(
      ParseInetDiagDump(ErrorMessage(-EPERM), v1::TRANSPORT_TCP, NoName, &snap),
      StatusIs(absl::StatusCode::kPermissionDenied));
}

// Found by tests/fuzz/inet_diag_fuzz.cc: negating INT_MIN overflowed.
TEST(InetDiagParseTest, ErrorThatIsNoErrnoIsDataLoss) {
  for (int error : {std::numeric_limits<int>::min(), -4096, 1}) {
    v1::SocketSnapshot snap;
    EXPECT_THAT(ParseInetDiagDump(ErrorMessage(error), v1::TRANSPORT_TCP,
                                  NoName, &snap),
                StatusIs(absl::StatusCode::kDataLoss))
        << error;
  }
}

TEST(InetDiagParseTest, ForeignMessageTypeIsRejected) {
  std::string dump = ReadFixture("sock_diag/udp4.bin");
  const uint16_t type = 99;
  std::memcpy(dump.data() + 4, &type, sizeof(type));
  v1::SocketSnapshot snap;
  EXPECT_THAT(ParseInetDiagDump(dump, v1::TRANSPORT_UDP, NoName, &snap),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(InetDiagParseTest, StateNamesFollowSs) {
  EXPECT_EQ(SocketStateName(v1::TRANSPORT_TCP, 1), "ESTAB");
  EXPECT_EQ(SocketStateName(v1::TRANSPORT_TCP, 7), "CLOSE");
  EXPECT_EQ(SocketStateName(v1::TRANSPORT_UDP, 7), "UNCONN");
  EXPECT_EQ(SocketStateName(v1::TRANSPORT_TCP, 12), "SYN-RECV");
  EXPECT_EQ(SocketStateName(v1::TRANSPORT_TCP, 200), "STATE-200");
}

}  // namespace
}  // namespace netvigil::agent
