// The probes' table engine (AppendRow) with hostile names: the lsof-like
// and ss-like tables `netvigil-agent probe files|sockets` and `netvigil
// probe HOST` print give one line per entry, no control byte, C1 or bidi
// control, and each name as common/escape.h's Printable of what the agent
// sent.
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "agent/probes/file_probe.h"
#include "agent/probes/socket_probe.h"
#include "agent/probes/table_text.h"
#include "common/escape.h"
#include "common/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_proc_reader.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::FakeProcReader;
using ::netvigil::testing::IsOk;
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

TEST(ProbeTableEscapeTest, FilesTable) {
  v1::FileSnapshot snap;
  for (const Hostile& h : Table()) {
    v1::FileEntry* e = snap.add_entries();
    // As the probe fills them: ToValidUtf8 of the bytes.
    e->mutable_process()->set_name(ToValidUtf8(h.bytes.substr(0, 15)));
    e->mutable_process()->set_pid(4242);
    e->set_path("/home/a/" + ToValidUtf8(h.bytes));
    e->set_kind(v1::FILE_ACCESS_FD);
    e->set_fd(3);
    e->set_mode("r");
  }
  const std::string out = FormatFilesTable(snap);
  ExpectOneLinePerRow(out, Table().size() + 1);
  std::vector<std::string> lines = absl::StrSplit(out, '\n');
  for (size_t i = 0; i < Table().size(); ++i) {
    EXPECT_THAT(lines[i + 1],
                ::testing::EndsWith("/home/a/" + Table()[i].shown));
    EXPECT_THAT(lines[i + 1], ::testing::StartsWith(Printable(ToValidUtf8(
                                  Table()[i].bytes.substr(0, 15)))));
  }
  EXPECT_NE(lines[4], lines[5]);  // bytes FF FE vs the text "\xFF\xFE"
}

TEST(ProbeTableEscapeTest, SocketsTable) {
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

// /proc/PID/status writes a newline in a name as `\n` and a backslash as
// `\\`; the probe reads the name back to its bytes, so the table escapes it
// once: a newline shows as `\n`, a backslash as `\\`.
TEST(ProbeTableEscapeTest, KernelEscapedNameIsReadBackToItsBytes) {
  FakeProcReader proc(
      "@file 7/status\nName:\tx\\nsshd\\\\y\nUid:\t0\t0\t0\t0\n"
      "@link 7/exe /usr/bin/x\n"
      "@link 7/cwd /\n"
      "@link 7/fd/3 /home/a/f\n"
      "@file 7/fdinfo/3\nflags:\t0100000\n");
  absl::StatusOr<v1::FileSnapshot> snap = FileProbe(proc).Collect({"/home"});
  ASSERT_THAT(snap, IsOk());
  ASSERT_GT(snap->entries_size(), 0);
  EXPECT_EQ(snap->entries(0).process().name(), ToValidUtf8("x\nsshd\\y"));
  EXPECT_THAT(FormatFilesTable(*snap), HasSubstr("\nx\\nsshd\\\\y "));
}

TEST(ProbeTableEscapeTest, PlainCellsAreCopiedAsTheyAre) {
  std::string out;
  static constexpr TableColumn kColumns[] = {{6}, {4, true}, {0}};
  AppendRow(&out, kColumns, {"zoë", "12", "/home/zoë/€"});
  EXPECT_EQ(out, "zoë     12 /home/zoë/€");
}

}  // namespace
}  // namespace netvigil::agent
