// ParseIperf3Json on recorded iperf3 3.12 output (tests/fixtures/iperf3), and
// RunSpeedTest's handling of every way a run can end, with a fake runner.
#include "agent/probes/speed_probe.h"

#include <algorithm>
#include <deque>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/utf8.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fixtures.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::FakeClock;
using ::netvigil::testing::IsOk;
using ::netvigil::testing::ReadFixture;
using ::netvigil::testing::StatusIs;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

absl::StatusOr<v1::SpeedResult> ParseFixture(const std::string& name) {
  return ParseIperf3Json(ReadFixture("iperf3/" + name));
}

TEST(ParseIperf3JsonTest, TcpForward) {
  absl::StatusOr<v1::SpeedResult> r = ParseFixture("tcp_forward.json");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->outcome(), v1::SPEED_OUTCOME_OK);
  EXPECT_FALSE(r->udp());
  EXPECT_FALSE(r->reverse());
  EXPECT_FALSE(r->bidirectional());
  EXPECT_EQ(r->server_address(), "127.0.0.1");
  EXPECT_EQ(r->server_port(), 45201u);
  EXPECT_EQ(r->started_at().seconds(), 1795757944);
  EXPECT_DOUBLE_EQ(r->duration_s(), 1.004284);
  ASSERT_TRUE(r->has_forward());
  EXPECT_FALSE(r->has_reverse_figures());
  EXPECT_DOUBLE_EQ(r->forward().sent_bps(), 6639451374.312446);
  EXPECT_DOUBLE_EQ(r->forward().received_bps(), 6595529203.298036);
  EXPECT_EQ(r->forward().bytes_sent(), 833486848u);
  EXPECT_EQ(r->forward().bytes_received(), 832831488u);
  EXPECT_EQ(r->forward().retransmits(), 0u);
}

TEST(ParseIperf3JsonTest, TcpReverseFillsServerToClient) {
  absl::StatusOr<v1::SpeedResult> r = ParseFixture("tcp_reverse.json");
  ASSERT_THAT(r, IsOk());
  EXPECT_TRUE(r->reverse());
  EXPECT_FALSE(r->has_forward());
  ASSERT_TRUE(r->has_reverse_figures());
  EXPECT_DOUBLE_EQ(r->reverse_figures().sent_bps(), 6419451271.1525869);
  EXPECT_DOUBLE_EQ(r->reverse_figures().received_bps(), 6427449507.5246229);
  EXPECT_EQ(r->reverse_figures().bytes_sent(), 803471360u);
  EXPECT_EQ(r->reverse_figures().retransmits(), 1u);
}

TEST(ParseIperf3JsonTest, TcpBidirFillsBothDirections) {
  absl::StatusOr<v1::SpeedResult> r = ParseFixture("tcp_bidir.json");
  ASSERT_THAT(r, IsOk());
  EXPECT_TRUE(r->bidirectional());
  EXPECT_DOUBLE_EQ(r->forward().sent_bps(), 3562538744.4137139);
  EXPECT_DOUBLE_EQ(r->forward().received_bps(), 3476064169.7799268);
  EXPECT_EQ(r->forward().retransmits(), 1u);
  EXPECT_DOUBLE_EQ(r->reverse_figures().sent_bps(), 3385407515.28576);
  EXPECT_DOUBLE_EQ(r->reverse_figures().received_bps(), 3293979719.3356986);
  EXPECT_EQ(r->reverse_figures().bytes_sent(), 423362560u);
  EXPECT_EQ(r->reverse_figures().bytes_received(), 419692544u);
}

TEST(ParseIperf3JsonTest, UdpJitterAndLossComeFromTheReceiver) {
  absl::StatusOr<v1::SpeedResult> r = ParseFixture("udp_forward.json");
  ASSERT_THAT(r, IsOk());
  EXPECT_TRUE(r->udp());
  EXPECT_DOUBLE_EQ(r->forward().sent_bps(), 100128494.50807665);
  EXPECT_DOUBLE_EQ(r->forward().received_bps(), 100046764.88277806);
  EXPECT_DOUBLE_EQ(r->forward().jitter_ms(), 0.00729245695708705);
  EXPECT_EQ(r->forward().packets(), 382u);
  EXPECT_EQ(r->forward().lost_packets(), 0u);
}

TEST(ParseIperf3JsonTest, UdpWithLoss) {
  absl::StatusOr<v1::SpeedResult> r = ParseFixture("udp_loss.json");
  ASSERT_THAT(r, IsOk());
  EXPECT_DOUBLE_EQ(r->forward().sent_bps(), 23492499550.0162);
  EXPECT_DOUBLE_EQ(r->forward().received_bps(), 6127412460.65299);
  EXPECT_EQ(r->forward().lost_packets(), 66244u);
  EXPECT_EQ(r->forward().packets(), 89620u);
  EXPECT_DOUBLE_EQ(r->forward().lost_percent(), 73.9165364873912);
  EXPECT_DOUBLE_EQ(r->forward().jitter_ms(), 0.0381317064225175);
}

TEST(ParseIperf3JsonTest, UdpReverse) {
  absl::StatusOr<v1::SpeedResult> r = ParseFixture("udp_reverse.json");
  ASSERT_THAT(r, IsOk());
  EXPECT_TRUE(r->udp());
  EXPECT_TRUE(r->reverse());
  EXPECT_DOUBLE_EQ(r->reverse_figures().sent_bps(), 50044831.89787434);
  EXPECT_DOUBLE_EQ(r->reverse_figures().received_bps(), 50064447.490803435);
  EXPECT_DOUBLE_EQ(r->reverse_figures().jitter_ms(), 0.0060660774511517536);
  EXPECT_EQ(r->reverse_figures().packets(), 191u);
}

TEST(ParseIperf3JsonTest, UdpBidir) {
  absl::StatusOr<v1::SpeedResult> r = ParseFixture("udp_bidir.json");
  ASSERT_THAT(r, IsOk());
  EXPECT_TRUE(r->udp());
  EXPECT_TRUE(r->bidirectional());
  EXPECT_DOUBLE_EQ(r->forward().jitter_ms(), 0.0043235572212853915);
  EXPECT_DOUBLE_EQ(r->reverse_figures().jitter_ms(), 0.021954159707873233);
  EXPECT_DOUBLE_EQ(r->reverse_figures().received_bps(), 20176391.97505875);
  EXPECT_EQ(r->reverse_figures().packets(), 77u);
}

TEST(ParseIperf3JsonTest, ErrorsAreFailedResultsWithAClassifiedReason) {
  struct Case {
    const char* fixture;
    const char* prefix;
    const char* detail;
  };
  for (const Case& c :
       {Case{"error_busy.json", "server busy: ", "busy running a test"},
        Case{"error_refused.json",
             "connection refused: ", "Connection refused"},
        Case{"error_no_route.json", "no route: ", "Network is unreachable"}}) {
    absl::StatusOr<v1::SpeedResult> r = ParseFixture(c.fixture);
    ASSERT_THAT(r, IsOk()) << c.fixture;
    EXPECT_EQ(r->outcome(), v1::SPEED_OUTCOME_FAILED) << c.fixture;
    EXPECT_THAT(r->error(), StartsWith(c.prefix)) << c.fixture;
    EXPECT_THAT(r->error(), HasSubstr(c.detail)) << c.fixture;
    EXPECT_FALSE(r->has_forward());
  }
}

TEST(ParseIperf3JsonTest, MalformedInputIsAnErrorNotACrash) {
  EXPECT_THAT(ParseFixture("truncated.json"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseIperf3Json(""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseIperf3Json("[1,2]"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseIperf3Json("{\"x\":1}"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseIperf3Json("{\"start\":{}, \"end\":{}}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "sum_sent"));
  // Wrong types and negative numbers become zeros, not exceptions.
  absl::StatusOr<v1::SpeedResult> r = ParseIperf3Json(
      R"({"start":{"test_start":{"protocol":7,"reverse":"yes"},"timestamp":{"timesecs":-5}},
          "end":{"sum_sent":{"bits_per_second":"fast","bytes":-3,"retransmits":1e300},
                 "sum_received":[]}})");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->forward().sent_bps(), 0);
  EXPECT_EQ(r->forward().bytes_sent(), 0u);
  EXPECT_FALSE(r->udp());
  EXPECT_FALSE(r->reverse());
}

// Found by tests/fuzz/iperf3_fuzz.cc: a count beyond uint64_t was converted
// with undefined behaviour, and figures the collector refuses (above 1e13,
// negative) or an error longer than it takes made a result it would refuse
// on every resend.
TEST(ParseIperf3JsonTest, AbsurdFiguresAreBadOutput) {
  absl::StatusOr<v1::SpeedResult> huge_count = ParseIperf3Json(
      R"({"start":{},"end":{"sum_sent":{"bytes":1e30,"seconds":1}}})");
  ASSERT_THAT(huge_count, IsOk());
  EXPECT_EQ(huge_count->forward().bytes_sent(), UINT64_MAX);
  EXPECT_THAT(
      ParseIperf3Json(
          R"({"start":{},"end":{"sum_sent":{"bits_per_second":1e20}}})"),
      StatusIs(absl::StatusCode::kInvalidArgument, "implausible"));
  EXPECT_THAT(
      ParseIperf3Json(R"({"start":{},"end":{"sum_sent":{"seconds":-1}}})"),
      StatusIs(absl::StatusCode::kInvalidArgument, "implausible"));
}

// Found by the fuzzer in CI: a start time after year 9999 made protobuf's
// TimeUtil throw, which ended the agent.
TEST(ParseIperf3JsonTest, StartTimeBeyondProtobufRangeIsLeftUnset) {
  for (const char* secs : {"253402300800", "9223372036854775807", "1e30"}) {
    absl::StatusOr<v1::SpeedResult> r = ParseIperf3Json(
        absl::StrCat(R"({"start":{"timestamp":{"timesecs":)", secs,
                     R"(}},"end":{"sum_sent":{"bytes":1,"seconds":1}}})"));
    ASSERT_THAT(r, IsOk()) << secs;
    EXPECT_FALSE(r->has_started_at()) << secs;
  }
  absl::StatusOr<v1::SpeedResult> last = ParseIperf3Json(
      R"({"start":{"timestamp":{"timesecs":253402300799}},"end":{"sum_sent":{"seconds":1}}})");
  ASSERT_THAT(last, IsOk());
  EXPECT_EQ(last->started_at().seconds(), 253402300799);
}

// Found by the fuzzer: "\u0000" in iperf3's error made a result the collector
// refuses ("contains NUL") on every resend.
TEST(ParseIperf3JsonTest, NulInTheErrorIsEscaped) {
  absl::StatusOr<v1::SpeedResult> r = ParseIperf3Json(
      R"({"error":"unable to connect\u0000: host is unreachable"})");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->error().find('\0'), std::string::npos);
  EXPECT_THAT(r->error(), HasSubstr("connect\\x00: host"));
}

TEST(ParseIperf3JsonTest, LongErrorIsCutAtACharacter) {
  const std::string message = std::string(1023, 'x') + "é and more";
  absl::StatusOr<v1::SpeedResult> r =
      ParseIperf3Json(absl::StrCat(R"({"error":")", message, R"("})"));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->error(), "iperf3: " + std::string(1023, 'x'));
}

// ------------------------------------------------------------ RunSpeedTest

// Plays back scripted child outcomes and records the argv it was given.
class FakeProcessRunner final : public ProcessRunner {
 public:
  struct Script {
    absl::Status start_error = absl::OkStatus();
    bool hangs = false;  // Wait times out until Terminate
    ProcessExit exit;
  };
  void Add(Script s) { scripts_.push_back(std::move(s)); }

  absl::StatusOr<pid_t> StartWithEnv(const std::vector<std::string>& argv,
                                     const std::vector<std::string>& env,
                                     LineCallback on_line) override {
    envs.push_back(env);
    return Start(argv, std::move(on_line));
  }
  absl::StatusOr<pid_t> Start(const std::vector<std::string>& argv,
                              LineCallback) override {
    argvs.push_back(argv);
    current_ = scripts_.front();
    scripts_.pop_front();
    if (!current_.start_error.ok()) return current_.start_error;
    return 4242;
  }
  absl::StatusOr<ProcessExit> Wait(pid_t pid, absl::Duration timeout) override {
    waits.push_back(timeout);
    if (current_.hangs && !terminated) {
      return absl::DeadlineExceededError("still running");
    }
    return current_.exit;
  }
  absl::Status Terminate(pid_t pid, absl::Duration) override {
    terminated = true;
    current_.exit = ProcessExit{-1, 15, "", "", false};
    return absl::OkStatus();
  }

  std::vector<std::vector<std::string>> argvs;
  std::vector<std::vector<std::string>> envs;
  std::vector<absl::Duration> waits;
  bool terminated = false;

 private:
  std::deque<Script> scripts_;
  Script current_;
};

v1::SpeedTest PeerTest() {
  v1::SpeedTest t;
  t.set_peer_agent("nas");
  t.set_address("192.0.2.10");
  t.set_port(5201);
  t.mutable_duration()->set_seconds(3);
  t.set_schedule_id("p1-7");
  return t;
}

TEST(RunSpeedTestTest, OkRunKeepsFiguresAndIdentity) {
  FakeProcessRunner runner;
  runner.Add(
      {absl::OkStatus(), false,
       ProcessExit{0, 0, ReadFixture("iperf3/tcp_forward.json"), "", false}});
  FakeClock clock;
  v1::SpeedResult r = RunSpeedTest(runner, PeerTest(), clock);
  EXPECT_EQ(r.outcome(), v1::SPEED_OUTCOME_OK) << r.error();
  EXPECT_EQ(r.server(), "nas");
  EXPECT_FALSE(r.external());
  EXPECT_EQ(r.schedule_id(), "p1-7");
  EXPECT_EQ(r.server_address(),
            "192.0.2.10");  // what was asked, not the fixture's
  EXPECT_DOUBLE_EQ(r.forward().received_bps(), 6595529203.298036);
  EXPECT_EQ(r.started_at().seconds(), absl::ToUnixSeconds(clock.Now()));
  ASSERT_EQ(runner.argvs.size(), 1u);
  EXPECT_THAT(runner.argvs[0],
              ElementsAre("iperf3", "-c", "192.0.2.10", "-p", "5201", "--json",
                          "-t", "3", "--connect-timeout", "5000"));
  // The wait allows the test plus slack, not forever.
  EXPECT_THAT(runner.waits, ElementsAre(absl::Seconds(3) + kSpeedTestSlack));
}

TEST(RunSpeedTestTest, ArgvForUdpReverseBidirWithBitrate) {
  v1::SpeedTest t = PeerTest();
  t.set_udp(true);
  t.set_reverse(true);
  t.set_bitrate_bps(50'000'000);
  EXPECT_THAT(Iperf3ClientArgv(t, /*bidirectional=*/true),
              ElementsAre("iperf3", "-c", "192.0.2.10", "-p", "5201", "--json",
                          "-t", "3", "--connect-timeout", "5000", "-R",
                          "--bidir", "-u", "-b", "50000000"));
}

TEST(RunSpeedTestTest, ServerBusyIsAFailedResult) {
  FakeProcessRunner runner;
  runner.Add(
      {absl::OkStatus(), false,
       ProcessExit{1, 0, ReadFixture("iperf3/error_busy.json"), "", false}});
  FakeClock clock;
  v1::SpeedResult r = RunSpeedTest(runner, PeerTest(), clock);
  EXPECT_EQ(r.outcome(), v1::SPEED_OUTCOME_FAILED);
  EXPECT_THAT(r.error(), StartsWith("server busy"));
  EXPECT_EQ(r.schedule_id(), "p1-7");
}

TEST(RunSpeedTestTest, HangingClientIsEndedAndReportedAsTimeout) {
  FakeProcessRunner runner;
  runner.Add({absl::OkStatus(), true, {}});
  FakeClock clock;
  v1::SpeedResult r = RunSpeedTest(runner, PeerTest(), clock);
  EXPECT_TRUE(runner.terminated);
  EXPECT_EQ(r.outcome(), v1::SPEED_OUTCOME_FAILED);
  EXPECT_THAT(r.error(), StartsWith("timeout"));
}

TEST(RunSpeedTestTest, MissingIperf3IsAFailedResult) {
  FakeProcessRunner runner;
  runner.Add({absl::NotFoundError("iperf3: not found in PATH"), false, {}});
  FakeClock clock;
  v1::SpeedResult r = RunSpeedTest(runner, PeerTest(), clock);
  EXPECT_EQ(r.outcome(), v1::SPEED_OUTCOME_FAILED);
  EXPECT_THAT(r.error(), HasSubstr("not found in PATH"));
}

TEST(RunSpeedTestTest, GarbageOutputIsAFailedResultWithStderr) {
  FakeProcessRunner runner;
  runner.Add(
      {absl::OkStatus(), false,
       ProcessExit{1, 0, "iperf3: error - something odd", "boom\n", false}});
  FakeClock clock;
  v1::SpeedResult r = RunSpeedTest(runner, PeerTest(), clock);
  EXPECT_EQ(r.outcome(), v1::SPEED_OUTCOME_FAILED);
  EXPECT_THAT(r.error(), HasSubstr("bad iperf3 output"));
  EXPECT_THAT(r.error(), HasSubstr("boom"));
}

// A child's stderr is any bytes, and cutting it at 300 bytes could split a
// character: the error must stay UTF-8 or the collector cannot parse it.
TEST(RunSpeedTestTest, StderrInTheErrorIsUtf8) {
  std::string stderr_text = "\xff";
  for (int i = 0; i < 200; ++i) stderr_text += "é";
  FakeProcessRunner runner;
  runner.Add({absl::OkStatus(), false,
              ProcessExit{1, 0, "not json", stderr_text, false}});
  FakeClock clock;
  v1::SpeedResult r = RunSpeedTest(runner, PeerTest(), clock);
  EXPECT_EQ(r.outcome(), v1::SPEED_OUTCOME_FAILED);
  EXPECT_THAT(r.error(), HasSubstr("stderr: \\xFFé"));
  EXPECT_TRUE(IsValidUtf8(r.error()));
}

TEST(RunSpeedTestTest, KilledClientWithCompleteJsonIsStillFailed) {
  FakeProcessRunner runner;
  runner.Add(
      {absl::OkStatus(), false,
       ProcessExit{-1, 9, ReadFixture("iperf3/tcp_forward.json"), "", false}});
  FakeClock clock;
  v1::SpeedResult r = RunSpeedTest(runner, PeerTest(), clock);
  EXPECT_EQ(r.outcome(), v1::SPEED_OUTCOME_FAILED);
  EXPECT_THAT(r.error(), HasSubstr("signal 9"));
}

TEST(RunSpeedTestTest, RejectsWhatIperf3WouldTakeForAnOptionWithoutRunningIt) {
  FakeProcessRunner runner;
  FakeClock clock;
  v1::SpeedTest t = PeerTest();
  t.set_address("--server");
  EXPECT_THAT(RunSpeedTest(runner, t, clock).error(),
              HasSubstr("invalid server address"));
  t = PeerTest();
  t.set_port(70000);
  EXPECT_THAT(RunSpeedTest(runner, t, clock).error(),
              HasSubstr("invalid server port"));
  t = PeerTest();
  t.mutable_duration()->set_seconds(-1);
  EXPECT_THAT(RunSpeedTest(runner, t, clock).error(),
              HasSubstr("invalid duration"));
  EXPECT_TRUE(runner.argvs.empty());
}

TEST(RunSpeedTestTest, ExternalTargetIsMarkedExternal) {
  FakeProcessRunner runner;
  runner.Add(
      {absl::OkStatus(), false,
       ProcessExit{1, 0, ReadFixture("iperf3/error_refused.json"), "", false}});
  FakeClock clock;
  v1::SpeedTest t = PeerTest();
  t.clear_peer_agent();
  t.set_external_target("isp-box");
  v1::SpeedResult r = RunSpeedTest(runner, t, clock);
  EXPECT_TRUE(r.external());
  EXPECT_EQ(r.server(), "isp-box");
  EXPECT_THAT(r.error(), StartsWith("connection refused"));
}

TEST(RunSpeedTestTest, AuthenticatesWithThePasswordInTheEnvironmentOnly) {
  FakeProcessRunner runner;
  runner.Add(
      {absl::OkStatus(), false,
       ProcessExit{0, 0, ReadFixture("iperf3/tcp_forward.json"), "", false}});
  FakeClock clock;
  const IperfClientAuth auth{"laptop", "s3cret",
                             "/state/iperf3/rsa_public.pem"};
  v1::SpeedResult r =
      RunSpeedTest(runner, PeerTest(), clock, /*bidirectional=*/false, &auth);
  EXPECT_EQ(r.outcome(), v1::SPEED_OUTCOME_OK) << r.error();
  ASSERT_EQ(runner.argvs.size(), 1u);
  const std::vector<std::string>& argv = runner.argvs[0];
  auto after = [&argv](const std::string& flag) {
    auto it = std::find(argv.begin(), argv.end(), flag);
    return it == argv.end() || it + 1 == argv.end() ? std::string() : *(it + 1);
  };
  EXPECT_EQ(after("--username"), "laptop");
  EXPECT_EQ(after("--rsa-public-key-path"), "/state/iperf3/rsa_public.pem");
  for (const std::string& a : argv)
    EXPECT_EQ(a.find("s3cret"), std::string::npos);
  ASSERT_EQ(runner.envs.size(), 1u);
  EXPECT_THAT(runner.envs[0], ElementsAre("IPERF3_PASSWORD=s3cret"));
}

TEST(RunSpeedTestTest, WithoutAuthNoCredentialOptions) {
  FakeProcessRunner runner;
  runner.Add(
      {absl::OkStatus(), false,
       ProcessExit{0, 0, ReadFixture("iperf3/tcp_forward.json"), "", false}});
  FakeClock clock;
  RunSpeedTest(runner, PeerTest(), clock);
  ASSERT_EQ(runner.argvs.size(), 1u);
  EXPECT_THAT(runner.argvs[0], Not(Contains("--username")));
  ASSERT_EQ(runner.envs.size(), 1u);
  EXPECT_THAT(runner.envs[0], IsEmpty());
}

TEST(ParseIperf3JsonTest, AuthorizationFailureIsNotAuthorised) {
  absl::StatusOr<v1::SpeedResult> r = ParseIperf3Json(
      R"({"start": {}, "intervals": [], "end": {},
          "error": "test authorization failed"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome(), v1::SPEED_OUTCOME_FAILED);
  EXPECT_THAT(r->error(), StartsWith(std::string(kSpeedErrorNotAuthorised)));
}

}  // namespace
}  // namespace netvigil::agent
