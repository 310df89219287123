// The sequence ceiling's side file on the fault-injecting file system: it
// moves by steps, it survives a crash once written, and a failure at any of
// its steps (open, write, fsync, rename, folder fsync) leaves the old value
// in place and says which step failed.
#include <string>

#include "agent/spool/seq_ceiling.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fault_file_system.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::agent::spool {
namespace {

using ::netvigil::testing::FaultFileSystem;
using ::netvigil::testing::IsOk;
using ::testing::AllOf;
using ::testing::HasSubstr;
using Op = FaultFileSystem::Op;

constexpr char kFile[] = "/d/spool.db.seq";

TEST(SeqCeilingTest, MovesByStepsAndSurvivesACrash) {
  FaultFileSystem fs;
  SeqCeiling c(fs, kFile);
  EXPECT_EQ(c.Load(), 0u);
  ASSERT_THAT(c.Ensure(1), IsOk());
  EXPECT_EQ(c.value(), 1 + SeqCeiling::kStep);
  EXPECT_EQ(fs.Contents(kFile), "1001\n");
  fs.ResetCounts();
  ASSERT_THAT(c.Ensure(1001), IsOk());  // at the ceiling: nothing written
  EXPECT_EQ(fs.Count(Op::kWrite), 0);
  ASSERT_THAT(c.Ensure(1002), IsOk());
  EXPECT_EQ(c.value(), 2002u);
  fs.Crash();
  SeqCeiling again(fs, kFile);
  EXPECT_EQ(again.Load(), 2002u);
  EXPECT_FALSE(fs.Has(std::string(kFile) + ".tmp"));
}

TEST(SeqCeilingTest, UnreadableFileLoadsAsZero) {
  FaultFileSystem fs;
  fs.Put(kFile, "12x\n");
  SeqCeiling c(fs, kFile);
  EXPECT_EQ(c.Load(), 0u);
  fs.Put(kFile, "");
  EXPECT_EQ(c.Load(), 0u);
}

// Each step of the replacement fails in turn: the error names the step, the
// value in memory and in the file stays the old one, no .tmp is left, and
// (but for the folder fsync, which comes after the rename) a crash brings
// back the old value too. Then a retry moves the ceiling on.
TEST(SeqCeilingTest, AFailedStepKeepsTheOldValue) {
  struct Case {
    Op op;
    const char* says;
  };
  for (const Case& k :
       {Case{Op::kOpen, "seq file open"}, Case{Op::kWrite, "seq file write"},
        Case{Op::kSync, "seq file fsync"}, Case{Op::kRename, "seq file rename"},
        Case{Op::kSyncDir, "seq file folder fsync"}}) {
    SCOPED_TRACE(k.says);
    FaultFileSystem fs;
    SeqCeiling c(fs, kFile);
    ASSERT_THAT(c.Ensure(1), IsOk());
    fs.Arm(k.op, 0, absl::DataLossError("Input/output error"));
    absl::Status st = c.Ensure(5000);
    ASSERT_FALSE(st.ok());
    EXPECT_THAT(std::string(st.message()),
                AllOf(HasSubstr(k.says), HasSubstr("Input/output error")));
    EXPECT_EQ(c.value(), 1001u) << "the value moved on a failed step";
    if (k.op != Op::kSyncDir) {
      EXPECT_EQ(fs.Contents(kFile), "1001\n");
      EXPECT_FALSE(fs.Has(std::string(kFile) + ".tmp"));
    }
    fs.Crash();
    SeqCeiling after_crash(fs, kFile);
    EXPECT_EQ(after_crash.Load(), 1001u) << "never a value not made durable";
    ASSERT_THAT(c.Ensure(5000), IsOk());
    EXPECT_EQ(c.value(), 6000u);
    EXPECT_EQ(fs.Contents(kFile), "6000\n");
  }
}

}  // namespace
}  // namespace netvigil::agent::spool
