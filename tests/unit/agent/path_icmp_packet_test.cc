// ICMP building and parsing against packets recorded in a lab namespace
// (tests/fixtures/icmp/record_icmp_fixtures.py says how).
#include <random>
#include <string>
#include <vector>

#include "agent/probes/icmp_packet.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fixtures.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::IsOk;
using ::netvigil::testing::ReadFixture;
using ::netvigil::testing::StatusIs;

constexpr uint16_t kIdent = 0x4E56;  // what the recorder sent

std::string Packed(const std::string& text) {
  absl::StatusOr<std::string> a = ParseAddress(text);
  EXPECT_THAT(a, IsOk());
  return a.value_or("");
}

TEST(PathIcmpPacketTest, EchoRequestV4HasValidChecksumAndFields) {
  std::string b = BuildEchoRequest(4, 0x1234, 0xBEEF, 56);
  ASSERT_EQ(b.size(), 64u);
  EXPECT_EQ(static_cast<uint8_t>(b[0]), kIcmp4EchoRequest);
  // A correct checksum makes the sum over the whole message come out 0.
  EXPECT_EQ(InternetChecksum(b), 0);
  absl::StatusOr<IcmpMessage> m = ParseIcmp(4, b);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->kind, IcmpKind::kEchoRequest);
  EXPECT_EQ(m->identifier, 0x1234);
  EXPECT_EQ(m->sequence, 0xBEEF);
  EXPECT_EQ(m->payload_bytes, 56u);
}

TEST(PathIcmpPacketTest, EchoRequestMatchesWhatTheRecorderSent) {
  // The quoted request inside a recorded time exceeded is byte for byte
  // what BuildEchoRequest makes for the same identifier and sequence.
  std::string te = ReadFixture("icmp/v4_time_exceeded_ttl1.bin");
  std::string quoted_icmp = te.substr(20 + 8 + 20, 64);
  EXPECT_EQ(quoted_icmp, BuildEchoRequest(4, kIdent, 2, 56));
}

TEST(PathIcmpPacketTest, EchoRequestV6LeavesChecksumToKernel) {
  std::string b = BuildEchoRequest(6, 7, 9, 0);
  ASSERT_EQ(b.size(), 8u);
  EXPECT_EQ(static_cast<uint8_t>(b[0]), kIcmp6EchoRequest);
  EXPECT_EQ(b[2], 0);
  EXPECT_EQ(b[3], 0);
}

TEST(PathIcmpPacketTest, RecordedV4EchoReply) {
  absl::StatusOr<IcmpMessage> m =
      ParseIpv4Packet(ReadFixture("icmp/v4_echo_reply.bin"));
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->kind, IcmpKind::kEchoReply);
  EXPECT_EQ(m->identifier, kIdent);
  EXPECT_EQ(m->sequence, 1);
  EXPECT_EQ(m->payload_bytes, 56u);
  EXPECT_EQ(AddressToString(m->source), "10.91.4.2");
  EXPECT_TRUE(m->quoted_destination.empty());
}

TEST(PathIcmpPacketTest, RecordedV4TimeExceededQuotesOurRequest) {
  absl::StatusOr<IcmpMessage> m =
      ParseIpv4Packet(ReadFixture("icmp/v4_time_exceeded_ttl1.bin"));
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->kind, IcmpKind::kTimeExceeded);
  EXPECT_EQ(m->type, kIcmp4TimeExceeded);
  EXPECT_EQ(m->code, 0);
  EXPECT_EQ(AddressToString(m->source), "10.91.1.2");  // the first router
  EXPECT_EQ(m->quoted_destination, Packed("10.91.4.2"));
  EXPECT_EQ(m->identifier, kIdent);
  EXPECT_EQ(m->sequence, 2);
}

TEST(PathIcmpPacketTest, RecordedV4Unreachables) {
  absl::StatusOr<IcmpMessage> host =
      ParseIpv4Packet(ReadFixture("icmp/v4_host_unreachable.bin"));
  ASSERT_THAT(host, IsOk());
  EXPECT_EQ(host->kind, IcmpKind::kDestUnreachable);
  EXPECT_EQ(host->sequence, 3);
  EXPECT_EQ(AddressToString(host->source), "10.91.3.2");
  EXPECT_EQ(host->quoted_destination, Packed("10.91.6.1"));
  EXPECT_EQ(DescribeIcmp(4, host->type, host->code), "host unreachable");

  absl::StatusOr<IcmpMessage> prohibited =
      ParseIpv4Packet(ReadFixture("icmp/v4_admin_prohibited.bin"));
  ASSERT_THAT(prohibited, IsOk());
  EXPECT_EQ(prohibited->sequence, 4);
  EXPECT_EQ(prohibited->quoted_destination, Packed("10.91.7.1"));
  EXPECT_EQ(DescribeIcmp(4, prohibited->type, prohibited->code),
            "communication administratively prohibited");
}

TEST(PathIcmpPacketTest, RecordedV6EchoReply) {
  absl::StatusOr<IcmpMessage> m =
      ParseIcmp(6, ReadFixture("icmp/v6_echo_reply.bin"));
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->kind, IcmpKind::kEchoReply);
  EXPECT_EQ(m->identifier, kIdent);
  EXPECT_EQ(m->sequence, 5);
  EXPECT_TRUE(m->source.empty());  // raw IPv6 sockets give no IP header
}

TEST(PathIcmpPacketTest, RecordedV6TimeExceededQuotesOurRequest) {
  absl::StatusOr<IcmpMessage> m =
      ParseIcmp(6, ReadFixture("icmp/v6_time_exceeded_hop2.bin"));
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->kind, IcmpKind::kTimeExceeded);
  EXPECT_EQ(m->quoted_destination, Packed("fd91:4::2"));
  EXPECT_EQ(m->identifier, kIdent);
  EXPECT_EQ(m->sequence, 6);
}

TEST(PathIcmpPacketTest, RecordedV6Unreachable) {
  absl::StatusOr<IcmpMessage> m =
      ParseIcmp(6, ReadFixture("icmp/v6_unreachable.bin"));
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->kind, IcmpKind::kDestUnreachable);
  EXPECT_EQ(m->quoted_destination, Packed("fd91:6::1"));
  EXPECT_EQ(m->sequence, 7);
  EXPECT_EQ(DescribeIcmp(6, m->type, m->code), "no route to destination");
}

TEST(PathIcmpPacketTest, RecordedDatagramErrorQueueQuotes) {
  // Ping sockets quote our request with the kernel's identifier (its port).
  absl::StatusOr<IcmpMessage> v4 = ParseErrorQueueQuote(
      4, 11, 0, ReadFixture("icmp/dgram_v4_errqueue_type11_code0.bin"));
  ASSERT_THAT(v4, IsOk());
  EXPECT_EQ(v4->kind, IcmpKind::kTimeExceeded);
  EXPECT_EQ(v4->sequence, 8);
  EXPECT_NE(v4->identifier, kIdent);
  EXPECT_TRUE(v4->quoted_destination.empty());

  absl::StatusOr<IcmpMessage> v6 = ParseErrorQueueQuote(
      6, 3, 0, ReadFixture("icmp/dgram_v6_errqueue_type3_code0.bin"));
  ASSERT_THAT(v6, IsOk());
  EXPECT_EQ(v6->kind, IcmpKind::kTimeExceeded);
  EXPECT_EQ(v6->sequence, 8);
}

TEST(PathIcmpPacketTest, EveryTruncationOfEveryFixtureIsAnErrorNotACrash) {
  for (const char* name :
       {"icmp/v4_echo_reply.bin", "icmp/v4_time_exceeded_ttl1.bin",
        "icmp/v4_host_unreachable.bin", "icmp/v6_time_exceeded_hop2.bin",
        "icmp/v6_unreachable.bin"}) {
    std::string full = ReadFixture(name);
    bool v4 = std::string(name).find("v4_") != std::string::npos;
    // An error's quote needs the quoted IP header and 8 bytes of ICMP.
    size_t needed =
        v4 ? (full.size() == 84 ? 28 : 20 + 8 + 20 + 8) : 8 + 40 + 8;
    for (size_t n = 0; n < needed; ++n) {
      absl::string_view cut(full.data(), n);
      absl::StatusOr<IcmpMessage> m =
          v4 ? ParseIpv4Packet(cut) : ParseIcmp(6, cut);
      EXPECT_THAT(m, StatusIs(absl::StatusCode::kInvalidArgument))
          << name << " cut at " << n;
    }
  }
}

TEST(PathIcmpPacketTest, QuoteOfSomethingElseIsRejected) {
  std::string te = ReadFixture("icmp/v4_time_exceeded_ttl1.bin");
  std::string udp = te;
  udp[20 + 8 + 9] = 17;  // quoted protocol: UDP, someone's traceroute
  EXPECT_THAT(ParseIpv4Packet(udp),
              StatusIs(absl::StatusCode::kInvalidArgument, "not ICMP"));
  std::string reply_quoted = te;
  reply_quoted[20 + 8 + 20] = 0;  // quoted ICMP type: echo reply
  EXPECT_THAT(ParseIpv4Packet(reply_quoted),
              StatusIs(absl::StatusCode::kInvalidArgument, "echo request"));
  EXPECT_THAT(ParseIcmp(4, std::string("\x05\x00\x00\x00\x00\x00\x00\x00", 8)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(PathIcmpPacketTest, RandomBytesNeverCrashTheParsers) {
  // Mutations of recorded packets reach deep into the quote parsing.
  std::mt19937 rng(4);
  std::vector<std::string> seeds = {
      ReadFixture("icmp/v4_time_exceeded_ttl1.bin"),
      ReadFixture("icmp/v6_time_exceeded_hop2.bin"),
      ReadFixture("icmp/v4_echo_reply.bin")};
  int parsed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string b = seeds[i % seeds.size()];
    b.resize(rng() % (b.size() + 8));
    for (int k = 0; k < 3 && !b.empty(); ++k) {
      b[rng() % b.size()] = static_cast<char>(rng());
    }
    parsed += ParseIpv4Packet(b).ok();
    parsed += ParseIcmp(6, b).ok();
    parsed += ParseIcmp(4, b).ok();
    parsed += ParseErrorQueueQuote(4, 11, 0, b).ok();
  }
  EXPECT_GT(parsed, 0);  // the mutations leave some packets valid
}

TEST(PathIcmpPacketTest, AddressesRoundTrip) {
  EXPECT_EQ(AddressToString(Packed("192.0.2.7")), "192.0.2.7");
  EXPECT_EQ(AddressToString(Packed("2001:db8::1")), "2001:db8::1");
  EXPECT_THAT(ParseAddress("example"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(AddressToString("abc"), "");
}

}  // namespace
}  // namespace netvigil::agent
