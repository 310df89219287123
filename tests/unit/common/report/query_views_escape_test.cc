// The CLI's views (common/report/query_views.h) with hostile agent text: one
// line per row, no control byte, C1 or bidi control out, every cell as
// common/escape.h's Printable. `--json` is not formatted here: it prints the
// protos as they are.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/escape.h"
#include "common/report/query_views.h"
#include "common/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/hostile_text.h"

namespace netvigil::report {
namespace {

using ::netvigil::testing::ExpectOneLinePerRow;
using ::netvigil::testing::Hostile;

std::vector<Hostile> Table() { return ::netvigil::testing::HostileNames(); }

TEST(QueryViewsEscapeTest, FileAccessTable) {
  v1::FileAccessResponse resp;
  for (const Hostile& h : Table()) {
    v1::FileFact* f = resp.add_facts();
    f->set_exe("/tmp/" + ToValidUtf8(h.bytes));
    f->set_path("/home/a/" + ToValidUtf8(h.bytes));
    f->set_present(true);
  }
  const std::string out = RenderFileAccess(resp, absl::Now());
  ExpectOneLinePerRow(out, Table().size() + 1);
  for (const Hostile& h : Table()) {
    EXPECT_THAT(out, ::testing::HasSubstr("/home/a/" + h.shown));
  }
}

TEST(QueryViewsEscapeTest, AlertsTable) {
  v1::ListAlertsResponse resp;
  for (const Hostile& h : Table()) {
    v1::Alert* a = resp.add_alerts();
    a->set_kind("files_new_process");
    a->add_hosts("laptop");
    a->set_summary("new process /tmp/" + ToValidUtf8(h.bytes) + " holding x");
  }
  const std::string out = RenderAlerts(resp, absl::Now());
  // One block per alert (heading, summary, times; a blank line between),
  // every line printable; the summary may wrap, but only at a space.
  EXPECT_TRUE(IsValidUtf8(out));
  size_t blocks = 0;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    EXPECT_FALSE(HasControls(line)) << line;
    if (absl::StartsWith(line, "#")) ++blocks;
  }
  EXPECT_EQ(blocks, Table().size()) << out;
  for (const Hostile& h : Table()) {
    // Whole, never cut (a 5,000-byte name gets a line of its own).
    EXPECT_THAT(out, ::testing::HasSubstr("/tmp/" + h.shown));
  }
}

// The matrix's header row holds host names (agents' names): a header is
// shown as given, so the view escapes them itself.
TEST(QueryViewsEscapeTest, SpeedMatrixHostNames) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  v1::SpeedMatrixResponse m;
  m.add_hosts("h1");
  m.add_hosts("evil\x1b[2J\nrow");
  v1::SpeedCell* c = m.add_cells();
  c->set_client("h1");
  c->set_server("evil\x1b[2J\nrow");
  c->set_bps(94e6);
  c->set_outcome(v1::SPEED_OUTCOME_OK);
  c->mutable_at()->set_seconds(1'800'000'000 - 60);
  const std::string out = RenderSpeedMatrix(m, now);
  EXPECT_TRUE(IsValidUtf8(out));
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    EXPECT_FALSE(HasControls(line)) << line;
  }
  EXPECT_THAT(out, ::testing::HasSubstr("evil\\x1B[2J\\nrow"));
}

}  // namespace
}  // namespace netvigil::report
