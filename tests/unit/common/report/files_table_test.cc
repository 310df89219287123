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
#include "tests/testing/hostile_text.h"

namespace netvigil::report {
namespace {

using ::netvigil::testing::ExpectOneLinePerRow;
using ::netvigil::testing::Hostile;

std::vector<Hostile> Table() { return ::netvigil::testing::HostileNames(); }

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
