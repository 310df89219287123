// The table of one speed test (speed_table.h): a row per direction, UDP's
// jitter and loss, a failure's reason, the server's name escaped.
#include "common/report/speed_table.h"

#include <algorithm>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace netvigil::report {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(SpeedTableTest, TcpHasARowPerDirection) {
  v1::SpeedResult r;
  r.set_server("nas");
  r.set_server_address("192.0.2.5");
  r.set_server_port(5201);
  r.set_duration_s(5);
  r.set_outcome(v1::SPEED_OUTCOME_OK);
  r.mutable_forward()->set_sent_bps(941.3e6);
  r.mutable_forward()->set_received_bps(940.1e6);
  r.mutable_forward()->set_retransmits(12);
  r.mutable_reverse_figures()->set_received_bps(48e6);
  const std::string out = FormatSpeedTable(r);
  EXPECT_THAT(out, HasSubstr("nas 192.0.2.5 port 5201, TCP, 5.0 s\n"));
  EXPECT_THAT(out, HasSubstr("client->server    941.30 Mbit/s  940.10 Mbit/s"
                             "       12\n"));
  EXPECT_THAT(out, HasSubstr("server->client"));
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 4) << out;
}

TEST(SpeedTableTest, UdpShowsJitterAndLoss) {
  v1::SpeedResult r;
  r.set_udp(true);
  r.set_outcome(v1::SPEED_OUTCOME_OK);
  r.mutable_forward()->set_jitter_ms(0.25);
  r.mutable_forward()->set_lost_packets(3);
  r.mutable_forward()->set_packets(1000);
  r.mutable_forward()->set_lost_percent(0.3);
  const std::string out = FormatSpeedTable(r);
  EXPECT_THAT(out, HasSubstr("jitter ms"));
  EXPECT_THAT(out, HasSubstr("3/1000"));
  EXPECT_THAT(out, HasSubstr("0.30%"));
}

TEST(SpeedTableTest, AFailureSaysWhyAndNamesAreEscaped) {
  v1::SpeedResult r;
  r.set_server("peer\x1b]0;x\x07");
  r.set_outcome(v1::SPEED_OUTCOME_FAILED);
  r.set_error("busy\nforged row");
  const std::string out = FormatSpeedTable(r);
  EXPECT_THAT(out, HasSubstr("peer\\x1B]0;x\\x07 "));
  EXPECT_THAT(out, HasSubstr("FAILED: busy\\nforged row\n"));
  EXPECT_THAT(out, Not(HasSubstr("direction")));
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << out;
}

}  // namespace
}  // namespace netvigil::report
