// Tests of the pure /proc text parsers used by the file and socket probes.
#include <atomic>
#include <thread>
#include <vector>

#include "agent/sys/proc_parallel.h"
#include "agent/sys/proc_parse.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_proc_reader.h"
#include "tests/testing/fixtures.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::FakeProcReader;
using ::netvigil::testing::IsOk;
using ::netvigil::testing::ReadFixture;
using ::netvigil::testing::StatusIs;
using ::testing::ElementsAre;

TEST(ProcParseTest, StatusUidIsTheRealUid) {
  EXPECT_EQ(*ParseStatusUid("Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t1\n"), 1000u);
  EXPECT_THAT(ParseStatusUid("Name:\tx\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseStatusUid("Uid:\tabc\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ProcParseTest, FdinfoFlagsGiveLsofModes) {
  EXPECT_EQ(*ParseFdinfoMode("pos:\t0\nflags:\t0100000\n"), "r");
  EXPECT_EQ(*ParseFdinfoMode("pos:\t0\nflags:\t0102001\n"), "w");
  EXPECT_EQ(*ParseFdinfoMode("pos:\t0\nflags:\t02\n"), "u");
  EXPECT_THAT(ParseFdinfoMode("pos:\t0\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseFdinfoMode("flags:\t0x9\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ProcParseTest, FdLinkPermissionsGiveLsofModes) {
  // procfs gives an fd link S_IRUSR|S_IXUSR for FMODE_READ and
  // S_IWUSR|S_IXUSR for FMODE_WRITE.
  EXPECT_EQ(ModeFromFdLinkPermissions(0120500), 'r');
  EXPECT_EQ(ModeFromFdLinkPermissions(0120300), 'w');
  EXPECT_EQ(ModeFromFdLinkPermissions(0120700), 'u');
  EXPECT_EQ(ModeFromFdLinkPermissions(0120000), '\0');
}

TEST(ProcParseTest, MapsGiveDistinctFilePathsOnly) {
  FakeProcReader proc(ReadFixture("proc/sockets_and_files.txt"));
  absl::StatusOr<std::string> maps = proc.ReadFile(14295, "maps");
  ASSERT_THAT(maps, IsOk());
  EXPECT_THAT(ParseMapsPaths(*maps),
              ElementsAre("/usr/lib/x86_64-linux-gnu/libc.so.6",
                          "/tmp/nvfix/mapped.bin"));
  EXPECT_THAT(ParseMapsPaths("7f00-7f01 r--s 0 fe:00 42   /a b (deleted)\n"
                             "garbage\n\n7f01-7f02 rw-p 0 00:00 0\n"),
              ElementsAre("/a b (deleted)"));
}

TEST(ProcParseTest, DeletedSuffixAndSocketInodes) {
  std::string p = "/home/a/x (deleted)";
  EXPECT_TRUE(StripDeletedSuffix(&p));
  EXPECT_EQ(p, "/home/a/x");
  EXPECT_FALSE(StripDeletedSuffix(&p));
  EXPECT_EQ(ParseSocketInode("socket:[53958]"), 53958u);
  EXPECT_EQ(ParseSocketInode("pipe:[53958]"), std::nullopt);
  EXPECT_EQ(ParseSocketInode("socket:[x]"), std::nullopt);
}

TEST(ProcParseTest, PathIsUnderRespectsComponentBoundaries) {
  EXPECT_TRUE(PathIsUnder("/home/a", "/home"));
  EXPECT_TRUE(PathIsUnder("/home", "/home"));
  EXPECT_FALSE(PathIsUnder("/homer/a", "/home"));
  EXPECT_TRUE(PathIsUnder("/etc/x", "/"));
}

TEST(ProcParseTest, ProcessRefFromRecordedTree) {
  FakeProcReader proc(ReadFixture("proc/vanishing.txt"));
  absl::StatusOr<v1::ProcessRef> ref = ReadProcessRef(proc, 100);
  ASSERT_THAT(ref, IsOk());
  EXPECT_EQ(ref->pid(), 100u);
  EXPECT_EQ(ref->name(), "editor");
  EXPECT_EQ(ref->uid(), 1000u);
  EXPECT_EQ(ref->ppid(), 4242u);
  EXPECT_EQ(ref->exe(), "/home/alice/bin/editor");
  EXPECT_TRUE(ref->exe_deleted());
  EXPECT_THAT(ReadProcessRef(proc, 200), StatusIs(absl::StatusCode::kNotFound));
}

TEST(ProcParallelTest, EveryItemOnceOnValidWorkers) {
  for (int threads : {1, 2, 4}) {
    std::vector<std::atomic<int>> calls(1000);
    std::atomic<bool> bad_worker{false};
    ParallelFor(calls.size(), threads, [&](int worker, size_t i) {
      if (worker < 0 || worker >= threads) bad_worker = true;
      ++calls[i];
    });
    EXPECT_FALSE(bad_worker);
    for (size_t i = 0; i < calls.size(); ++i) {
      ASSERT_EQ(calls[i].load(), 1) << "item " << i << " threads " << threads;
    }
  }
  int none = 0;
  ParallelFor(0, 2, [&](int, size_t) { ++none; });
  EXPECT_EQ(none, 0);
  EXPECT_GE(ProcPassThreads(), 1);
}

TEST(ProcParallelTest, BesideRunsOnceOnTheCallerBesideEveryItem) {
  for (int threads : {1, 2, 4}) {
    for (size_t count : {0, 1, 1000}) {
      std::vector<std::atomic<int>> calls(count);
      int beside = 0;
      std::thread::id beside_thread;
      ParallelForBeside(
          count, threads,
          [&] {
            ++beside;
            beside_thread = std::this_thread::get_id();
          },
          [&](int, size_t i) { ++calls[i]; });
      EXPECT_EQ(beside, 1);
      EXPECT_EQ(beside_thread, std::this_thread::get_id());
      for (size_t i = 0; i < count; ++i) ASSERT_EQ(calls[i].load(), 1);
    }
  }
}

}  // namespace
}  // namespace netvigil::agent
