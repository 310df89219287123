// The machine's spool::FileSystem on a temp folder: reads, writes, sizes,
// renames, listing, the owner-only modes, and the exclusive lock that keeps
// a second agent off an open spool (in this process as in another).
#include <sys/stat.h>

#include <algorithm>
#include <string>

#include "agent/spool.h"
#include "agent/spool/posix_file_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/agent/spool_testing.h"

namespace netvigil::agent::spool {
namespace {

using ::netvigil::testing::FakeClock;
using ::netvigil::testing::IsOk;
using ::netvigil::testing::StatusIs;
using spool_testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(PosixFileSystemTest, FilesReadWriteRenameAndList) {
  TempDir dir;
  FileSystem& fs = PosixFileSystem();
  const std::string a = dir.File("a");
  EXPECT_THAT(fs.Open(a, FileSystem::Mode::kRead),
              StatusIs(absl::StatusCode::kNotFound));
  {
    auto f = fs.Open(a, FileSystem::Mode::kCreate);
    ASSERT_THAT(f, IsOk());
    ASSERT_THAT((*f)->Write(3, "xyz"), IsOk());
    EXPECT_EQ((*f)->Size().value_or(0), 6u);
    char buf[16];
    auto n = (*f)->Read(2, buf, sizeof(buf));
    ASSERT_THAT(n, IsOk());
    EXPECT_EQ(std::string(buf, *n), std::string("\0xyz", 4));
    ASSERT_THAT((*f)->Sync(), IsOk());
    ASSERT_THAT((*f)->Truncate(4), IsOk());
    EXPECT_EQ((*f)->Size().value_or(0), 4u);
  }
  struct stat st;
  ASSERT_EQ(stat(a.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_THAT(fs.Rename(a, dir.File("b")), IsOk());
  ASSERT_THAT(fs.SyncDir(dir.path()), IsOk());
  EXPECT_EQ(fs.Exists(a).value_or(true), false);
  auto names = fs.List(dir.path());
  ASSERT_THAT(names, IsOk());
  EXPECT_THAT(*names, ElementsAre("b"));
  absl::Status gone = fs.Rename(a, dir.File("c"));
  EXPECT_THAT(gone, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(std::string(gone.message()), HasSubstr(a));
  EXPECT_THAT(fs.Unlink(dir.File("b")), IsOk());
}

TEST(PosixFileSystemTest, LockIsExclusiveUntilReleased) {
  TempDir dir;
  FileSystem& fs = PosixFileSystem();
  const std::string p = dir.File("spool.db");
  ASSERT_THAT(fs.Open(p, FileSystem::Mode::kCreate), IsOk());
  auto first = fs.Lock(p);
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(fs.Lock(p), StatusIs(absl::StatusCode::kUnavailable));
  first->reset();
  EXPECT_THAT(fs.Lock(p), IsOk());
}

TEST(PosixFileSystemTest, ASecondSpoolOnTheSamePathIsRefused) {
  TempDir dir;
  FakeClock clock;
  const std::string p = dir.File("spool.db");
  auto first = Spool::Open(Spool::Options{p}, clock);
  ASSERT_THAT(first, IsOk());
  auto second = Spool::Open(Spool::Options{p}, clock);
  ASSERT_THAT(second, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("another agent"));
  // The first one is unharmed.
  EXPECT_THAT((*first)->Append(spool_testing::MakeResult(1)), IsOk());
  first->reset();
  EXPECT_THAT(Spool::Open(Spool::Options{p}, clock), IsOk());
}

}  // namespace
}  // namespace netvigil::agent::spool
