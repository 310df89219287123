// A damaged spool file: flipped bytes, a truncated database, a truncated WAL.
// Opening must work, the intact results must come back unchanged, the damage
// must be logged and covered by a gap, and numbers must never go back.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

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
using spool_testing::CheckCovered;
using spool_testing::LogCapture;
using spool_testing::MakeResult;
using spool_testing::ReadAll;
using spool_testing::TempDir;
using ::testing::HasSubstr;

constexpr int kResults = 300;

class SpoolCorruptTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = dir_.File("spool.db"); }

  // kResults results written and the spool closed (so all is in the file).
  void WriteAndClose() {
    absl::StatusOr<std::unique_ptr<Spool>> spool =
        Spool::Open(Spool::Options{path_}, clock_);
    ASSERT_THAT(spool, IsOk());
    for (int i = 1; i <= kResults; ++i) {
      ASSERT_THAT((*spool)->Append(MakeResult(i)), IsOk());
    }
  }

  std::string ReadFile(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void WriteFile(const std::string& p, const std::string& data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << data;
  }

  // Reopens and checks what every damage test promises; returns the results
  // that came back (gaps left out).
  std::vector<v1::Result> ReopenAndCheck(uint64_t highest_given) {
    absl::StatusOr<std::unique_ptr<Spool>> spool =
        Spool::Open(Spool::Options{path_}, clock_);
    EXPECT_THAT(spool, IsOk());
    if (!spool.ok()) return {};
    Spool& s = **spool;
    EXPECT_GT(s.next_seq(), highest_given) << "numbers must never go back";
    std::vector<v1::Result> all = ReadAll(s);
    gaps_ = CheckCovered(all, 0, s.next_seq());
    std::vector<v1::Result> results;
    for (const v1::Result& r : all) {
      if (r.has_gap()) continue;
      EXPECT_EQ(r.sockets().SerializeAsString(),
                MakeResult(r.seq()).sockets().SerializeAsString())
          << "result " << r.seq() << " came back changed";
      results.push_back(r);
    }
    // The spool runs on.
    absl::StatusOr<uint64_t> seq = s.Append(MakeResult(999));
    EXPECT_THAT(seq, IsOk());
    if (seq.ok()) {
      EXPECT_GT(*seq, highest_given);
    }
    return results;
  }

  int SetAsideFiles() {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
      if (e.path().filename().string().rfind("spool.db.corrupt-", 0) == 0) ++n;
    }
    return n;
  }

  TempDir dir_;
  FakeClock clock_;
  std::string path_;
  std::map<uint64_t, v1::Gap> gaps_;
};

TEST_F(SpoolCorruptTest, FlippedByteInsideAResultDropsOnlyThatResult) {
  WriteAndClose();
  std::string data = ReadFile(path_);
  size_t at = data.find("marker-150-3");
  ASSERT_NE(at, std::string::npos);
  data[at] ^= 0x20;  // "Marker": still a valid protobuf string
  WriteFile(path_, data);

  LogCapture log;
  std::vector<v1::Result> results = ReopenAndCheck(kResults);
  EXPECT_THAT(log.text(), HasSubstr("event=spool_corrupt_rows"));
  EXPECT_EQ(results.size(), kResults - 1u);
  ASSERT_EQ(gaps_.size(), 1u);
  const v1::Gap& gap = gaps_.begin()->second;
  EXPECT_EQ(gap.reason(), "corrupt_row");
  EXPECT_EQ(gap.first_seq(), 150u);
  EXPECT_EQ(gap.last_seq(), 150u);
  EXPECT_EQ(gap.count(), 1u);
  EXPECT_EQ(SetAsideFiles(), 0);
}

TEST_F(SpoolCorruptTest, FlippedBytesInPageHeadersSetTheFileAsideAndSalvage) {
  WriteAndClose();
  std::string data = ReadFile(path_);
  const size_t page = 4096;
  size_t pages = data.size() / page;
  ASSERT_GT(pages, 100u);
  // Two b-tree pages in the middle get a nonsense page type and cell count.
  for (size_t p : {pages * 2 / 5, pages * 3 / 5}) {
    for (size_t i = 0; i < 5; ++i) data[p * page + i] ^= 0xA5;
  }
  WriteFile(path_, data);

  LogCapture log;
  std::vector<v1::Result> results = ReopenAndCheck(kResults);
  EXPECT_THAT(log.text(), HasSubstr("event=spool_corrupt "));
  EXPECT_THAT(log.text(), HasSubstr("event=spool_salvaged"));
  EXPECT_EQ(SetAsideFiles(), 1);
  // Two pages hold a handful of results; the rest must be salvaged.
  EXPECT_GE(results.size(), kResults - 12u);
  EXPECT_LT(results.size(), static_cast<size_t>(kResults));
  bool damaged_gap = false;
  for (const auto& [seq, gap] : gaps_) {
    if (gap.reason() == "spool_damaged") damaged_gap = true;
  }
  EXPECT_TRUE(damaged_gap);
}

TEST_F(SpoolCorruptTest, TruncatedDatabaseKeepsTheFrontPart) {
  WriteAndClose();
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  ASSERT_EQ(truncate(path_.c_str(), st.st_size / 2), 0);

  LogCapture log;
  std::vector<v1::Result> results = ReopenAndCheck(kResults);
  EXPECT_THAT(log.text(), HasSubstr("event=spool_corrupt "));
  EXPECT_EQ(SetAsideFiles(), 1);
  // Results are written in order, so the first ~half live in the first half.
  EXPECT_GE(results.size(), kResults / 3u);
  EXPECT_LE(results.size(), kResults * 2u / 3u);
  ASSERT_FALSE(results.empty());
  EXPECT_EQ(results.front().seq(), 1u);
}

TEST_F(SpoolCorruptTest, GarbageFileIsSetAsideAndTheSpoolStartsAbove) {
  WriteAndClose();
  WriteFile(path_, std::string(10000, 'x'));
  LogCapture log;
  std::vector<v1::Result> results = ReopenAndCheck(kResults);
  EXPECT_TRUE(results.empty());
  EXPECT_THAT(log.text(), HasSubstr("event=spool_corrupt "));
  EXPECT_EQ(SetAsideFiles(), 1);
}

TEST_F(SpoolCorruptTest, TruncatedWalLosesOnlyTheCutTransaction) {
  // A child writes ten batches and dies without closing, so they stay in the
  // WAL (a clean close would checkpoint them into the database).
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    absl::StatusOr<std::unique_ptr<Spool>> spool =
        Spool::Open(Spool::Options{path_}, clock_);
    if (!spool.ok()) _exit(2);
    for (int b = 0; b < 10; ++b) {
      std::vector<v1::Result> batch;
      for (int i = 1; i <= 10; ++i) batch.push_back(MakeResult(b * 10 + i));
      if (!(*spool)->AppendBatch(std::move(batch)).ok()) _exit(3);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  const std::string wal = path_ + "-wal";
  struct stat st;
  ASSERT_EQ(stat(wal.c_str(), &st), 0);
  ASSERT_GT(st.st_size, 100 * 2000);
  ASSERT_EQ(truncate(wal.c_str(), st.st_size - 1000), 0);  // mid-frame

  LogCapture log;
  std::vector<v1::Result> results = ReopenAndCheck(100);
  EXPECT_THAT(log.text(), HasSubstr("event=spool_wal_torn"));
  ASSERT_EQ(results.size(), 90u);
  EXPECT_EQ(results.back().seq(), 90u);
  ASSERT_FALSE(gaps_.empty());
  const v1::Gap& gap = gaps_.begin()->second;
  EXPECT_EQ(gap.reason(), "spool_damaged");
  EXPECT_EQ(gap.first_seq(), 91u);
  EXPECT_GE(gap.last_seq(), 100u);
}

}  // namespace
}  // namespace netvigil::agent
