// Fuzzes the agent's /proc parsers: the bytes are a /proc tree in the text
// form of tests/fixtures/proc/*.txt (@file, @link, @error records; those
// fixtures are the seeds), read by the unit tests' FakeProcReader, which
// skips malformed records here. Every recorded file and link goes through the
// pure parsers, and the whole tree through the file probe and the socket
// probe (whose netlink dumps are the recorded tests/fixtures/sock_diag ones,
// whose inodes the proc fixture holds). Properties: no crash or sanitizer
// report; the snapshots the probes make survive the wire to the collector;
// the agent's UTF-8 check agrees with protobuf's.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/probes/file_probe.h"
#include "agent/probes/socket_probe.h"
#include "agent/sys/proc_parse.h"
#include "common/utf8.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/recorded.h"
#include "tests/testing/fake_proc_reader.h"

namespace netvigil::fuzz {
namespace {

void ParseEveryRecord(const testing::FakeProcReader& tree) {
  for (const auto& [path, text] : tree.files()) {
    (void)agent::ParseStatusUid(text);
    (void)agent::ParseFdinfoMode(text);
    for (std::string& mapped : agent::ParseMapsPaths(text)) {
      if (mapped.empty() || mapped[0] != '/') {
        Fail("a mapped path is not absolute");
      }
      agent::StripDeletedSuffix(&mapped);
      (void)agent::PathIsUnder(mapped, "/home");
    }
  }
  for (const auto& [path, target] : tree.links()) {
    // The agent's UTF-8 rule must be protobuf's, or escaping would miss
    // what the collector's parse refuses.
    v1::ProcessRef raw;
    raw.set_exe(target);
    v1::ProcessRef back;
    if (back.ParseFromString(raw.SerializeAsString()) != IsValidUtf8(target)) {
      Fail("IsValidUtf8 and protobuf disagree on a link target");
    }
    (void)agent::ParseSocketInode(target);
    std::string stripped = target;
    agent::StripDeletedSuffix(&stripped);
    if (!target.empty()) (void)agent::PathIsUnder(target, stripped);
    if (agent::PathIsUnder(stripped, target) &&
        !absl::StartsWith(stripped, target)) {
      Fail("PathIsUnder says yes to a path outside the folder");
    }
  }
}

}  // namespace
}  // namespace netvigil::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace netvigil;
  static testing::FakeNetlinkSource* netlink =
      fuzz::RecordedNetlink().release();
  testing::FakeProcReader tree(
      std::string(reinterpret_cast<const char*>(data), size),
      /*lenient=*/true);
  fuzz::ParseEveryRecord(tree);

  agent::FileProbe files(tree);
  absl::StatusOr<v1::FileSnapshot> file_snap =
      files.Collect({"/home", "/tmp/nvfix/", "/"});
  if (file_snap.ok()) fuzz::CheckSurvivesWire(*file_snap);

  agent::SocketProbe sockets(*netlink, tree);
  absl::StatusOr<v1::SocketSnapshot> socket_snap = sockets.Collect();
  if (!socket_snap.ok()) fuzz::Fail("the recorded dumps stopped parsing");
  fuzz::CheckSurvivesWire(*socket_snap);
  return 0;
}
