// The spool's filesystem fills up (a 2 MiB tmpfs with a ballast file): appends
// fail with a clear error and are counted, the spool stays usable, and once
// the ballast goes appends work again and a gap says exactly what was lost.
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>

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
using ::netvigil::testing::StatusIs;
using spool_testing::CheckCovered;
using spool_testing::MakeResult;
using spool_testing::ReadAll;
using spool_testing::TempDir;

// A small tmpfs mounted for the test's life; unmounted also when it fails.
class SmallTmpfs {
 public:
  explicit SmallTmpfs(const std::string& at) : at_(at) {
    mkdir(at_.c_str(), 0700);
    if (mount("tmpfs", at_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
              "size=2m,mode=0700") == 0) {
      mounted_ = true;
    } else {
      error_ = errno;
    }
  }
  ~SmallTmpfs() {
    if (mounted_) umount2(at_.c_str(), MNT_DETACH);
    rmdir(at_.c_str());
  }
  bool mounted() const { return mounted_; }
  int error() const { return error_; }

 private:
  std::string at_;
  bool mounted_ = false;
  int error_ = 0;
};

bool WriteBallast(const std::string& path, size_t bytes) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::string block(64 << 10, 'b');
  size_t done = 0;
  while (done < bytes) {
    ssize_t n = write(fd, block.data(), std::min(block.size(), bytes - done));
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  close(fd);
  return done == bytes;
}

TEST(SpoolDiskFullTest, FailsClearlyCountsAndRecoversWhenSpaceReturns) {
  TempDir dir;
  SmallTmpfs fs(dir.File("mnt"));
  if (!fs.mounted() && fs.error() == EPERM) {
    GTEST_SKIP() << "mounting a tmpfs needs CAP_SYS_ADMIN";
  }
  ASSERT_TRUE(fs.mounted()) << "mount tmpfs: " << strerror(fs.error());
  const std::string ballast = dir.File("mnt/ballast");
  ASSERT_TRUE(WriteBallast(ballast, 1 << 20));
  const std::string path = dir.File("mnt/spool.db");

  FakeClock clock;
  absl::StatusOr<std::unique_ptr<Spool>> opened =
      Spool::Open(Spool::Options{path}, clock);
  ASSERT_THAT(opened, IsOk());
  Spool& spool = **opened;

  std::vector<uint64_t> kept;
  absl::Status failure;
  for (int i = 1; i <= 2000; ++i) {
    absl::StatusOr<uint64_t> seq = spool.Append(MakeResult(i));
    if (!seq.ok()) {
      failure = seq.status();
      break;
    }
    kept.push_back(*seq);
    clock.Advance(absl::Seconds(1));
  }
  ASSERT_FALSE(failure.ok()) << "the 2 MiB filesystem never filled";
  ASSERT_GT(kept.size(), 20u);
  EXPECT_THAT(failure, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(std::string(failure.message()),
              ::testing::AnyOf(::testing::HasSubstr("disk is full"),
                               ::testing::HasSubstr("No space left")));

  // Still full: more singles and a batch fail, and are counted.
  const absl::Time first_lost = clock.Now();
  for (int i = 0; i < 5; ++i) {
    EXPECT_THAT(spool.Append(MakeResult(5000 + i)),
                StatusIs(absl::StatusCode::kResourceExhausted));
  }
  clock.Advance(absl::Seconds(30));
  const absl::Time last_lost = clock.Now();
  EXPECT_THAT(
      spool.AppendBatch({MakeResult(6001), MakeResult(6002), MakeResult(6003)}),
      StatusIs(absl::StatusCode::kResourceExhausted));
  // Concurrent callers sharing a failed group commit are each told and counted.
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        if (absl::IsResourceExhausted(
                spool.Append(MakeResult(6100 + t * 10 + i)).status())) {
          ++failed;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed.load(), 20);
  const uint64_t lost = 1 + 5 + 3 + 20;
  EXPECT_EQ(spool.dropped_total(), lost);

  // The spool stays up: what it kept can be read, and acks still work.
  EXPECT_EQ(spool.pending(), kept.size());
  std::vector<v1::Result> before = ReadAll(spool);
  ASSERT_EQ(before.size(), kept.size());
  EXPECT_EQ(before.back().seq(), kept.back());

  // Space returns.
  ASSERT_EQ(unlink(ballast.c_str()), 0);
  clock.Advance(absl::Seconds(5));
  absl::StatusOr<uint64_t> after = spool.Append(MakeResult(7000));
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(spool.dropped_total(), lost);

  std::vector<v1::Result> all = ReadAll(spool);
  std::map<uint64_t, v1::Gap> gaps = CheckCovered(all, 0, spool.next_seq());
  ASSERT_EQ(gaps.size(), 1u);
  const auto& [gap_seq, gap] = *gaps.begin();
  EXPECT_EQ(gap.reason(), "spool_write_failed");
  EXPECT_EQ(gap.count(), lost);
  EXPECT_EQ(gap.first_seq(), kept.back() + 1);
  EXPECT_EQ(gap.last_seq() - gap.first_seq() + 1, lost);
  EXPECT_GT(gap_seq, gap.last_seq());
  EXPECT_GT(*after, gap_seq);
  EXPECT_LE(absl::FromUnixSeconds(gap.first_produced_at().seconds()),
            first_lost);
  EXPECT_EQ(absl::FromUnixSeconds(gap.last_produced_at().seconds()), last_lost);
  EXPECT_EQ(all.size(), kept.size() + 2);

  // And all of it, counters included, is on disk.
  opened->reset();
  absl::StatusOr<std::unique_ptr<Spool>> reopened =
      Spool::Open(Spool::Options{path}, clock);
  ASSERT_THAT(reopened, IsOk());
  EXPECT_EQ((*reopened)->dropped_total(), lost);
  EXPECT_EQ((*reopened)->pending(), kept.size() + 2);
  EXPECT_EQ((*reopened)->next_seq(), *after + 1);
}

}  // namespace
}  // namespace netvigil::agent
