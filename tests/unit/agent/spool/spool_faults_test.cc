// The spool on a file system that fails on purpose (tests/testing/
// fault_file_system.h): a full disk at each write of a commit, a write torn
// at every byte, a failed fsync at each fsync of a commit, a failed rename of
// the sequence ceiling. In memory: no root, no tmpfs, no child processes.
//
// What every case promises: nothing acknowledged is lost (also across a
// crash that drops whatever was not fsynced), no partial row is read back,
// the error names what failed, numbers never go back, and every number up to
// next_seq is a result or inside a gap.
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/spool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fault_file_system.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/agent/spool_testing.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::FakeClock;
using ::netvigil::testing::FaultFileSystem;
using ::netvigil::testing::IsOk;
using ::netvigil::testing::StatusIs;
using spool_testing::CheckCovered;
using spool_testing::LogCapture;
using spool_testing::MakeResult;
using spool_testing::ReadAll;
using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using Op = FaultFileSystem::Op;

constexpr char kPath[] = "/spool/spool.db";
constexpr char kSeqFile[] = "/spool/spool.db.seq";

Spool::Options Opts(FaultFileSystem& fs, uint64_t max_bytes = 8 << 20) {
  Spool::Options o;
  o.path = kPath;
  o.max_bytes = max_bytes;
  o.fs = &fs;
  return o;
}

std::unique_ptr<Spool> OpenOrDie(FaultFileSystem& fs, Clock& clock) {
  absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open(Opts(fs), clock);
  EXPECT_THAT(spool, IsOk());
  return spool.ok() ? std::move(*spool) : nullptr;
}

uint64_t CeilingIn(FaultFileSystem& fs) {
  uint64_t v = 0;
  std::string text = fs.Contents(kSeqFile);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  EXPECT_TRUE(absl::SimpleAtoi(text, &v)) << "seq file: '" << text << "'";
  return v;
}

// The results a test gave numbers to: seq -> MakeResult's n.
using Given = std::map<uint64_t, uint64_t>;

// Every acknowledged result is there unchanged, nothing else but gaps is,
// and the numbering invariant holds for the numbers below `below` (default:
// next_seq; while writes fail, the numbers of failed appends are only in
// memory until the next write that works records them).
std::map<uint64_t, v1::Gap> ExpectExactly(Spool& spool, const Given& given,
                                          const std::string& context,
                                          uint64_t below = 0) {
  SCOPED_TRACE(context);
  std::vector<v1::Result> all = ReadAll(spool);
  std::map<uint64_t, v1::Gap> gaps =
      CheckCovered(all, 0, below != 0 ? below : spool.next_seq());
  Given seen;
  for (const v1::Result& r : all) {
    if (r.has_gap()) continue;
    auto it = given.find(r.seq());
    if (it == given.end()) {
      ADD_FAILURE() << "seq " << r.seq() << " came back but was never given";
      continue;
    }
    EXPECT_EQ(r.sockets().SerializeAsString(),
              MakeResult(it->second, 2).sockets().SerializeAsString())
        << "result " << r.seq() << " came back changed";
    seen.insert(*it);
  }
  EXPECT_EQ(seen, given) << "an acknowledged result is missing";
  return gaps;
}

// One gap of `reason` covers `seq`.
bool GapCovers(const std::map<uint64_t, v1::Gap>& gaps, uint64_t seq,
               const std::string& reason) {
  for (const auto& [at, gap] : gaps) {
    if (gap.reason() == reason && gap.first_seq() <= seq &&
        seq <= gap.last_seq()) {
      return true;
    }
  }
  return false;
}

// Appends results n = first..first+count-1 in one batch (one commit).
void AppendBatchOk(Spool& spool, uint64_t first, int count, Given& given) {
  std::vector<v1::Result> batch;
  for (int i = 0; i < count; ++i) batch.push_back(MakeResult(first + i, 2));
  absl::StatusOr<std::vector<uint64_t>> seqs =
      spool.AppendBatch(std::move(batch));
  ASSERT_THAT(seqs, IsOk());
  for (int i = 0; i < count; ++i) given[(*seqs)[i]] = first + i;
}

// How many calls of `op` one Append makes after `base` results, on a spool
// that is otherwise as the fault loops build it.
int CallsOfOneCommit(Op op, int base) {
  FaultFileSystem fs;
  FakeClock clock;
  std::unique_ptr<Spool> spool = OpenOrDie(fs, clock);
  Given given;
  AppendBatchOk(*spool, 1, base, given);
  fs.ResetCounts();
  EXPECT_THAT(spool->Append(MakeResult(100'000, 2)), IsOk());
  return fs.Count(op);
}

// A full disk at write i of a commit, for every i: the commit fails with
// ResourceExhausted naming the file, is counted, nothing else changes; once
// space returns the next commit works and a gap names the lost number; a
// crash then loses nothing acknowledged. Run with the commit inside the
// sequence ceiling (WAL writes only) and crossing it (the side file's
// writes too).
TEST(SpoolFaultTest, DiskFullAtEachWriteOfACommit) {
  for (int base : {10, 1000}) {  // 1000: the commit raises the ceiling
    const int writes = CallsOfOneCommit(Op::kWrite, base);
    ASSERT_GT(writes, base == 1000 ? 1 : 0);
    for (int i = 0; i < writes; ++i) {
      SCOPED_TRACE(absl::StrCat("base ", base, ", write ", i, " of ", writes));
      FaultFileSystem fs;
      FakeClock clock;
      std::unique_ptr<Spool> spool = OpenOrDie(fs, clock);
      ASSERT_NE(spool, nullptr);
      Given given;
      AppendBatchOk(*spool, 1, base, given);
      const uint64_t ceiling = CeilingIn(fs);

      // The disk stays full from write i on; the failing write lands a
      // part of its bytes, as a real one may.
      fs.Arm(Op::kWrite, i,
             absl::ResourceExhaustedError("No space left on device"), "",
             /*sticky=*/true, /*torn_bytes=*/100);
      const uint64_t lost_seq = spool->next_seq();
      absl::StatusOr<uint64_t> failed = spool->Append(MakeResult(200'000, 2));
      ASSERT_THAT(failed, StatusIs(absl::StatusCode::kResourceExhausted));
      EXPECT_THAT(std::string(failed.status().message()),
                  HasSubstr("No space left on device"));
      EXPECT_THAT(std::string(failed.status().message()),
                  HasSubstr("write /spool/spool.db"))
          << "the error must name the file";
      EXPECT_EQ(spool->dropped_total(), 1u);
      // The ceiling is raised before the commit, so a commit that fails
      // after it leaves it raised: an upper bound, never lowered.
      EXPECT_GE(CeilingIn(fs), ceiling) << "the ceiling went back";
      // Still full: a second append fails too, and is counted.
      EXPECT_THAT(spool->Append(MakeResult(200'001, 2)),
                  StatusIs(absl::StatusCode::kResourceExhausted));
      EXPECT_EQ(spool->dropped_total(), 2u);
      ExpectExactly(*spool, given, "while the disk is full", lost_seq);

      fs.Disarm();  // space returns
      absl::StatusOr<uint64_t> after = spool->Append(MakeResult(300'000, 2));
      ASSERT_THAT(after, IsOk());
      given[*after] = 300'000;
      EXPECT_GT(*after, lost_seq + 1);
      std::map<uint64_t, v1::Gap> gaps =
          ExpectExactly(*spool, given, "after space returned");
      EXPECT_TRUE(GapCovers(gaps, lost_seq, "spool_write_failed"));
      EXPECT_TRUE(GapCovers(gaps, lost_seq + 1, "spool_write_failed"));

      spool.reset();
      fs.Crash();
      spool = OpenOrDie(fs, clock);
      ASSERT_NE(spool, nullptr);
      EXPECT_GT(spool->next_seq(), *after);
      gaps = ExpectExactly(*spool, given, "after a crash");
      EXPECT_TRUE(GapCovers(gaps, lost_seq, "spool_write_failed"));
    }
  }
}

// A failed fsync at each fsync (and each folder fsync) of a commit: the
// batch is not acknowledged, the error says fsync and names the file, the
// spool logs it and keeps working; a crash right after loses nothing
// acknowledged and brings back nothing half-written.
TEST(SpoolFaultTest, FailedFsyncAtEachFsyncOfACommitIsNotAcknowledged) {
  for (Op op : {Op::kSync, Op::kSyncDir}) {
    for (int base : {10, 1000}) {
      const int syncs = CallsOfOneCommit(op, base);
      if (op == Op::kSync) {
        ASSERT_GT(syncs, 0);
      }
      for (int i = 0; i < syncs; ++i) {
        SCOPED_TRACE(absl::StrCat(op == Op::kSync ? "fsync " : "folder fsync ",
                                  i, " of ", syncs, ", base ", base));
        for (bool crash_at_once : {false, true}) {
          FaultFileSystem fs;
          FakeClock clock;
          std::unique_ptr<Spool> spool = OpenOrDie(fs, clock);
          ASSERT_NE(spool, nullptr);
          Given given;
          AppendBatchOk(*spool, 1, base, given);
          LogCapture log;
          fs.Arm(op, i, absl::DataLossError("Input/output error"));
          absl::StatusOr<std::vector<uint64_t>> failed = spool->AppendBatch(
              {MakeResult(200'000, 2), MakeResult(200'001, 2)});
          ASSERT_FALSE(failed.ok())
              << "a batch whose fsync failed was acknowledged";
          EXPECT_THAT(std::string(failed.status().message()),
                      AllOf(HasSubstr("fsync"), HasSubstr("/spool"),
                            HasSubstr("Input/output error")));
          EXPECT_EQ(spool->dropped_total(), 2u);
          EXPECT_THAT(log.text(), HasSubstr("event=spool_append_failed"));

          if (crash_at_once) {
            spool.reset();
            fs.Crash();
            spool = OpenOrDie(fs, clock);
            ASSERT_NE(spool, nullptr);
            // The failed batch may or may not be on disk (its fsync failed
            // after its bytes were written); whichever, whole or not at all.
            std::vector<v1::Result> all = ReadAll(*spool);
            CheckCovered(all, 0, spool->next_seq());
            int from_failed = 0;
            for (const v1::Result& r : all) {
              if (r.has_gap()) continue;
              auto it = given.find(r.seq());
              if (it != given.end()) {
                EXPECT_EQ(
                    r.sockets().SerializeAsString(),
                    MakeResult(it->second, 2).sockets().SerializeAsString());
              } else {
                ++from_failed;
              }
            }
            EXPECT_THAT(from_failed, AnyOf(0, 2));
            int found = 0;
            for (const v1::Result& r : all) found += given.count(r.seq());
            EXPECT_EQ(found, static_cast<int>(given.size()));
            continue;
          }
          absl::StatusOr<uint64_t> after =
              spool->Append(MakeResult(300'000, 2));
          ASSERT_THAT(after, IsOk());
          given[*after] = 300'000;
          std::map<uint64_t, v1::Gap> gaps =
              ExpectExactly(*spool, given, "after the failed fsync");
          EXPECT_TRUE(GapCovers(gaps, *after - 2, "spool_write_failed"));
          spool.reset();
          fs.Crash();
          spool = OpenOrDie(fs, clock);
          ASSERT_NE(spool, nullptr);
          ExpectExactly(*spool, given, "after a crash");
        }
      }
    }
  }
}

// The rename that moves the sequence ceiling fails: the append fails naming
// the rename, the side file keeps its old value (never a smaller one, never
// a half-written one), no temporary file is left, and the next append moves
// it on. Numbers never go back, also after a crash.
TEST(SpoolFaultTest, FailedRenameKeepsTheCeilingAndItNeverGoesBack) {
  FaultFileSystem fs;
  FakeClock clock;
  std::unique_ptr<Spool> spool = OpenOrDie(fs, clock);
  ASSERT_NE(spool, nullptr);
  Given given;
  AppendBatchOk(*spool, 1, 1000, given);
  const uint64_t before = CeilingIn(fs);
  ASSERT_GE(before, spool->next_seq());
  uint64_t highest = before;

  fs.Arm(Op::kRename, 0, absl::PermissionDeniedError("Operation not permitted"),
         ".seq");
  absl::StatusOr<uint64_t> failed = spool->Append(MakeResult(200'000, 2));
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(std::string(failed.status().message()),
              AllOf(HasSubstr("seq file rename"), HasSubstr(kSeqFile),
                    HasSubstr("Operation not permitted")));
  EXPECT_EQ(CeilingIn(fs), before) << "the ceiling changed on a failed rename";
  EXPECT_FALSE(fs.Has(absl::StrCat(kSeqFile, ".tmp")));
  ExpectExactly(*spool, given, "after the failed rename",
                spool->next_seq() - 1);

  for (int round = 0; round < 3; ++round) {
    absl::StatusOr<std::vector<uint64_t>> seqs;
    std::vector<v1::Result> batch;
    for (int i = 0; i < 700; ++i)
      batch.push_back(MakeResult(400'000 + round * 1000 + i, 2));
    seqs = spool->AppendBatch(std::move(batch));
    ASSERT_THAT(seqs, IsOk());
    for (int i = 0; i < 700; ++i)
      given[(*seqs)[i]] = 400'000 + round * 1000 + i;
    const uint64_t now = CeilingIn(fs);
    EXPECT_GE(now, highest) << "the ceiling went back";
    EXPECT_GT(now, seqs->back()) << "a number was committed above the ceiling";
    highest = now;
  }
  ExpectExactly(*spool, given, "after the ceiling moved on");
  const uint64_t given_high = given.rbegin()->first;
  spool.reset();
  fs.Crash();
  EXPECT_GE(CeilingIn(fs), highest) << "the ceiling's rename was not durable";
  spool = OpenOrDie(fs, clock);
  ASSERT_NE(spool, nullptr);
  EXPECT_GT(spool->next_seq(), given_high);
  ExpectExactly(*spool, given, "after a crash");
}

// A rename that fails while the spool is being created: Open fails with
// the rename named, and a second Open once it works starts clean.
TEST(SpoolFaultTest, FailedRenameAtCreationFailsOpenClearly) {
  FaultFileSystem fs;
  FakeClock clock;
  fs.Arm(Op::kRename, 0, absl::PermissionDeniedError("Operation not permitted"),
         ".seq");
  absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open(Opts(fs), clock);
  ASSERT_FALSE(spool.ok());
  EXPECT_THAT(std::string(spool.status().message()), HasSubstr("rename"));
  EXPECT_FALSE(fs.Has(kSeqFile));
  std::unique_ptr<Spool> again = OpenOrDie(fs, clock);
  ASSERT_NE(again, nullptr);
  EXPECT_THAT(again->Append(MakeResult(1, 2)), IsOk());
}

// A commit torn at every byte (a crash while its writes reach the disk):
// reopening keeps every row of the earlier commits unchanged, brings back
// the torn batch whole or not at all, covers it with a gap when the WAL was
// cut mid-frame, and numbers on above everything it brought back.
TEST(SpoolFaultTest, CommitTornAtEveryByteKeepsEveryWholeRow) {
  FaultFileSystem fs;
  FakeClock clock;
  Given given;
  std::unique_ptr<Spool> spool = OpenOrDie(fs, clock);
  ASSERT_NE(spool, nullptr);
  for (int c = 0; c < 5; ++c) AppendBatchOk(*spool, 1 + c * 6, 6, given);
  std::unique_ptr<FaultFileSystem> before = fs.Clone();
  fs.StartRecording();
  Given torn;  // 20 results: a commit of several frames
  AppendBatchOk(*spool, 1000, 20, torn);
  std::vector<FaultFileSystem::WriteRecord> writes = fs.StopRecording();
  spool.reset();
  uint64_t total = 0;
  for (const auto& w : writes) {
    EXPECT_THAT(w.path, HasSubstr("spool.db-wal"))
        << "a commit writes only the WAL";
    total += w.data.size();
  }
  ASSERT_GT(total, 2 * 4096u);

  // Every offset where a frame's header or a write's edge could be cut, and
  // a seeded sample of the offsets inside page bodies (a cut anywhere in a
  // page body leaves the same thing: a frame whose checksum fails).
  std::vector<uint64_t> cuts;
  std::mt19937_64 rng(17);
  uint64_t at = 0;
  for (const auto& w : writes) {
    for (uint64_t k = 0; k <= w.data.size(); ++k) {
      const bool edge = k < 40 || k + 40 > w.data.size();
      if (edge || rng() % 16 == 0) cuts.push_back(at + k);
    }
    at += w.data.size();
  }
  int whole = 0, none = 0, with_gap = 0;
  for (uint64_t cut : cuts) {
    SCOPED_TRACE(absl::StrCat("cut at byte ", cut, " of ", total));
    std::unique_ptr<FaultFileSystem> disk = before->Clone();
    disk->ApplyPrefix(writes, cut);
    const std::string wal = disk->Contents(absl::StrCat(kPath, "-wal"));
    const bool mid_frame =
        wal.size() > 32 && (wal.size() - 32) % (4096 + 24) != 0;
    std::unique_ptr<Spool> reopened = OpenOrDie(*disk, clock);
    ASSERT_NE(reopened, nullptr);
    std::vector<v1::Result> all = ReadAll(*reopened);
    std::map<uint64_t, v1::Gap> gaps =
        CheckCovered(all, 0, reopened->next_seq());
    int from_torn = 0, from_given = 0;
    uint64_t high = 0;
    for (const v1::Result& r : all) {
      if (r.has_gap()) continue;
      high = std::max(high, r.seq());
      const Given& from = given.count(r.seq()) ? given : torn;
      auto it = from.find(r.seq());
      ASSERT_NE(it, from.end()) << "seq " << r.seq() << " was never given";
      ASSERT_EQ(r.sockets().SerializeAsString(),
                MakeResult(it->second, 2).sockets().SerializeAsString())
          << "a partial or changed row came back as seq " << r.seq();
      (&from == &given ? from_given : from_torn)++;
    }
    ASSERT_EQ(from_given, static_cast<int>(given.size()))
        << "a whole row was lost";
    ASSERT_THAT(from_torn, AnyOf(0, 20)) << "the torn batch came back in part";
    if (from_torn == 20) {
      ++whole;
    } else {
      ++none;
      if (mid_frame) {
        ++with_gap;
        EXPECT_TRUE(GapCovers(gaps, torn.begin()->first, "spool_damaged"));
        EXPECT_TRUE(GapCovers(gaps, torn.rbegin()->first, "spool_damaged"));
      }
    }
    absl::StatusOr<uint64_t> next = reopened->Append(MakeResult(9, 2));
    ASSERT_THAT(next, IsOk());
    EXPECT_GT(*next, high);
  }
  EXPECT_GT(whole, 0);
  EXPECT_GT(none, 0);
  EXPECT_GT(with_gap, 0);
  std::cout << "cuts=" << cuts.size() << " of " << total
            << " bytes, whole=" << whole << " none=" << none
            << " with_gap=" << with_gap << "\n";
}

}  // namespace
}  // namespace netvigil::agent
