// Crash safety: a child process appends (singly and in batches) and acks in a
// loop and is killed with SIGKILL at a random moment, 50 times on one spool.
// After each kill every seq that Append had returned (reported through a
// pipe) must be in the spool exactly once, unchanged, and numbers strictly
// increase across all the runs.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iostream>
#include <map>
#include <random>

#include "agent/spool.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/agent/spool_testing.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::FakeClock;
using ::netvigil::testing::IsOk;
using spool_testing::CheckCovered;
using spool_testing::MakeResult;
using spool_testing::ReadAll;
using spool_testing::TempDir;

// What the child reports; 24 bytes, so one write() is atomic on a pipe.
struct Report {
  uint64_t kind;  // kAppended or kAcked
  uint64_t seq;
  uint64_t n;  // MakeResult(n) was appended with this seq
};
constexpr uint64_t kAppended = 1;
constexpr uint64_t kAcked = 2;

[[noreturn]] void Child(const std::string& path, int fd, uint64_t round) {
  absl::StatusOr<std::unique_ptr<Spool>> spool =
      Spool::Open(Spool::Options{path}, RealClock());
  if (!spool.ok()) _exit(2);
  auto report = [&](uint64_t kind, uint64_t seq, uint64_t n) {
    Report r{kind, seq, n};
    if (write(fd, &r, sizeof(r)) != static_cast<ssize_t>(sizeof(r))) _exit(3);
  };
  uint64_t n = round * 1'000'000;
  for (uint64_t i = 1;; ++i) {
    if (i % 4 == 0) {
      std::vector<v1::Result> batch;
      std::vector<uint64_t> ns;
      for (uint64_t k = 0; k < 1 + i % 7; ++k) {
        ns.push_back(++n);
        batch.push_back(MakeResult(n));
      }
      absl::StatusOr<std::vector<uint64_t>> seqs =
          (*spool)->AppendBatch(std::move(batch));
      if (!seqs.ok()) _exit(4);
      for (size_t k = 0; k < seqs->size(); ++k)
        report(kAppended, (*seqs)[k], ns[k]);
    } else {
      absl::StatusOr<uint64_t> seq = (*spool)->Append(MakeResult(++n));
      if (!seq.ok()) _exit(4);
      report(kAppended, *seq, n);
    }
    if (i % 25 == 0) {
      uint64_t through = (*spool)->next_seq() - 20;
      if (!(*spool)->AckThrough(through).ok()) _exit(5);
      report(kAcked, through, 0);
    }
  }
}

TEST(SpoolCrashTest, KilledFiftyTimesKeepsEveryReturnedSeqOnce) {
  TempDir dir;
  const std::string path = dir.File("spool.db");
  std::random_device rd;
  const unsigned seed = rd();
  std::mt19937 rng(seed);
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::uniform_int_distribution<int> delay_us(0, 200'000);

  uint64_t highest = 0;  // over all rounds
  uint64_t total_reported = 0;
  for (uint64_t round = 1; round <= 50; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      Child(path, fds[1], round);
    }
    close(fds[1]);
    usleep(static_cast<useconds_t>(delay_us(rng)));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status))
        << "the child stopped by itself, exit code " << WEXITSTATUS(status);

    std::map<uint64_t, uint64_t> appended;  // seq -> n
    uint64_t acked = 0;
    Report r;
    ssize_t got;
    while ((got = read(fds[0], &r, sizeof(r))) ==
           static_cast<ssize_t>(sizeof(r))) {
      if (r.kind == kAppended) {
        EXPECT_GT(r.seq, highest) << "seqs must strictly increase";
        highest = r.seq;
        appended[r.seq] = r.n;
      } else {
        acked = r.seq;
      }
    }
    close(fds[0]);
    total_reported += appended.size();

    FakeClock clock;
    absl::StatusOr<std::unique_ptr<Spool>> spool =
        Spool::Open(Spool::Options{path}, clock);
    ASSERT_THAT(spool, IsOk());
    Spool& s = **spool;
    EXPECT_GE(s.acked_through(), acked);
    EXPECT_GT(s.next_seq(), highest);
    std::vector<v1::Result> all = ReadAll(s, s.acked_through());
    CheckCovered(all, s.acked_through(), s.next_seq());
    std::map<uint64_t, int> times_present;
    for (const v1::Result& res : all) {
      ++times_present[res.seq()];
      auto it = appended.find(res.seq());
      if (it != appended.end()) {
        EXPECT_EQ(res.sockets().SerializeAsString(),
                  MakeResult(it->second).sockets().SerializeAsString());
      }
    }
    for (const auto& [seq, n] : appended) {
      if (seq <= s.acked_through()) continue;
      EXPECT_EQ(times_present[seq], 1)
          << "seq " << seq << " returned by Append";
    }
    highest = std::max(highest, s.next_seq() - 1);
  }
  EXPECT_GT(total_reported, 200u) << "the children barely ran";
  std::cout << "results Append returned before the 50 kills: " << total_reported
            << "\n";
}

}  // namespace
}  // namespace netvigil::agent
