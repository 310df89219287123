// Fuzzes the path probe's ICMP parsers: the bytes are what one of its
// sockets hands over (tests/fixtures/icmp/*.bin are real ones: a raw IPv4
// packet, a raw ICMPv6 message or a datagram socket's error-queue quote),
// and every parser reads them, since a reply can be anything a router
// sends. Properties: no crash or sanitizer report; a parsed address prints
// and parses back to the same bytes; an echo request built from the input's
// numbers parses back to them with a checksum that verifies.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/probes/icmp_packet.h"
#include "tests/fuzz/fuzz_support.h"

namespace netvigil::fuzz {
namespace {

void CheckAddress(const std::string& packed) {
  if (packed.empty()) return;
  const std::string text = agent::AddressToString(packed);
  if (text.empty()) Fail("a parsed address does not print");
  absl::StatusOr<std::string> back = agent::ParseAddress(text);
  if (!back.ok() || *back != packed) Fail("address does not parse back");
}

void Check(const absl::StatusOr<agent::IcmpMessage>& m) {
  if (!m.ok()) return;
  if (m->ip_version != 4 && m->ip_version != 6) Fail("bad ip_version");
  CheckAddress(m->source);
  CheckAddress(m->quoted_destination);
  if (agent::DescribeIcmp(m->ip_version, m->type, m->code).empty()) {
    Fail("empty ICMP description");
  }
}

}  // namespace
}  // namespace netvigil::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace netvigil;
  using fuzz::Check;
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  Check(agent::ParseIpv4Packet(bytes));
  Check(agent::ParseIcmp(4, bytes));
  Check(agent::ParseIcmp(6, bytes));
  // The kernel's sock_extended_err names type and code of a queued error.
  for (auto [version, type, code] :
       {std::tuple{4, 11, 0}, {4, 3, 1}, {4, 3, 13}, {6, 3, 0}, {6, 1, 3}}) {
    Check(agent::ParseErrorQueueQuote(version, type, code, bytes));
  }
  (void)agent::ParseAddress(bytes);
  (void)agent::InternetChecksum(bytes);

  if (size >= 6) {
    const uint16_t id = static_cast<uint16_t>(data[0] << 8 | data[1]);
    const uint16_t seq = static_cast<uint16_t>(data[2] << 8 | data[3]);
    const size_t payload = data[4] % 200;
    const int version = data[5] & 1 ? 6 : 4;
    const std::string req = agent::BuildEchoRequest(version, id, seq, payload);
    absl::StatusOr<agent::IcmpMessage> m = agent::ParseIcmp(version, req);
    if (!m.ok() || m->kind != agent::IcmpKind::kEchoRequest ||
        m->identifier != id || m->sequence != seq ||
        m->payload_bytes != payload) {
      fuzz::Fail("a built echo request does not parse back");
    }
    if (version == 4 && agent::InternetChecksum(req) != 0) {
      fuzz::Fail("a built ICMPv4 echo request's checksum does not verify");
    }
  }
  return 0;
}
