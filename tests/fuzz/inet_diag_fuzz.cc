// Fuzzes the agent's NETLINK_SOCK_DIAG reply parser: the bytes are an
// inet_diag dump as recvmsg() hands it over (tests/fixtures/sock_diag/*.bin
// are real ones), parsed as TCP and as UDP, whole and, as the socket probe
// does, chunk by chunk.
// Properties: no crash or sanitizer report; the snapshot survives the wire;
// both ways of parsing agree.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "agent/sys/netlink_inet_diag.h"
#include "netvigil/v1/probes.pb.h"
#include "tests/fuzz/fuzz_support.h"

namespace netvigil::fuzz {
namespace {

void ParseBothWays(absl::string_view dump, v1::Transport proto) {
  auto namer = [](uint32_t index) { return absl::StrCat("if", index); };
  v1::SocketSnapshot whole;
  const absl::Status whole_status =
      agent::ParseInetDiagDump(dump, proto, namer, &whole);
  CheckSurvivesWire(whole);

  // Chunk boundaries fall anywhere here, not only between messages: a
  // message cut in two must be an error, never a read past the chunk. The
  // chunk size (4..256 bytes) comes from the input's length, so that the
  // input stays a plain dump and the fixtures are seeds as they are.
  const size_t chunk = 4 * (1 + dump.size() % 64);
  v1::SocketSnapshot chunked;
  for (size_t off = 0; off < dump.size(); off += chunk) {
    absl::StatusOr<bool> done = agent::ParseInetDiagChunk(
        dump.substr(off, chunk), proto, namer, &chunked);
    if (!done.ok() || *done) break;
  }
  CheckSurvivesWire(chunked);
  if (whole_status.ok() && whole.sockets_size() < chunked.sockets_size()) {
    Fail("chunked parse found more sockets than the whole dump holds");
  }
}

}  // namespace
}  // namespace netvigil::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace netvigil;
  const absl::string_view dump(reinterpret_cast<const char*>(data), size);
  fuzz::ParseBothWays(dump, v1::TRANSPORT_TCP);
  fuzz::ParseBothWays(dump, v1::TRANSPORT_UDP);
  return 0;
}
