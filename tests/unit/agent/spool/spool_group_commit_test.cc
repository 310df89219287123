// Group commit on a fake writer: callers that arrive while a commit runs
// share the next one, each gets its own numbers in order, a failed commit
// fails every caller in it and no other, and a group respects its size cap.
#include <atomic>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "agent/spool/group_commit.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::agent::spool {
namespace {

using ::netvigil::testing::IsOk;

v1::Result Tagged(uint64_t tag) {
  v1::Result r;
  r.set_seq(tag);  // the writer reads the tag back from here
  return r;
}

TEST(GroupCommitTest, WaitingCallersShareOneCommitAndGetTheirOwnNumbers) {
  absl::Mutex mu;
  std::vector<size_t> group_sizes;
  uint64_t next = 1;
  absl::Notification first_in, release;
  std::atomic<bool> first{true};
  std::map<uint64_t, uint64_t> tag_of_seq;
  GroupCommit gc(
      [&](std::vector<v1::Result> rs) -> absl::StatusOr<std::vector<uint64_t>> {
        if (first.exchange(false)) {
          first_in.Notify();
          release.WaitForNotification();  // hold the first commit open
        }
        absl::MutexLock l(&mu);
        group_sizes.push_back(rs.size());
        std::vector<uint64_t> seqs;
        for (const v1::Result& r : rs) {
          tag_of_seq[next] = r.seq();
          seqs.push_back(next++);
        }
        return seqs;
      },
      /*max_results=*/100);

  std::vector<std::thread> threads;
  std::vector<absl::StatusOr<std::vector<uint64_t>>> out(9);
  threads.emplace_back([&] { out[0] = gc.Commit({Tagged(1000)}); });
  first_in.WaitForNotification();
  for (int t = 1; t < 9; ++t) {
    threads.emplace_back([&, t] {
      out[t] = gc.Commit({Tagged(t * 10), Tagged(t * 10 + 1)});
    });
  }
  while (gc.waiting() < 8) absl::SleepFor(absl::Milliseconds(1));
  release.Notify();
  for (auto& th : threads) th.join();

  ASSERT_EQ(group_sizes.size(), 2u) << "the eight waiting callers must share";
  EXPECT_EQ(group_sizes[0], 1u);
  EXPECT_EQ(group_sizes[1], 16u);
  std::set<uint64_t> all;
  for (int t = 0; t < 9; ++t) {
    ASSERT_THAT(out[t], IsOk());
    const uint64_t want_tag = t == 0 ? 1000 : t * 10;
    ASSERT_EQ(out[t]->size(), t == 0 ? 1u : 2u);
    for (size_t i = 0; i < out[t]->size(); ++i) {
      EXPECT_EQ(tag_of_seq[(*out[t])[i]], want_tag + i) << "wrong numbers";
      all.insert((*out[t])[i]);
    }
  }
  EXPECT_EQ(all.size(), 17u);
}

TEST(GroupCommitTest, AFailedCommitFailsItsCallersOnly) {
  int calls = 0;
  GroupCommit gc(
      [&](std::vector<v1::Result> rs) -> absl::StatusOr<std::vector<uint64_t>> {
        if (++calls == 1) return absl::ResourceExhaustedError("disk full");
        return std::vector<uint64_t>(rs.size(), 7);
      },
      100);
  EXPECT_FALSE(gc.Commit({Tagged(1)}).ok());
  EXPECT_THAT(gc.Commit({Tagged(2)}), IsOk());
}

TEST(GroupCommitTest, AGroupStaysUnderTheCapButABigBatchGoesAlone) {
  std::vector<size_t> sizes;
  GroupCommit gc(
      [&](std::vector<v1::Result> rs) -> absl::StatusOr<std::vector<uint64_t>> {
        sizes.push_back(rs.size());
        return std::vector<uint64_t>(rs.size(), 1);
      },
      /*max_results=*/3);
  std::vector<v1::Result> big(5, Tagged(1));
  ASSERT_THAT(gc.Commit(big), IsOk());
  EXPECT_EQ(sizes, std::vector<size_t>{5});
}

}  // namespace
}  // namespace netvigil::agent::spool
