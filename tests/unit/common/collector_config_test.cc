#include "common/collector_config.h"

#include "absl/strings/str_cat.h"
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

TEST(CollectorConfigTest, AnEmptyMappingGivesDefaults) {
  auto c = ParseCollectorConfig("{}\n", "empty.yaml");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->agent_listen, "0.0.0.0:7411");
  EXPECT_EQ(c->database_read_dsn, "") << "reads go to database.dsn";
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
  EXPECT_EQ(c->database_read_dsn, "host=/tmp/replica dbname=nv");
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
                "c.yaml:2:3: unknown field 'listen.enrol'"},
        // A key given twice: yaml-cpp keeps both and answers with the first,
        // so the line that looks like it wins would be ignored.
        BadCase{"probes:\n  path:\n    count: 3\n    every: 5s\n    count: 9\n",
                "c.yaml:5:5: field 'probes.path.count': given twice, on line 3 "
                "and on line 5"},
        BadCase{"database:\n  dsn: a\nagents: {}\ndatabase:\n  dsn: b\n",
                "c.yaml:4:1: field 'database': given twice, on line 1 and on "
                "line 4"},
        BadCase{"probes:\n  path:\n    targets:\n      - name: a\n        "
                "address: x\n        address: y\n",
                "c.yaml:6:9: field 'probes.path.targets[0].address': given "
                "twice, on line 5 and on line 6"},
        // Listen addresses: gRPC would bind another port for 99999.
        BadCase{"listen:\n  agents: \"0.0.0.0:99999\"\n",
                "c.yaml:2:11: field 'listen.agents': expected HOST:PORT with a "
                "port from 1 to 65535"},
        BadCase{"listen:\n  agents: \"0.0.0.0:0\"\n",
                "c.yaml:2:11: field 'listen.agents': expected HOST:PORT"},
        BadCase{"listen:\n  enroll: \"7412\"\n",
                "c.yaml:2:11: field 'listen.enroll': expected HOST:PORT"},
        BadCase{"listen:\n  query_tcp: \"fd00::1:7413\"\n",
                "c.yaml:2:14: field 'listen.query_tcp': expected HOST:PORT"},
        BadCase{"listen:\n  agents: \"10.0.0.1:-1\"\n",
                "field 'listen.agents': expected HOST:PORT"},
        BadCase{"listen:\n  agents: \"\"\n",
                "c.yaml:2:11: field 'listen.agents' must not be empty"},
        BadCase{"listen:\n  agents: \"10.0.0.1:7411\"\n  enroll: "
                "\"0.0.0.0:7411\"\n",
                "c.yaml:3:11: field 'listen.enroll' (0.0.0.0:7411) takes the "
                "same port as listen.agents"},
        // Cross-field errors name the line of the field.
        BadCase{"agents:\n  heartbeat_interval: 10s\n  heartbeat_timeout: "
                "5s\n",
                "c.yaml:3:22: field 'agents.heartbeat_timeout' (5s) must be "
                "at least twice"},
        BadCase{"agents:\n  heartbeat_interval: 30s\n",
                "c.yaml:2:23: field 'agents.heartbeat_timeout' (20s) must be "
                "at least twice"},
        BadCase{"probes:\n  speed:\n    duration: 40s\n",
                "c.yaml:3:15: field 'probes.speed.duration' (40s) exceeds"},
        BadCase{"retention:\n  raw_days: 30\n  hourly_days: 10\n",
                "c.yaml:3:16: field 'retention.hourly_days' (10) must not be "
                "less than retention.raw_days (30)"},
        BadCase{"retention:\n  events_days: 0\n", "retention.events_days"},
        BadCase{"retention:\n  resolved_alert_days: 9\n",
                "resolved_alert_days"},
        BadCase{"database:\n  dsn: \"\"\n",
                "c.yaml:2:8: field 'database.dsn' must not be empty"},
        BadCase{"listen:\n  query_socket: \"\"\n",
                "c.yaml:2:17: field 'listen.query_socket': the Query service "
                "needs"},
        // A period shorter than one test's slot runs nothing, ever.
        BadCase{"probes:\n  speed:\n    period: 12s\n    duration: 10s\n",
                "c.yaml:3:13: field 'probes.speed.period' (12s) is shorter "
                "than one test's slot (probes.speed.duration 10s + "
                "slot_overhead 3s = 13s)"},
        BadCase{"probes:\n  speed:\n    slot_overhead: 11m\n",
                "c.yaml:3:20: field 'probes.speed.slot_overhead': must be "
                "between 0 and 10m"}));

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
  auto d = ParseCollectorConfig("{}", "d.yaml");
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->enroll_listen, "0.0.0.0:7412");
  EXPECT_TRUE(d->pki_server_names.empty());
}

TEST(CollectorConfigTest, MetricsListenOnLoopbackOnly) {
  auto off = ParseCollectorConfig("{}", "d.yaml");
  ASSERT_THAT(off, IsOk());
  EXPECT_EQ(off->metrics_listen, "") << "off by default";
  for (const char* ok : {"127.0.0.1:9464", "127.0.0.2:9464", "[::1]:9464"}) {
    auto c = ParseCollectorConfig(
        absl::StrCat("listen:\n  metrics: \"", ok, "\"\n"), "c.yaml");
    ASSERT_THAT(c, IsOk()) << ok;
    EXPECT_EQ(c->metrics_listen, ok);
  }
  for (const char* bad : {"0.0.0.0:9464", "192.168.1.2:9464", "[::]:9464",
                          "localhost:9464", "[fd00::1]:9464"}) {
    auto c = ParseCollectorConfig(
        absl::StrCat("listen:\n  metrics: \"", bad, "\"\n"), "c.yaml");
    EXPECT_THAT(c, StatusIs(absl::StatusCode::kInvalidArgument,
                            "loopback address only"))
        << bad;
  }
  EXPECT_THAT(ParseCollectorConfig("listen:\n  agents: \"127.0.0.1:7411\"\n"
                                   "  metrics: \"127.0.0.1:7411\"\n",
                                   "c.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "takes the same port as listen.agents"));
}

TEST(CollectorConfigTest, AnEmptyFileIsRefused) {
  for (const char* text : {"", "\n\n", "# only a comment\n", "---\n"}) {
    EXPECT_THAT(ParseCollectorConfig(text, "e.yaml"),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         "e.yaml: the file is empty"))
        << "'" << text << "'";
  }
}

TEST(CollectorConfigTest, ListenAddressesThatWork) {
  auto c = ParseCollectorConfig(
      "listen:\n  agents: \"[::]:7411\"\n  enroll: \"nas.home.arpa:7412\"\n"
      "  query_tcp: \"[fd00::1]:65535\"\n",
      "c.yaml");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->agent_listen, "[::]:7411");
  auto d = ParseCollectorConfig(
      "listen:\n  agents: \"127.0.0.1:1\"\n"
      "  enroll: \"\"\n",
      "c.yaml");
  ASSERT_THAT(d, IsOk());
  EXPECT_TRUE(d->enroll_listen.empty()) << "empty: no enrollment listener";
}

TEST(CollectorConfigTest, WhereEachFieldIsKept) {
  auto c = ParseCollectorConfig(
      "probes:\n  speed:\n    period: 5m\n    slot_overhead: 1s\n", "c.yaml");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->speed_period, absl::Minutes(5));
  EXPECT_EQ(c->speed_slot_overhead, absl::Seconds(1));
  EXPECT_EQ(c->where.at("probes.speed.period"), "c.yaml:3:13");
  EXPECT_EQ(WhereInConfig(*c, {"probes.speed.duration", "probes.speed.period"}),
            "c.yaml:3:13: ");
  EXPECT_EQ(WhereInConfig(*c, {"agents.heartbeat_timeout"}), "c.yaml: ");
  EXPECT_EQ(DefaultCollectorConfig().speed_slot_overhead, absl::Seconds(3));
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
