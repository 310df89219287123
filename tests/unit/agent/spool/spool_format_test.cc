// Spools written by the spool as it was before its split into agent/spool/
// (tests/fixtures/spool/, made by make_spool_fixture.cc there) still open
// with every result, gap and counter they held: the on-disk format did not
// change. Opened both on the machine's file system (a copy in a temp
// folder) and on the in-memory one.
#include <filesystem>
#include <map>
#include <string>

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
using spool_testing::CheckCovered;
using spool_testing::MakeResult;
using spool_testing::ReadAll;
using spool_testing::TempDir;

std::string Fixture(const std::string& name) {
  return std::string(NETVIGIL_SOURCE_DIR) + "/tests/fixtures/spool/" + name;
}

// What the old spool held when the fixture was written (printed by
// make_spool_fixture): results by seq -> MakeResult's n, gap rows by seq.
struct Expected {
  uint64_t next_seq;
  uint64_t pending;
  uint64_t dropped_total;
  uint64_t acked_through;
  std::map<uint64_t, uint64_t> results;
  std::map<uint64_t, std::string> gaps;  // seq -> reason
};

void Check(Spool& spool, const Expected& want) {
  EXPECT_EQ(spool.next_seq(), want.next_seq);
  EXPECT_EQ(spool.pending(), want.pending);
  EXPECT_EQ(spool.dropped_total(), want.dropped_total);
  EXPECT_EQ(spool.acked_through(), want.acked_through);
  std::vector<v1::Result> all = ReadAll(spool, want.acked_through);
  CheckCovered(all, want.acked_through, spool.next_seq());
  std::map<uint64_t, uint64_t> results;
  std::map<uint64_t, std::string> gaps;
  for (const v1::Result& r : all) {
    if (r.has_gap()) {
      gaps[r.seq()] = r.gap().reason();
      continue;
    }
    const uint64_t n = r.sockets().taken_at().seconds() - 1'700'000'000;
    EXPECT_EQ(r.sockets().SerializeAsString(),
              MakeResult(n, 4).sockets().SerializeAsString())
        << "seq " << r.seq();
    results[r.seq()] = n;
  }
  EXPECT_EQ(results, want.results);
  EXPECT_EQ(gaps, want.gaps);
  // And it runs on.
  absl::StatusOr<uint64_t> seq = spool.Append(MakeResult(7, 4));
  ASSERT_THAT(seq, IsOk());
  EXPECT_EQ(*seq, want.next_seq);
}

Expected ClosedSpool();  // below, from the generator's output
Expected KilledSpool();

class SpoolFormatTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SpoolFormatTest, OpensOnDiskWithEverythingItHeld) {
  const std::string name = GetParam();
  TempDir dir;
  for (const char* suffix : {"", "-wal", ".seq"}) {
    const std::string from = Fixture(name + "/spool.db" + suffix);
    if (std::filesystem::exists(from)) {
      std::filesystem::copy_file(from,
                                 dir.File(std::string("spool.db") + suffix));
    }
  }
  FakeClock clock;
  auto spool = Spool::Open(Spool::Options{dir.File("spool.db")}, clock);
  ASSERT_THAT(spool, IsOk());
  Check(**spool, name == "closed" ? ClosedSpool() : KilledSpool());
}

TEST_P(SpoolFormatTest, OpensInMemoryWithEverythingItHeld) {
  const std::string name = GetParam();
  FaultFileSystem fs;
  for (const char* suffix : {"", "-wal", ".seq"}) {
    const std::string from = Fixture(name + "/spool.db" + suffix);
    if (std::filesystem::exists(from)) {
      ASSERT_TRUE(fs.PutFromDisk(std::string("/s/spool.db") + suffix, from));
    }
  }
  FakeClock clock;
  Spool::Options o;
  o.path = "/s/spool.db";
  o.fs = &fs;
  auto spool = Spool::Open(o, clock);
  ASSERT_THAT(spool, IsOk());
  Check(**spool, name == "closed" ? ClosedSpool() : KilledSpool());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SpoolFormatTest,
                         ::testing::Values("closed", "killed"));

Expected ClosedSpool() {
  // make_spool_fixture printed: next_seq=42 pending=31 dropped=7; the rows,
  // listed with Python's sqlite3 from the file: 11..30 hold n = seq, 31 is
  // the over-cap gap (for 1..7), 32..41 hold n = seq - 1.
  Expected e;
  e.next_seq = 42;
  e.pending = 31;
  e.dropped_total = 7;
  e.acked_through = 10;
  for (uint64_t s = 11; s <= 30; ++s) e.results[s] = s;
  e.gaps[31] = "spool_over_cap";
  for (uint64_t s = 32; s <= 41; ++s) e.results[s] = s - 1;
  return e;
}

Expected KilledSpool() {
  Expected e;
  e.next_seq = 13;
  e.pending = 12;
  e.dropped_total = 0;
  e.acked_through = 0;
  for (uint64_t i = 1; i <= 12; ++i) e.results[i] = i;
  return e;
}

}  // namespace
}  // namespace netvigil::agent
