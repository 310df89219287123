// The spool's pure parts: the row format and its checksum, the WAL-header
// check, gap accounting. No files at all.
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "agent/spool/gap_accounting.h"
#include "agent/spool/row_format.h"
#include "agent/spool/wal_header.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/agent/spool_testing.h"

namespace netvigil::agent::spool {
namespace {

using spool_testing::MakeResult;
using ::testing::HasSubstr;
using ::testing::Optional;

v1::Result Numbered(uint64_t seq) {
  v1::Result r = MakeResult(seq, 3);
  r.set_seq(seq);
  *r.mutable_produced_at() = ToProtoTime(absl::FromUnixSeconds(1'700'000'000));
  return r;
}

TEST(RowFormatTest, ChecksumIsFnv1a64) {
  // Published FNV-1a 64 test vectors: the on-disk rows depend on them.
  EXPECT_EQ(Checksum(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(Checksum("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(Checksum("foobar"), 0x85944171f73967e8ull);
}

TEST(RowFormatTest, RoundTripsAndRejectsEveryFlippedByte) {
  const v1::Result r = Numbered(42);
  std::string body;
  RowColumns row = EncodeRow(r, /*is_gap=*/false, &body);
  EXPECT_EQ(row.seq, 42u);
  EXPECT_EQ(row.size, body.size());
  EXPECT_EQ(row.produced_at_us, 1'700'000'000'000'000);
  v1::Result back;
  ASSERT_TRUE(DecodeRow(row, &back));
  EXPECT_EQ(back.SerializeAsString(), r.SerializeAsString());
  for (size_t i = 0; i < body.size(); ++i) {
    std::string bad = body;
    bad[i] ^= 0x20;
    RowColumns damaged = row;
    damaged.body = bad;
    EXPECT_FALSE(DecodeRow(damaged, &back)) << "byte " << i;
  }
  for (size_t cut = 0; cut < body.size(); cut += 7) {
    RowColumns shorter = row;
    shorter.body = absl::string_view(body).substr(0, cut);
    EXPECT_FALSE(DecodeRow(shorter, &back)) << "cut at " << cut;
  }
  RowColumns moved = row;
  moved.seq = 43;  // a whole row under another number
  EXPECT_FALSE(DecodeRow(moved, &back));
}

std::string WalHeader(uint32_t magic, uint32_t page) {
  std::string h(32, '\0');
  auto put = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i)
      h[at + i] = static_cast<char>(v >> (24 - 8 * i));
  };
  put(0, magic);
  put(8, page);
  return h;
}

TEST(WalHeaderTest, WholeFramesAreNotTornAndAnythingElseIs) {
  const std::string h = WalHeader(0x377f0682, 4096);
  EXPECT_EQ(WalTornDetail(h, 0), std::nullopt);
  EXPECT_EQ(WalTornDetail(h, 32), std::nullopt);
  EXPECT_EQ(WalTornDetail(h, 32 + 3 * 4120), std::nullopt);
  EXPECT_EQ(WalTornDetail(WalHeader(0x377f0683, 512), 32 + 536), std::nullopt);
  for (uint64_t size : {uint64_t{33}, uint64_t{32 + 4119}, uint64_t{32 + 4121},
                        uint64_t{32 + 2 * 4120 - 1}}) {
    EXPECT_THAT(WalTornDetail(h, size), Optional(HasSubstr("ends mid-frame")))
        << size;
  }
  EXPECT_THAT(WalTornDetail(h.substr(0, 20), 20),
              Optional(HasSubstr("cut at 20")));
  EXPECT_THAT(WalTornDetail(WalHeader(0x12345678, 4096), 32 + 4120),
              Optional(HasSubstr("unreadable")));
  EXPECT_THAT(WalTornDetail(WalHeader(0x377f0682, 100), 32 + 124),
              Optional(HasSubstr("unreadable")));
  EXPECT_THAT(WalTornDetail(WalHeader(0x377f0682, 1 << 20), 32),
              Optional(HasSubstr("unreadable")));
}

TEST(GapAccountingTest, MergeWidensAndAdds) {
  v1::Gap into;
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  MergeGap(MakeGap(10, 12, 3, t0, t0 + absl::Seconds(2), kReasonWriteFailed),
           &into);
  EXPECT_EQ(into.first_seq(), 10u);
  EXPECT_EQ(into.last_seq(), 12u);
  EXPECT_EQ(into.count(), 3u);
  MergeGap(MakeGap(5, 6, 2, t0 - absl::Seconds(9), t0, kReasonWriteFailed),
           &into);
  EXPECT_EQ(into.first_seq(), 5u);
  EXPECT_EQ(into.last_seq(), 12u);
  EXPECT_EQ(into.count(), 5u);
  EXPECT_EQ(FromProtoTime(into.first_produced_at()), t0 - absl::Seconds(9));
  EXPECT_EQ(FromProtoTime(into.last_produced_at()), t0 + absl::Seconds(2));
  EXPECT_EQ(into.reason(), kReasonWriteFailed);
}

TEST(GapAccountingTest, WriteFailedNamesExactlyTheLostNumbers) {
  std::vector<v1::Result> lost = {Numbered(1), Numbered(2), Numbered(3)};
  *lost[1].mutable_produced_at() = ToProtoTime(absl::FromUnixSeconds(5));
  v1::Gap g = WriteFailedGap(70, lost);
  EXPECT_EQ(g.first_seq(), 70u);
  EXPECT_EQ(g.last_seq(), 72u);
  EXPECT_EQ(g.count(), 3u);
  EXPECT_EQ(FromProtoTime(g.first_produced_at()), absl::FromUnixSeconds(5));
  EXPECT_EQ(g.reason(), "spool_write_failed");
}

TEST(GapAccountingTest, RecoveryGapRunsToTheCeiling) {
  const absl::Time now = absl::FromUnixSeconds(7);
  RecoveryInput cut;  // a cut WAL: only numbers from next_seq on
  cut.next_seq = 31;
  cut.acked_through = 5;
  cut.rows = 25;
  cut.ceiling = 1001;
  cut.newest_only = true;
  std::optional<v1::Gap> g = RecoveryGap(cut, now, kReasonDamaged);
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->first_seq(), 31u);
  EXPECT_EQ(g->last_seq(), 1000u);
  EXPECT_EQ(g->count(), 970u);

  RecoveryInput lost = cut;  // set aside: anything after the ack, less rows
  lost.newest_only = false;
  g = RecoveryGap(lost, now, kReasonDamaged);
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->first_seq(), 6u);
  EXPECT_EQ(g->count(), 995u - 25u);

  RecoveryInput nothing = cut;  // next_seq at the ceiling: nothing missing
  nothing.ceiling = 31;
  EXPECT_EQ(RecoveryGap(nothing, now, kReasonDamaged), std::nullopt);
}

}  // namespace
}  // namespace netvigil::agent::spool
