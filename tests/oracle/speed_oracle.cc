// Interop of the speed probe with stock iperf3 on loopback (127.0.0.1, free
// ports picked at run time): a stock client against the agent's supervised
// server, the agent's client against a stock server with its figures equal
// to the ones in iperf3's own JSON, the supervisor restarting a killed
// server, and a busy server and a refused port as FAILED results.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agent/iperf_server.h"
#include "agent/probes/speed_command.h"
#include "agent/probes/speed_probe.h"
#include "agent/sys/process_runner.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/status_matchers.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using json = nlohmann::json;

// A port nobody listens on right now (the kernel's pick for an ephemeral
// bind on loopback).
uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// True once some socket listens on TCP `port` (from /proc/net/tcp{,6}), so a
// test does not race iperf3's bind. Never connects: a stray connection would
// be taken by iperf3 as a test's control channel.
bool WaitListening(uint16_t port, absl::Duration timeout = absl::Seconds(10)) {
  char hex[8];
  snprintf(hex, sizeof(hex), ":%04X", port);
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
      std::ifstream in(file);
      std::string line;
      while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string sl, local, remote, state;
        f >> sl >> local >> remote >> state;
        if (state == "0A" && absl::EndsWith(local, hex)) return true;
      }
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

// Keeps every child's raw output, so a test can compare parsed figures with
// what iperf3 itself printed.
class RecordingRunner final : public ProcessRunner {
 public:
  explicit RecordingRunner(ProcessRunner& real) : real_(real) {}
  absl::StatusOr<pid_t> Start(const std::vector<std::string>& argv,
                              LineCallback on_line) override {
    return real_.Start(argv, std::move(on_line));
  }
  absl::StatusOr<ProcessExit> Wait(pid_t pid, absl::Duration timeout) override {
    absl::StatusOr<ProcessExit> e = real_.Wait(pid, timeout);
    if (e.ok()) {
      absl::MutexLock l(&mu_);
      outputs_.push_back(e->stdout_text);
    }
    return e;
  }
  absl::Status Terminate(pid_t pid, absl::Duration grace) override {
    return real_.Terminate(pid, grace);
  }
  std::string last_output() {
    absl::MutexLock l(&mu_);
    return outputs_.empty() ? "" : outputs_.back();
  }

 private:
  ProcessRunner& real_;
  absl::Mutex mu_;
  std::vector<std::string> outputs_;
};

// A stock `iperf3 -s` for one test (-1) on `port`.
pid_t StartStockServer(ProcessRunner& runner, uint16_t port,
                       bool one_off = true) {
  std::vector<std::string> argv = {"iperf3",    "-s", "-B",
                                   "127.0.0.1", "-p", absl::StrCat(port)};
  if (one_off) argv.push_back("-1");
  absl::StatusOr<pid_t> pid = runner.Start(argv);
  EXPECT_THAT(pid, IsOk());
  EXPECT_TRUE(WaitListening(port));
  return pid.ok() ? *pid : -1;
}

v1::SpeedTest LoopbackTest(uint16_t port) {
  v1::SpeedTest t;
  t.set_peer_agent("loopback");
  t.set_address("127.0.0.1");
  t.set_port(port);
  t.mutable_duration()->set_seconds(1);
  t.set_schedule_id("oracle-1");
  return t;
}

// iperf3's own numbers, read straight from its JSON.
void ExpectFiguresFromJson(const v1::SpeedFigures& f, const json& sent,
                           const json& received, bool udp) {
  EXPECT_DOUBLE_EQ(f.sent_bps(), sent.at("bits_per_second").get<double>());
  EXPECT_DOUBLE_EQ(f.received_bps(),
                   received.at("bits_per_second").get<double>());
  EXPECT_EQ(f.bytes_sent(), sent.at("bytes").get<uint64_t>());
  EXPECT_EQ(f.bytes_received(), received.at("bytes").get<uint64_t>());
  if (udp) {
    EXPECT_DOUBLE_EQ(f.jitter_ms(), received.at("jitter_ms").get<double>());
    EXPECT_EQ(f.lost_packets(), received.at("lost_packets").get<uint64_t>());
    EXPECT_EQ(f.packets(), received.at("packets").get<uint64_t>());
    EXPECT_DOUBLE_EQ(f.lost_percent(),
                     received.at("lost_percent").get<double>());
  } else {
    EXPECT_EQ(f.retransmits(), sent.at("retransmits").get<uint64_t>());
  }
}

class SpeedOracleTest : public ::testing::Test {
 protected:
  std::unique_ptr<ProcessRunner> runner_ = MakeRealProcessRunner();
};

TEST_F(SpeedOracleTest, StockClientAgainstTheAgentsServer) {
  const uint16_t port = FreePort();
  IperfServer server(*runner_, RealClock(), port);
  server.Start();
  ASSERT_TRUE(WaitListening(port));
  EXPECT_TRUE(server.running());
  for (const char* mode : {"tcp", "reverse", "udp"}) {
    SCOPED_TRACE(mode);
    std::vector<std::string> argv = {
        "iperf3",           "-c", "127.0.0.1", "-p",
        absl::StrCat(port), "-t", "1",         "--json"};
    if (std::string(mode) == "reverse") argv.push_back("-R");
    if (std::string(mode) == "udp") {
      argv.push_back("-u");
      argv.push_back("-b");
      argv.push_back("100M");
    }
    absl::StatusOr<pid_t> pid = runner_->Start(argv);
    ASSERT_THAT(pid, IsOk());
    absl::StatusOr<ProcessExit> exit = runner_->Wait(*pid, absl::Seconds(30));
    ASSERT_THAT(exit, IsOk());
    EXPECT_EQ(exit->exit_code, 0) << exit->stdout_text;
    absl::StatusOr<v1::SpeedResult> r = ParseIperf3Json(exit->stdout_text);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->outcome(), v1::SPEED_OUTCOME_OK) << r->error();
    const v1::SpeedFigures& f =
        std::string(mode) == "reverse" ? r->reverse_figures() : r->forward();
    EXPECT_GT(f.received_bps(), 1e6);
  }
  server.Stop();
  EXPECT_FALSE(server.running());
}

TEST_F(SpeedOracleTest, AgentClientFiguresEqualStockIperf3Json) {
  struct Mode {
    const char* name;
    bool reverse, udp, bidir;
  };
  for (const Mode& m :
       {Mode{"tcp", false, false, false}, Mode{"reverse", true, false, false},
        Mode{"udp", false, true, false}, Mode{"bidir", false, false, true},
        Mode{"udp-reverse", true, true, false}}) {
    SCOPED_TRACE(m.name);
    const uint16_t port = FreePort();
    const pid_t server = StartStockServer(*runner_, port);
    RecordingRunner recorder(*runner_);
    v1::SpeedTest t = LoopbackTest(port);
    t.set_reverse(m.reverse);
    t.set_udp(m.udp);
    if (m.udp) t.set_bitrate_bps(200'000'000);
    v1::SpeedResult r = RunSpeedTest(recorder, t, RealClock(), m.bidir);
    ASSERT_EQ(r.outcome(), v1::SPEED_OUTCOME_OK) << r.error();
    EXPECT_EQ(r.schedule_id(), "oracle-1");
    EXPECT_EQ(r.server(), "loopback");
    EXPECT_EQ(r.udp(), m.udp);
    EXPECT_EQ(r.reverse(), m.reverse);
    EXPECT_EQ(r.bidirectional(), m.bidir);
    EXPECT_LT(r.started_at().seconds(), r.finished_at().seconds() + 1);

    const json doc = json::parse(recorder.last_output());
    const json& end = doc.at("end");
    EXPECT_DOUBLE_EQ(r.duration_s(),
                     end.at("sum_sent").at("seconds").get<double>());
    const v1::SpeedFigures& main =
        m.reverse ? r.reverse_figures() : r.forward();
    ExpectFiguresFromJson(main, end.at("sum_sent"), end.at("sum_received"),
                          m.udp);
    if (m.bidir) {
      ExpectFiguresFromJson(r.reverse_figures(),
                            end.at("sum_sent_bidir_reverse"),
                            end.at("sum_received_bidir_reverse"), m.udp);
    } else {
      EXPECT_FALSE(m.reverse ? r.has_forward() : r.has_reverse_figures());
    }
    EXPECT_GT(main.received_bps(), 1e6);
    ASSERT_THAT(runner_->Wait(server, absl::Seconds(10)),
                IsOk());  // -1: it ends
  }
}

TEST_F(SpeedOracleTest, SupervisorRestartsAKilledServer) {
  const uint16_t port = FreePort();
  IperfServer server(*runner_, RealClock(), port);
  server.Start();
  ASSERT_TRUE(WaitListening(port));
  const pid_t first = server.child_pid();
  ASSERT_GT(first, 0);
  ASSERT_EQ(kill(first, SIGKILL), 0);
  bool restarted = false;
  for (int i = 0; i < 200 && !restarted; ++i) {
    restarted = server.starts() == 2 && server.child_pid() > 0;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(restarted);
  EXPECT_NE(server.child_pid(), first);
  ASSERT_TRUE(WaitListening(port));
  v1::SpeedResult r = RunSpeedTest(*runner_, LoopbackTest(port), RealClock());
  EXPECT_EQ(r.outcome(), v1::SPEED_OUTCOME_OK) << r.error();
  const pid_t second = server.child_pid();
  server.Stop();
  EXPECT_NE(kill(second, 0), 0) << "iperf3 child outlived Stop";
}

TEST_F(SpeedOracleTest, BusyServerIsAFailedResult) {
  const uint16_t port = FreePort();
  IperfServer server(*runner_, RealClock(), port);
  server.Start();
  ASSERT_TRUE(WaitListening(port));
  // A stock client keeps the server busy for 3 s.
  absl::StatusOr<pid_t> hog =
      runner_->Start({"iperf3", "-c", "127.0.0.1", "-p", absl::StrCat(port),
                      "-t", "3", "-b", "10M"});
  ASSERT_THAT(hog, IsOk());
  absl::SleepFor(absl::Milliseconds(700));
  v1::SpeedResult r = RunSpeedTest(*runner_, LoopbackTest(port), RealClock());
  EXPECT_EQ(r.outcome(), v1::SPEED_OUTCOME_FAILED);
  EXPECT_THAT(r.error(), StartsWith("server busy"));
  EXPECT_THAT(runner_->Wait(*hog, absl::Seconds(20)), IsOk());
  server.Stop();
}

TEST_F(SpeedOracleTest, RefusedPortIsAFailedResult) {
  const uint16_t port = FreePort();
  v1::SpeedResult r = RunSpeedTest(*runner_, LoopbackTest(port), RealClock());
  EXPECT_EQ(r.outcome(), v1::SPEED_OUTCOME_FAILED);
  EXPECT_THAT(r.error(), StartsWith("connection refused"));
  EXPECT_THAT(r.error(), HasSubstr("Connection refused"));
}

TEST_F(SpeedOracleTest, MissingIperf3IsAFailedResult) {
  const char* old = getenv("PATH");
  const std::string saved = old ? old : "";
  setenv("PATH", "/nonexistent-netvigil", 1);
  v1::SpeedResult r =
      RunSpeedTest(*runner_, LoopbackTest(FreePort()), RealClock());
  setenv("PATH", saved.c_str(), 1);
  EXPECT_EQ(r.outcome(), v1::SPEED_OUTCOME_FAILED);
  EXPECT_THAT(r.error(), HasSubstr("iperf3: not found in PATH"));
}

TEST_F(SpeedOracleTest, ProbeSpeedCommandPrintsJson) {
  const uint16_t port = FreePort();
  const pid_t server = StartStockServer(*runner_, port);
  CLI::App app;
  absl::Status outcome;
  RegisterSpeedProbeCommand(*app.add_subcommand("probe"), &outcome);
  std::ostringstream captured;
  std::streambuf* old = std::cout.rdbuf(captured.rdbuf());
  try {
    app.parse(std::vector<std::string>{"--json", "1", "-t", absl::StrCat(port),
                                       "-p", "127.0.0.1", "speed", "probe"});
  } catch (const CLI::Error& e) {
    std::cout.rdbuf(old);
    FAIL() << "CLI error " << e.what();
  }
  std::cout.rdbuf(old);
  EXPECT_THAT(outcome, IsOk());
  const json doc = json::parse(captured.str());
  EXPECT_EQ(doc.at("outcome").get<std::string>(), "SPEED_OUTCOME_OK");
  EXPECT_GT(doc.at("forward").at("receivedBps").get<double>(), 1e6);
  EXPECT_THAT(runner_->Wait(server, absl::Seconds(10)), IsOk());
}

}  // namespace
}  // namespace netvigil::agent
