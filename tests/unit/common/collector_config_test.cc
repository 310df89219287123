#include "common/collector_config.h"

#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testing/fixtures.h"
#include "tests/testing/status_matchers.h"

namespace netvigil {
namespace {

using google::protobuf::util::TimeUtil;
using ::netvigil::testing::IsOk;
using ::netvigil::testing::ReadFixture;
using ::netvigil::testing::StatusIs;
using ::testing::HasSubstr;

TEST(CollectorConfigTest, EmptyFileGivesDefaults) {
  auto c = ParseCollectorConfig("", "empty.yaml");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->agent_listen, "0.0.0.0:7411");
  EXPECT_EQ(c->heartbeat_interval, absl::Seconds(5));
  EXPECT_TRUE(c->plan.path().enabled());
  EXPECT_EQ(c->plan.path().targets_size(), 0) << "no default external target";
  ASSERT_EQ(c->plan.files().watched_dirs_size(), 2);
  EXPECT_EQ(c->plan.files().watched_dirs(0), "/home");
  EXPECT_EQ(c->plan.files().watched_dirs(1), "/root");
}

TEST(CollectorConfigTest, FullFileSetsEveryField) {
  auto c = ParseCollectorConfig(ReadFixture("config/full.yaml"), "full.yaml");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->database_dsn, "host=/tmp/pg dbname=nv");
  EXPECT_EQ(c->agent_listen, "127.0.0.1:9000");
  EXPECT_EQ(c->query_socket, "/tmp/q.sock");
  EXPECT_EQ(c->heartbeat_timeout, absl::Seconds(9));
  EXPECT_EQ(TimeUtil::DurationToSeconds(c->plan.heartbeat_interval()), 2);
  EXPECT_EQ(c->plan.path().count(), 5u);
  EXPECT_EQ(TimeUtil::DurationToMilliseconds(c->plan.path().round_interval()),
            200);
  ASSERT_EQ(c->plan.path().targets_size(), 2);
  EXPECT_EQ(c->plan.path().targets(0).name(), "gateway");
  EXPECT_EQ(c->plan.path().targets(1).name(), "198.18.9.10")
      << "a target without a name is named by its address";
  EXPECT_EQ(TimeUtil::DurationToSeconds(c->plan.sockets().every()), 15);
  ASSERT_EQ(c->plan.files().watched_dirs_size(), 1);
  EXPECT_EQ(c->plan.files().watched_dirs(0), "/srv/home");
  EXPECT_EQ(c->speed_period, absl::Minutes(30));
  EXPECT_EQ(c->max_concurrent_speed_tests, 2u);
  ASSERT_EQ(c->plan.speed().external_targets_size(), 1);
  EXPECT_EQ(c->plan.speed().external_targets(0).port(), 5201u);
  EXPECT_TRUE(c->analysis.IsMap()) << "kept for the analysis parser";
  EXPECT_EQ(c->raw_days, 3u);
  EXPECT_EQ(c->alert_log, "/tmp/alerts.log");
}

struct BadCase {
  const char* yaml;
  const char* expected;  // substring of the error, with file:line:column
};

class CollectorConfigBadTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(CollectorConfigBadTest, NamesFileLineAndField) {
  auto c = ParseCollectorConfig(GetParam().yaml, "c.yaml");
  EXPECT_THAT(
      c, StatusIs(absl::StatusCode::kInvalidArgument, GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CollectorConfigBadTest,
    ::testing::Values(
        // Unknown keys, at the top and nested.
        BadCase{"databse:\n  dsn: x\n", "c.yaml:1:1: unknown field 'databse'"},
        BadCase{"probes:\n  path:\n    cont: 3\n",
                "c.yaml:3:5: unknown field 'probes.path.cont'"},
        // Wrong types.
        BadCase{"probes:\n  path:\n    count: many\n",
                "c.yaml:3:12: field 'probes.path.count': expected a whole "
                "number, got 'many'"},
        BadCase{"agents:\n  heartbeat_interval: soon\n",
                "c.yaml:2:23: field 'agents.heartbeat_interval': expected a "
                "duration"},
        BadCase{"probes:\n  sockets:\n    enabled: maybe\n",
                "c.yaml:3:14: field 'probes.sockets.enabled': expected true "
                "or false"},
        BadCase{"probes:\n  files:\n    watched_dirs: /home\n",
                "c.yaml:3:19: field 'probes.files.watched_dirs': expected a "
                "list"},
        BadCase{"listen: 7411\n",
                "c.yaml:1:9: field 'listen': expected a "
                "mapping"},
        // Bad values.
        BadCase{"probes:\n  path:\n    max_ttl: 300\n",
                "c.yaml:3:14: field 'probes.path.max_ttl': must be between 1 "
                "and 64, got 300"},
        BadCase{"probes:\n  files:\n    watched_dirs: [home]\n",
                "c.yaml:3:20: field 'probes.files.watched_dirs[0]': expected "
                "an absolute folder path"},
        BadCase{"probes:\n  path:\n    targets:\n      - name: a\n",
                "field 'probes.path.targets[0].address': is required"},
        BadCase{"probes:\n  path:\n    targets:\n      - {name: a, address: "
                "x}\n      - {name: a, address: y}\n",
                "duplicate target name 'a'"},
        BadCase{"agents:\n  heartbeat_interval: 10s\n  heartbeat_timeout: "
                "5s\n",
                "'agents.heartbeat_timeout' (5s) must be at least twice"},
        BadCase{"probes:\n  speed:\n    port: 70000\n",
                "field 'probes.speed.port': must be between 1 and 65535"},
        BadCase{"a: [1, 2\n", "c.yaml:2:1: not valid YAML"},
        // Found by tests/fuzz/config_fuzz.cc: strings go to the agents in
        // proto3 messages, which must be UTF-8, or no agent parses its plan.
        BadCase{"probes:\n  path:\n    targets:\n      - address: "
                "caf\xe9\n",
                "c.yaml:4:18: field 'probes.path.targets[0].address': is not "
                "valid UTF-8"},
        BadCase{"probes:\n  files:\n    watched_dirs: [\"/home/\xff\"]\n",
                "field 'probes.files.watched_dirs[0]': expected an absolute "
                "folder path (UTF-8)"},
        // The security keys.
        BadCase{"pki:\n  server_name: nas\n",
                "c.yaml:2:3: unknown field 'pki.server_name'"},
        BadCase{"pki:\n  server_names: [nas, \"bad name\"]\n",
                "c.yaml:2:23: field 'pki.server_names[1]': expected a DNS "
                "name"},
        BadCase{"pki:\n  server_addresses: [10.0.0.300]\n",
                "c.yaml:2:22: field 'pki.server_addresses[0]': expected an "
                "IPv4 or IPv6 address"},
        BadCase{"listen:\n  enrol: x\n",
                "c.yaml:2:3: unknown field 'listen.enrol'"}));

TEST(CollectorConfigTest, SecurityKeys) {
  auto c = ParseCollectorConfig(
      "state_dir: /srv/nv\nlisten:\n  enroll: \"10.0.0.1:7412\"\n"
      "  query_tcp: \"10.0.0.1:7413\"\npki:\n  server_names: [nas.home.arpa, "
      "nas]\n  server_addresses: [10.0.0.1, \"fd00::1\"]\n",
      "c.yaml");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->state_dir, "/srv/nv");
  EXPECT_EQ(c->enroll_listen, "10.0.0.1:7412");
  EXPECT_EQ(c->query_tcp, "10.0.0.1:7413");
  EXPECT_THAT(c->pki_server_names,
              ::testing::ElementsAre("nas.home.arpa", "nas"));
  EXPECT_THAT(c->pki_server_addresses,
              ::testing::ElementsAre("10.0.0.1", "fd00::1"));
  auto d = ParseCollectorConfig("", "d.yaml");
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->enroll_listen, "0.0.0.0:7412");
  EXPECT_TRUE(d->pki_server_names.empty());
}

TEST(CollectorConfigTest, ShippedExampleParses) {
  auto c = ParseCollectorConfig(ReadFixture("../../deploy/collector.yaml"),
                                "collector.yaml");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->enroll_listen, "0.0.0.0:7412");
}

TEST(CollectorConfigTest, MissingFileNamesThePath) {
  auto c = LoadCollectorConfig("/nonexistent/collector.yaml");
  EXPECT_THAT(
      c, StatusIs(absl::StatusCode::kNotFound, "/nonexistent/collector.yaml"));
}

}  // namespace
}  // namespace netvigil
