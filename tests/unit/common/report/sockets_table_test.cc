// The ss-like table (sockets_table.h) with hostile names: one line per
// socket, no control byte, C1 or bidi control, each name as common/escape.h's
// Printable of what the agent sent.
#include "common/report/sockets_table.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/escape.h"
#include "common/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/hostile_text.h"

namespace netvigil::report {
namespace {

using ::testing::HasSubstr;

using ::netvigil::testing::ExpectOneLinePerRow;
using ::netvigil::testing::Hostile;

std::vector<Hostile> Table() { return ::netvigil::testing::HostileNames(); }

TEST(SocketsTableTest, SocketsTable) {
  v1::SocketSnapshot snap;
  for (const Hostile& h : Table()) {
    v1::SocketEntry* e = snap.add_sockets();
    e->set_proto(v1::TRANSPORT_TCP);
    e->set_state("LISTEN");
    e->set_family(4);
    e->set_local_address("0.0.0.0");
    e->set_local_port(22);
    e->set_interface(ToValidUtf8(h.bytes.substr(0, 15)));
    v1::ProcessRef* p = e->add_processes();
    p->set_name(ToValidUtf8(h.bytes));
    p->set_pid(7);
  }
  const std::string out = FormatSocketsTable(snap);
  ExpectOneLinePerRow(out, Table().size() + 1);
  for (const Hostile& h : Table()) {
    EXPECT_THAT(out, HasSubstr("users:((\"" + h.shown + "\",pid=7))"));
  }
}

}  // namespace
}  // namespace netvigil::report
