// The `probe speed` table and its command-line parsing.
#include "agent/probes/speed_command.h"

#include "agent/probes/speed_probe.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fixtures.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::ReadFixture;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(FormatSpeedTableTest, TcpBidirHasBothRows) {
  absl::StatusOr<v1::SpeedResult> r =
      ParseIperf3Json(ReadFixture("iperf3/tcp_bidir.json"));
  ASSERT_TRUE(r.ok());
  const std::string table = FormatSpeedTable(*r);
  EXPECT_THAT(table, HasSubstr("TCP"));
  EXPECT_THAT(table, HasSubstr("client->server"));
  EXPECT_THAT(table, HasSubstr("server->client"));
  EXPECT_THAT(table, HasSubstr("3.56 Gbit/s"));  // forward sent
  EXPECT_THAT(table, HasSubstr("3.29 Gbit/s"));  // reverse received
}

TEST(FormatSpeedTableTest, UdpShowsJitterAndLoss) {
  absl::StatusOr<v1::SpeedResult> r =
      ParseIperf3Json(ReadFixture("iperf3/udp_loss.json"));
  ASSERT_TRUE(r.ok());
  const std::string table = FormatSpeedTable(*r);
  EXPECT_THAT(table, HasSubstr("66244/89620"));
  EXPECT_THAT(table, HasSubstr("73.92%"));
  EXPECT_THAT(table, Not(HasSubstr("server->client")));
}

TEST(FormatSpeedTableTest, FailureShowsTheReason) {
  absl::StatusOr<v1::SpeedResult> r =
      ParseIperf3Json(ReadFixture("iperf3/error_busy.json"));
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(FormatSpeedTable(*r), HasSubstr("FAILED: server busy"));
}

TEST(SpeedCommandTest, RejectsBadArguments) {
  CLI::App app;
  CLI::App* probe = app.add_subcommand("probe");
  RegisterSpeedProbeCommand(*probe);
  EXPECT_THROW(
      app.parse(std::vector<std::string>{"0", "99999", "-p", "speed", "probe"}),
      CLI::ParseError);
  CLI::App app2;
  RegisterSpeedProbeCommand(*app2.add_subcommand("probe"));
  // No host.
  EXPECT_THROW(app2.parse(std::vector<std::string>{"speed", "probe"}),
               CLI::ParseError);
}

}  // namespace
}  // namespace netvigil::agent
