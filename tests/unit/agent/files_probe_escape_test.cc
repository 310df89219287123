// The file probe reads a process name the kernel escaped back to its bytes,
// and the lsof-like table (common/report/files_table.h) escapes it once.
#include <string>

#include "agent/probes/file_probe.h"
#include "common/report/files_table.h"
#include "common/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_proc_reader.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::agent {
namespace {

using ::netvigil::report::FormatFilesTable;
using ::netvigil::testing::FakeProcReader;
using ::netvigil::testing::IsOk;
using ::testing::HasSubstr;

// /proc/PID/status writes a newline in a name as `\n` and a backslash as
// `\\`; the probe reads the name back to its bytes, so the table escapes it
// once: a newline shows as `\n`, a backslash as `\\`.
TEST(FilesProbeEscapeTest, KernelEscapedNameIsReadBackToItsBytes) {
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

}  // namespace
}  // namespace netvigil::agent
