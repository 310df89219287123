// The mtr --report text of a path run (path_report.h): mtr's columns, one
// line per hop and per extra address, and every name an agent or a PTR
// record wrote escaped.
#include "common/report/path_report.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_split.h"
#include "common/escape.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace netvigil::report {
namespace {

using ::testing::HasSubstr;

v1::PathRun TwoHops() {
  v1::PathRun run;
  run.set_target("example.net");
  run.set_resolved_address("192.0.2.10");
  run.set_count(10);
  run.set_interval_s(1);
  run.set_max_ttl(30);
  run.set_payload_bytes(56);
  run.set_socket_kind(v1::PATH_SOCKET_KIND_DGRAM);
  v1::PathHop* h1 = run.add_hops();
  h1->set_ttl(1);
  h1->add_addresses()->set_address("10.0.0.1");
  h1->set_sent(10);
  h1->set_received(10);
  h1->set_avg_ms(1.25);
  v1::PathHop* h2 = run.add_hops();
  h2->set_ttl(2);
  h2->add_addresses()->set_address("192.0.2.10");
  v1::HopAddress* other = h2->add_addresses();
  other->set_address("192.0.2.11");
  other->set_received(3);
  h2->set_sent(10);
  h2->set_received(7);
  h2->set_loss_percent(30);
  return run;
}

TEST(PathReportTest, HasMtrColumnsAndALinePerHopAndAddress) {
  const std::string out = FormatPathReport(TwoHops(), "laptop");
  EXPECT_THAT(out, HasSubstr("PATH: example.net (192.0.2.10), 10 rounds "
                             "every 1 s, max TTL 30, 56 bytes, dgram socket"));
  EXPECT_THAT(out, HasSubstr("HOST: laptop"));
  EXPECT_THAT(out, HasSubstr("Loss%   Snt   Rcv   Last    Avg   Best   "
                             "Wrst  StDev"));
  EXPECT_THAT(out, HasSubstr("  1.|-- 10.0.0.1"));
  EXPECT_THAT(out, HasSubstr(" 30.0%    10     7"));
  EXPECT_THAT(out, HasSubstr("    |  `|-- 192.0.2.11 (3 replies)\n"));
  // Start, PATH, the header, two hops and one extra address.
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 6) << out;
}

TEST(PathReportTest, EveryNameIsEscaped) {
  v1::PathRun run = TwoHops();
  run.set_target("evil\nPATH: forged");
  run.mutable_hops(0)->mutable_addresses(0)->set_hostname("ptr\x1b[2J");
  run.mutable_hops(1)->add_errors("bad\rthing");
  run.set_error("gone\n");
  const std::string out = FormatPathReport(run, "host\nHOST: forged");
  EXPECT_THAT(out, HasSubstr("HOST: host\\nHOST: forged"));
  EXPECT_THAT(out, HasSubstr("PATH: evil\\nPATH: forged"));
  EXPECT_THAT(out, HasSubstr("ptr\\x1B[2J (10.0.0.1)"));
  EXPECT_THAT(out, HasSubstr("!! bad\\rthing"));
  EXPECT_THAT(out, HasSubstr("ERROR: gone\\n\n"));
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    EXPECT_FALSE(HasControls(line)) << line;
  }
  // The lines above plus one hop error and the run's error.
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 8) << out;
}

}  // namespace
}  // namespace netvigil::report
