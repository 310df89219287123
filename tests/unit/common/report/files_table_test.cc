// The lsof-like table (files_table.h) with hostile names: one line per
// entry, no control byte, C1 or bidi control, each name as common/escape.h's
// Printable of what the agent sent.
#include "common/report/files_table.h"

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

TEST(FilesTableTest, FilesTable) {
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

}  // namespace
}  // namespace netvigil::report
