// The recorded fixtures (tests/fixtures) as the fuzz harnesses and the seed
// writer use them: raw bytes, and a netlink source replaying the recorded
// inet_diag dumps, whose socket inodes the recorded /proc tree holds.
// Thread-compatible.
#ifndef NETVIGIL_TESTS_FUZZ_RECORDED_H_
#define NETVIGIL_TESTS_FUZZ_RECORDED_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/testing/fake_netlink_source.h"

namespace netvigil::fuzz {

// The bytes of tests/fixtures/RELATIVE; aborts when missing or empty.
inline std::string ReadFixture(const std::string& relative) {
  const std::string path =
      absl::StrCat(NETVIGIL_SOURCE_DIR, "/tests/fixtures/", relative);
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  if (buf.str().empty()) Fail("cannot read " + path);
  return buf.str();
}

// Replays tests/fixtures/sock_diag/{tcp,udp}{4,6}.bin.
inline std::unique_ptr<testing::FakeNetlinkSource> RecordedNetlink() {
  auto netlink = std::make_unique<testing::FakeNetlinkSource>();
  netlink->Set(AF_INET, IPPROTO_TCP, ReadFixture("sock_diag/tcp4.bin"));
  netlink->Set(AF_INET6, IPPROTO_TCP, ReadFixture("sock_diag/tcp6.bin"));
  netlink->Set(AF_INET, IPPROTO_UDP, ReadFixture("sock_diag/udp4.bin"));
  netlink->Set(AF_INET6, IPPROTO_UDP, ReadFixture("sock_diag/udp6.bin"));
  return netlink;
}

}  // namespace netvigil::fuzz

#endif  // NETVIGIL_TESTS_FUZZ_RECORDED_H_
