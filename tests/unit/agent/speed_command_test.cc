// The `probe speed` table and its command-line parsing.
#include "agent/probes/speed_command.h"

#include <stdlib.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/probes/speed_probe.h"
#include "common/report/speed_table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fixtures.h"

namespace netvigil::agent {
namespace {

using ::netvigil::report::FormatSpeedTable;
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
  absl::Status outcome;
  RegisterSpeedProbeCommand(*probe, &outcome);
  EXPECT_THROW(
      app.parse(std::vector<std::string>{"0", "99999", "-p", "speed", "probe"}),
      CLI::ParseError);
  CLI::App app2;
  RegisterSpeedProbeCommand(*app2.add_subcommand("probe"), &outcome);
  // No host.
  EXPECT_THROW(app2.parse(std::vector<std::string>{"speed", "probe"}),
               CLI::ParseError);
}

TEST(ParseIperfBitrateTest, TakesIperf3Suffixes) {
  const std::pair<const char*, uint64_t> good[] = {
      {"0", 0},
      {"1000", 1000},
      {"500K", 500'000},
      {"500k", 500'000},
      {"100M", 100'000'000},
      {"1G", 1'000'000'000},
      {"2.5g", 2'500'000'000},
      {"1T", 1'000'000'000'000},
      {"10T", 10'000'000'000'000},
  };
  for (const auto& [text, bps] : good) {
    absl::StatusOr<uint64_t> got = ParseIperfBitrate(text);
    ASSERT_TRUE(got.ok()) << text << ": " << got.status();
    EXPECT_EQ(*got, bps) << text;
  }
  for (const char* text : {"", "M", "-1M", "100X", "1e9", "0x10", "1.2.3", ".",
                           "100M/10", "nan", "inf", "11T", " 5M x", "1MM"}) {
    absl::StatusOr<uint64_t> got = ParseIperfBitrate(text);
    EXPECT_FALSE(got.ok()) << "'" << text << "' gave " << got.value_or(0);
    if (!got.ok()) {
      EXPECT_THAT(std::string(got.status().message()),
                  HasSubstr(absl::StrCat("'", text, "'")));
    }
  }
}

TEST(SpeedCommandTest, BitrateSuffixesAndAuthenticationFlagsParse) {
  CLI::App app;
  absl::Status outcome;
  RegisterSpeedProbeCommand(*app.add_subcommand("probe"), &outcome);
  // "-b 100M" parses; the callback then stops before any iperf3 run, at the
  // password missing from the environment: a usage error (exit 2), as a
  // Status, not a throw. CLI11 takes a vector of arguments in reverse order.
  unsetenv("IPERF3_PASSWORD");
  app.parse(std::vector<std::string>{"/etc/passwd", "--rsa-public-key-path",
                                     "u", "--username", "192.0.2.1", "100M",
                                     "-b", "speed", "probe"});
  EXPECT_EQ(outcome.code(), absl::StatusCode::kInvalidArgument) << outcome;
  EXPECT_THAT(std::string(outcome.message()),
              HasSubstr("netvigil-agent probe speed: --username needs the "
                        "password in the environment variable "
                        "IPERF3_PASSWORD"));

  CLI::App bad;
  RegisterSpeedProbeCommand(*bad.add_subcommand("probe"), &outcome);
  EXPECT_THROW(bad.parse(std::vector<std::string>{"192.0.2.1", "100X", "-b",
                                                  "speed", "probe"}),
               CLI::ValidationError);

  // --username needs the server's public key, and the other way round.
  CLI::App user;
  RegisterSpeedProbeCommand(*user.add_subcommand("probe"), &outcome);
  EXPECT_THROW(user.parse(std::vector<std::string>{
                   "192.0.2.1", "h1", "--username", "speed", "probe"}),
               CLI::RequiresError);
}

TEST(SpeedCommandTest, HelpShowsTheDefaults) {
  CLI::App app;
  absl::Status outcome;
  RegisterSpeedProbeCommand(*app.add_subcommand("probe"), &outcome);
  const std::string help =
      app.get_subcommand("probe")->get_subcommand("speed")->help();
  EXPECT_THAT(help, HasSubstr("5201"));  // port
  EXPECT_THAT(help, HasSubstr("=10"));   // seconds
}

}  // namespace
}  // namespace netvigil::agent
