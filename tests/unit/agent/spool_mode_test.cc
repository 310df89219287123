// The spool's files are its user's only: the database, its WAL and the
// sequence file are 0600 whatever the umask, and a spool an older agent left
// 0644 is tightened when opened (it holds process lists and file paths).
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "agent/spool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/agent/spool_testing.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::FakeClock;
using ::netvigil::testing::IsOk;
using spool_testing::MakeResult;
using spool_testing::TempDir;

mode_t Mode(const std::string& path) {
  struct stat st;
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class SpoolModeTest : public ::testing::Test {
 protected:
  // A permissive umask, as a shell or a unit without UMask= has.
  void SetUp() override { old_umask_ = umask(022); }
  void TearDown() override { umask(old_umask_); }
  mode_t old_umask_ = 0;
};

TEST_F(SpoolModeTest, ANewSpoolIsItsUsersOnly) {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("spool.db");
  {
    auto spool = Spool::Open(Spool::Options{path, 1 << 20}, clock);
    ASSERT_THAT(spool, IsOk());
    ASSERT_THAT((*spool)->Append(MakeResult(1)), IsOk());
    EXPECT_EQ(Mode(path), 0600u);
    EXPECT_EQ(Mode(path + "-wal"), 0600u);
    EXPECT_EQ(Mode(path + ".seq"), 0600u);
  }
}

TEST_F(SpoolModeTest, AnOlderAgentsOpenSpoolIsTightened) {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("spool.db");
  {
    auto spool = Spool::Open(Spool::Options{path, 1 << 20}, clock);
    ASSERT_THAT(spool, IsOk());
    ASSERT_THAT((*spool)->Append(MakeResult(1)), IsOk());
  }
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  ASSERT_EQ(chmod((path + ".seq").c_str(), 0644), 0);
  {
    auto spool = Spool::Open(Spool::Options{path, 1 << 20}, clock);
    ASSERT_THAT(spool, IsOk());
    ASSERT_THAT((*spool)->Append(MakeResult(2)), IsOk());
    EXPECT_EQ(Mode(path), 0600u);
    EXPECT_EQ(Mode(path + "-wal"), 0600u);
    EXPECT_EQ(Mode(path + ".seq"), 0600u);
  }
}

}  // namespace
}  // namespace netvigil::agent
