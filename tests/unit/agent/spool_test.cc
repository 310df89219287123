// The spool's numbering, persistence, acknowledgement and size cap.
#include "agent/spool.h"

#include <unistd.h>

#include <thread>

#include "absl/time/time.h"
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

std::unique_ptr<Spool> MustOpen(const std::string& path, Clock& clock,
                                uint64_t max_bytes = 256ull << 20) {
  absl::StatusOr<std::unique_ptr<Spool>> spool =
      Spool::Open(Spool::Options{path, max_bytes}, clock);
  EXPECT_THAT(spool, IsOk());
  return spool.ok() ? std::move(*spool) : nullptr;
}

// A spool holding MakeResult(1..n).
std::unique_ptr<Spool> OpenFilled(const std::string& path, Clock& clock, int n,
                                  uint64_t max_bytes = 256ull << 20) {
  std::unique_ptr<Spool> spool = MustOpen(path, clock, max_bytes);
  for (int i = 1; spool != nullptr && i <= n; ++i) {
    EXPECT_THAT(spool->Append(MakeResult(i)), IsOk());
  }
  return spool;
}

// The number Append gave, or 0 (and a failure) when it failed.
uint64_t AppendOk(Spool& spool, v1::Result result) {
  absl::StatusOr<uint64_t> seq = spool.Append(std::move(result));
  EXPECT_THAT(seq, IsOk());
  return seq.ok() ? *seq : 0;
}

TEST(SpoolTest, ResultsOfAboutTwoKilobytes) {
  size_t size = MakeResult(12345).ByteSizeLong();
  EXPECT_GT(size, 1700u);
  EXPECT_LT(size, 2400u);
}

TEST(SpoolTest, NumbersFromOneInOrderAndStampsProducedAt) {
  TempDir dir;
  FakeClock clock;
  auto spool = MustOpen(dir.File("spool.db"), clock);
  ASSERT_NE(spool, nullptr);
  EXPECT_EQ(spool->next_seq(), 1u);
  for (uint64_t i = 1; i <= 5; ++i) {
    absl::StatusOr<uint64_t> seq = spool->Append(MakeResult(i));
    ASSERT_THAT(seq, IsOk());
    EXPECT_EQ(*seq, i);
    clock.Advance(absl::Seconds(1));
  }
  std::vector<v1::Result> batch = {MakeResult(6), MakeResult(7), MakeResult(8)};
  batch[1].mutable_produced_at()->set_seconds(42);
  absl::StatusOr<std::vector<uint64_t>> seqs = spool->AppendBatch(batch);
  ASSERT_THAT(seqs, IsOk());
  EXPECT_THAT(*seqs, ::testing::ElementsAre(6, 7, 8));
  EXPECT_EQ(spool->next_seq(), 9u);
  EXPECT_EQ(spool->pending(), 8u);

  std::vector<v1::Result> all = ReadAll(*spool);
  ASSERT_EQ(all.size(), 8u);
  for (uint64_t i = 1; i <= 8; ++i) {
    const v1::Result& r = all[i - 1];
    EXPECT_EQ(r.seq(), i);
    v1::Result want = MakeResult(i);
    EXPECT_EQ(r.sockets().SerializeAsString(),
              want.sockets().SerializeAsString());
  }
  EXPECT_EQ(all[0].produced_at().seconds(), 1'700'000'000);
  EXPECT_EQ(all[4].produced_at().seconds(), 1'700'000'004);
  EXPECT_EQ(all[6].produced_at().seconds(), 42);  // the caller's time is kept
}

TEST(SpoolTest, PersistsAcrossReopen) {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("spool.db");
  {
    auto spool = OpenFilled(path, clock, 20);
    ASSERT_NE(spool, nullptr);
  }
  auto spool = MustOpen(path, clock);
  ASSERT_NE(spool, nullptr);
  EXPECT_EQ(spool->next_seq(), 21u);
  EXPECT_EQ(spool->pending(), 20u);
  std::vector<v1::Result> all = ReadAll(*spool);
  ASSERT_EQ(all.size(), 20u);
  EXPECT_EQ(all[19].sockets().SerializeAsString(),
            MakeResult(20).sockets().SerializeAsString());
  EXPECT_EQ(AppendOk(*spool, MakeResult(21)), 21u);
}

TEST(SpoolTest, AckRemovesThroughTheGivenSeq) {
  TempDir dir;
  FakeClock clock;
  auto spool = OpenFilled(dir.File("spool.db"), clock, 10);
  ASSERT_NE(spool, nullptr);
  uint64_t bytes_before = spool->pending_bytes();
  ASSERT_THAT(spool->AckThrough(4), IsOk());
  EXPECT_EQ(spool->acked_through(), 4u);
  EXPECT_EQ(spool->pending(), 6u);
  EXPECT_LT(spool->pending_bytes(), bytes_before);
  std::vector<v1::Result> all = ReadAll(*spool);
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all.front().seq(), 5u);
  // An older ack changes nothing; an ack of a number not given out is refused.
  EXPECT_THAT(spool->AckThrough(2), IsOk());
  EXPECT_EQ(spool->acked_through(), 4u);
  EXPECT_THAT(spool->AckThrough(11),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(spool->pending(), 6u);
}

TEST(SpoolTest, NextSeqNeverReusedAfterAckAllAndReopen) {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("spool.db");
  {
    auto spool = OpenFilled(path, clock, 10);
    ASSERT_NE(spool, nullptr);
    ASSERT_THAT(spool->AckThrough(10), IsOk());
    EXPECT_EQ(spool->pending(), 0u);
  }
  // The database alone must remember: remove the side file.
  ASSERT_EQ(unlink((path + ".seq").c_str()), 0);
  {
    auto spool = MustOpen(path, clock);
    ASSERT_NE(spool, nullptr);
    EXPECT_EQ(spool->next_seq(), 11u);
    EXPECT_EQ(spool->acked_through(), 10u);
    EXPECT_EQ(AppendOk(*spool, MakeResult(11)), 11u);
    ASSERT_THAT(spool->AckThrough(11), IsOk());
  }
  {
    auto spool = MustOpen(path, clock);
    ASSERT_NE(spool, nullptr);
    EXPECT_EQ(AppendOk(*spool, MakeResult(12)), 12u);
  }
}

TEST(SpoolTest, DeletedSpoolRestartsAboveEveryNumberUsed) {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("spool.db");
  {
    auto spool = OpenFilled(path, clock, 10);
    ASSERT_NE(spool, nullptr);
  }
  ASSERT_EQ(unlink(path.c_str()), 0);
  spool_testing::LogCapture log;
  auto spool = MustOpen(path, clock);
  ASSERT_NE(spool, nullptr);
  EXPECT_GT(spool->next_seq(), 11u);
  EXPECT_THAT(log.text(), ::testing::HasSubstr("event=spool_missing"));
  std::vector<v1::Result> all = ReadAll(*spool);
  ASSERT_EQ(all.size(), 1u);
  ASSERT_TRUE(all[0].has_gap());
  EXPECT_EQ(all[0].gap().reason(), "spool_missing");
  EXPECT_EQ(all[0].gap().first_seq(), 1u);
  EXPECT_EQ(all[0].gap().last_seq(), all[0].seq() - 1);
  absl::StatusOr<uint64_t> seq = spool->Append(MakeResult(11));
  ASSERT_THAT(seq, IsOk());
  EXPECT_GT(*seq, 10u);
}

TEST(SpoolTest, ReadAfterHonoursCountAndBytesButAlwaysGivesOne) {
  TempDir dir;
  FakeClock clock;
  auto spool = OpenFilled(dir.File("spool.db"), clock, 10);
  ASSERT_NE(spool, nullptr);
  auto page = spool->ReadAfter(3, 4, 1 << 20);
  ASSERT_THAT(page, IsOk());
  ASSERT_EQ(page->size(), 4u);
  EXPECT_EQ((*page)[0].seq(), 4u);
  EXPECT_EQ((*page)[3].seq(), 7u);
  size_t one = MakeResult(1).ByteSizeLong();
  page = spool->ReadAfter(0, 100, one * 2 + 100);
  ASSERT_THAT(page, IsOk());
  EXPECT_EQ(page->size(), 2u);
  page = spool->ReadAfter(0, 100, 1);
  ASSERT_THAT(page, IsOk());
  EXPECT_EQ(page->size(), 1u);
  page = spool->ReadAfter(10, 100, 1 << 20);
  ASSERT_THAT(page, IsOk());
  EXPECT_TRUE(page->empty());
}

TEST(SpoolTest, ResultLargerThanTheCapIsRefusedAndNotCounted) {
  TempDir dir;
  FakeClock clock;
  auto spool = MustOpen(dir.File("spool.db"), clock, 16 << 10);
  ASSERT_NE(spool, nullptr);
  EXPECT_THAT(
      spool->Append(MakeResult(1, 200)),
      StatusIs(absl::StatusCode::kInvalidArgument, "exceeds the spool cap"));
  EXPECT_EQ(spool->dropped_total(), 0u);
  EXPECT_EQ(spool->next_seq(), 1u);
}

TEST(SpoolTest, OverTheCapDropsOldestAndRecordsTheExactCount) {
  TempDir dir;
  FakeClock clock;
  const uint64_t cap = 64 << 10;
  auto spool = MustOpen(dir.File("spool.db"), clock, cap);
  ASSERT_NE(spool, nullptr);
  std::map<uint64_t, absl::Time> produced;
  for (int i = 1; i <= 200; ++i) {
    produced[static_cast<uint64_t>(i)] = clock.Now();
    absl::StatusOr<uint64_t> seq = spool->Append(MakeResult(i));
    ASSERT_THAT(seq, IsOk());
    clock.Advance(absl::Seconds(10));
    EXPECT_LE(spool->pending_bytes(), cap);
  }
  std::vector<v1::Result> all = ReadAll(*spool);
  std::map<uint64_t, v1::Gap> gaps = CheckCovered(all, 0, spool->next_seq());
  ASSERT_EQ(gaps.size(), 1u) << "a gap not yet read grows instead of adding";
  const auto& [gap_seq, gap] = *gaps.begin();
  EXPECT_EQ(gap.reason(), "spool_over_cap");
  EXPECT_EQ(gap.first_seq(), 1u);

  // Every appended result is either still here, unchanged, or counted.
  std::set<uint64_t> present;
  for (const v1::Result& r : all) {
    if (r.has_gap()) continue;
    present.insert(r.seq());
    // Seqs after the gap's own are shifted by one: map back to the input.
    uint64_t n = r.seq() < gap_seq ? r.seq() : r.seq() - 1;
    EXPECT_EQ(r.sockets().SerializeAsString(),
              MakeResult(n).sockets().SerializeAsString());
  }
  EXPECT_EQ(present.size() + gap.count(), 200u);
  EXPECT_EQ(spool->dropped_total(), gap.count());
  EXPECT_GT(gap.count(), 100u);
  // The dropped ones are the oldest: everything present comes after the range.
  EXPECT_GT(*present.begin(), gap.last_seq());
  uint64_t in_range = 0;
  for (uint64_t s = gap.first_seq(); s <= gap.last_seq(); ++s) {
    if (s != gap_seq) ++in_range;
  }
  EXPECT_EQ(in_range, gap.count());
  EXPECT_EQ(absl::FromUnixSeconds(gap.first_produced_at().seconds()),
            produced[1]);
  uint64_t last_input =
      gap.last_seq() < gap_seq ? gap.last_seq() : gap.last_seq() - 1;
  EXPECT_EQ(absl::FromUnixSeconds(gap.last_produced_at().seconds()),
            produced[last_input]);

  // The counts survive a restart.
  uint64_t dropped = spool->dropped_total();
  spool.reset();
  spool = MustOpen(dir.File("spool.db"), clock, cap);
  ASSERT_NE(spool, nullptr);
  EXPECT_EQ(spool->dropped_total(), dropped);
}

TEST(SpoolTest, AGapAlreadyReadIsNeverChanged) {
  TempDir dir;
  FakeClock clock;
  const uint64_t cap = 32 << 10;
  auto spool = OpenFilled(dir.File("spool.db"), clock, 30, cap);
  ASSERT_NE(spool, nullptr);
  std::vector<v1::Result> first_read = ReadAll(*spool);
  std::vector<v1::Result> gaps_read;
  for (const v1::Result& r : first_read) {
    if (r.has_gap()) gaps_read.push_back(r);
  }
  ASSERT_EQ(gaps_read.size(), 1u);
  for (int i = 31; i <= 60; ++i)
    ASSERT_THAT(spool->Append(MakeResult(i)), IsOk());
  std::vector<v1::Result> all = ReadAll(*spool);
  std::map<uint64_t, v1::Gap> gaps = CheckCovered(all, 0, spool->next_seq());
  ASSERT_EQ(gaps.size(), 2u);
  EXPECT_EQ(gaps[gaps_read[0].seq()].SerializeAsString(),
            gaps_read[0].gap().SerializeAsString());
  uint64_t counted = 0;
  for (const auto& [seq, gap] : gaps) counted += gap.count();
  EXPECT_EQ(counted, spool->dropped_total());
  EXPECT_EQ(all.size() - gaps.size() + counted, 60u);
}

TEST(SpoolTest, ConcurrentAppendsGetDistinctNumbers) {
  TempDir dir;
  FakeClock clock;
  auto spool = MustOpen(dir.File("spool.db"), clock);
  ASSERT_NE(spool, nullptr);
  std::vector<std::thread> threads;
  std::vector<std::vector<uint64_t>> got(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        absl::StatusOr<uint64_t> seq = spool->Append(MakeResult(t * 100 + i));
        if (seq.ok()) got[t].push_back(*seq);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<uint64_t> all;
  for (const auto& v : got) {
    EXPECT_EQ(v.size(), 50u);
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), 200u);
  EXPECT_EQ(*all.rbegin(), 200u);
  EXPECT_EQ(ReadAll(*spool).size(), 200u);
}

}  // namespace
}  // namespace netvigil::agent

namespace netvigil::agent {
namespace {

// A spool lost with its side file restarts numbering at 1 while the
// collector has committed up to 1000: new results must not be taken for
// resends of numbers the collector already has.
TEST(SpoolRenumberTest, AdvancePastTheCollectorsRecordRenumbersHeldResults) {
  char dir[] = "/tmp/netvigil-spool-renumber-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  netvigil::testing::FakeClock clock;
  auto spool = Spool::Open({std::string(dir) + "/spool.db"}, clock);
  ASSERT_TRUE(spool.ok()) << spool.status();
  for (int i = 0; i < 3; ++i) {
    v1::Result r;
    r.mutable_sockets()->set_skipped_processes(i);
    ASSERT_TRUE((*spool)->Append(r).ok());
  }
  ASSERT_EQ((*spool)->next_seq(), 4u);
  ASSERT_TRUE((*spool)->AdvanceNextSeqPast(1000).ok());
  EXPECT_EQ((*spool)->next_seq(), 1004u);
  auto held = (*spool)->ReadAfter(0, 100, 1 << 20);
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ((*held)[i].seq(), 1001u + i);
    EXPECT_EQ((*held)[i].sockets().skipped_processes(),
              static_cast<uint32_t>(i));
  }
  // The collector's ack of its old record deletes nothing new.
  ASSERT_TRUE((*spool)->AckThrough(1000).ok());
  EXPECT_EQ((*spool)->pending(), 3u);
  // Already past: nothing changes.
  ASSERT_TRUE((*spool)->AdvanceNextSeqPast(10).ok());
  EXPECT_EQ((*spool)->next_seq(), 1004u);
  spool->reset();
  auto again = Spool::Open({std::string(dir) + "/spool.db"}, clock);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->next_seq(), 1004u) << "survives a restart";
  std::system((std::string("rm -rf ") + dir).c_str());
}

}  // namespace
}  // namespace netvigil::agent
