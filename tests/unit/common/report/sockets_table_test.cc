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

namespace netvigil::report {
namespace {

using ::testing::HasSubstr;

struct Hostile {
  std::string bytes;
  std::string shown;
};

std::vector<Hostile> Table() {
  return {
      {"\x1b[2J\x1b]0;owned\x07", "\\x1B[2J\\x1B]0;owned\\x07"},
      {"x\nsshd               1     0   3r /root/.ssh/authorized_keys",
       "x\\nsshd               1     0   3r /root/.ssh/authorized_keys"},
      {"x\rsshd", "x\\rsshd"},
      {"\xFF\xFE", "\\xFF\\xFE"},
      {"\\xFF\\xFE", "\\\\xFF\\\\xFE"},
      {"inv\xE2\x80\xAEtxt.exe", "inv\\u{202E}txt.exe"},
      {"a\xE2\x80\xA8"
       "b\xC2\x85",
       "a\\u{2028}b\\u{0085}"},
      {"back\\slash", "back\\\\slash"},
      {std::string("n\0l", 3), "n\\x00l"},
      {std::string(5000, 'L') + "\t", std::string(5000, 'L') + "\\t"},
  };
}

void ExpectOneLinePerRow(const std::string& out, size_t rows) {
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), rows) << out;
  EXPECT_TRUE(IsValidUtf8(out));
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    EXPECT_FALSE(HasControls(line)) << line;
  }
}

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
