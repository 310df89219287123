// IperfServer's supervision logic with a fake runner and a fake clock:
// restarts, backoff growth, stop during a backoff, start failures.
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agent/iperf_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "tests/testing/fake_clock.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::FakeClock;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Children are make-believe: Wait blocks until the test "kills" the child or
// Terminate is called.
class FakeRunner final : public ProcessRunner {
 public:
  absl::StatusOr<pid_t> Start(const std::vector<std::string>& argv,
                              LineCallback on_line) override {
    absl::MutexLock l(&mu_);
    argvs_.push_back(argv);
    if (fail_starts_) return absl::NotFoundError("iperf3: not found in PATH");
    const pid_t pid = next_pid_++;
    alive_[pid] = true;
    if (on_line) {
      on_line(Stream::kStdout, "Server listening on 5201 (test #1)");
      on_line(Stream::kStdout, "Accepted connection from 10.0.0.2, port 1");
      if (!stderr_line_.empty()) on_line(Stream::kStderr, stderr_line_);
    }
    return pid;
  }
  absl::StatusOr<ProcessExit> Wait(pid_t pid, absl::Duration timeout) override {
    absl::MutexLock l(&mu_);
    auto dead = [&] { return !alive_[pid]; };
    mu_.Await(absl::Condition(&dead));
    return ProcessExit{-1, signal_[pid], "", "", false};
  }
  absl::Status Terminate(pid_t pid, absl::Duration) override {
    absl::MutexLock l(&mu_);
    ++terminates_;
    if (alive_.count(pid) == 0) return absl::NotFoundError("unknown");
    alive_[pid] = false;
    signal_[pid] = 15;
    return absl::OkStatus();
  }
  void Kill(pid_t pid) {
    absl::MutexLock l(&mu_);
    alive_[pid] = false;
    signal_[pid] = 9;
  }
  void set_stderr_line(std::string line) {
    absl::MutexLock l(&mu_);
    stderr_line_ = std::move(line);
  }
  void set_fail_starts(bool f) {
    absl::MutexLock l(&mu_);
    fail_starts_ = f;
  }
  int start_calls() {
    absl::MutexLock l(&mu_);
    return static_cast<int>(argvs_.size());
  }
  std::vector<std::string> argv(int i) {
    absl::MutexLock l(&mu_);
    return argvs_[i];
  }
  int terminates() {
    absl::MutexLock l(&mu_);
    return terminates_;
  }

 private:
  absl::Mutex mu_;
  pid_t next_pid_ = 1000;
  std::map<pid_t, bool> alive_;
  std::map<pid_t, int> signal_;
  std::vector<std::vector<std::string>> argvs_;
  bool fail_starts_ = false;
  int terminates_ = 0;
  std::string stderr_line_;
};

// Polls `cond` in real time: the supervisor runs on its own thread.
template <typename F>
bool Eventually(F cond) {
  for (int i = 0; i < 500; ++i) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return cond();
}

absl::Duration Total(const std::vector<absl::Duration>& v) {
  absl::Duration t;
  for (absl::Duration d : v) t += d;
  return t;
}

TEST(IperfServerTest, StartsIperf3ServerOnItsPortAndStopsIt) {
  FakeRunner runner;
  FakeClock clock;
  IperfServer server(runner, clock, 5299);
  EXPECT_FALSE(server.running());
  server.Start();
  server.Start();  // idempotent
  ASSERT_TRUE(Eventually([&] { return server.running(); }));
  EXPECT_EQ(server.starts(), 1);
  EXPECT_THAT(runner.argv(0),
              ElementsAre("iperf3", "-s", "-p", "5299", "--forceflush"));
  server.Stop();
  EXPECT_FALSE(server.running());
  EXPECT_EQ(runner.terminates(), 1);
  EXPECT_EQ(runner.start_calls(), 1);  // a stopped server is not restarted
  server.Stop();                       // idempotent
}

TEST(IperfServerTest, RestartsAChildThatDiesWithGrowingBackoff) {
  FakeRunner runner;
  FakeClock clock;
  Backoff::Options opts;
  opts.initial = absl::Seconds(1);
  opts.max = absl::Seconds(8);
  IperfServer server(runner, clock, 5201, opts);
  server.Start();
  ASSERT_TRUE(Eventually([&] { return server.starts() == 1; }));
  const pid_t first = server.child_pid();

  runner.Kill(first);
  ASSERT_TRUE(
      Eventually([&] { return server.starts() == 2 && server.running(); }));
  const absl::Duration after_first = Total(clock.sleeps());
  EXPECT_GE(after_first, absl::Milliseconds(500));
  EXPECT_LE(after_first, absl::Seconds(1));
  EXPECT_NE(server.child_pid(), first);

  runner.Kill(server.child_pid());
  ASSERT_TRUE(
      Eventually([&] { return server.starts() == 3 && server.running(); }));
  const absl::Duration second = Total(clock.sleeps()) - after_first;
  EXPECT_GE(second, absl::Seconds(1));  // doubled
  EXPECT_LE(second, absl::Seconds(2));
  server.Stop();
}

TEST(IperfServerTest, AChildThatWasUpLongEnoughRestartsFast) {
  FakeRunner runner;
  FakeClock clock;
  Backoff::Options opts;
  opts.initial = absl::Seconds(1);
  IperfServer server(runner, clock, 5201, opts);
  server.Start();
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(
        Eventually([&] { return server.starts() == i && server.running(); }));
    runner.Kill(server.child_pid());
  }
  ASSERT_TRUE(
      Eventually([&] { return server.starts() == 4 && server.running(); }));
  const absl::Duration before = Total(clock.sleeps());
  clock.Advance(IperfServer::kStableUptime);  // healthy for a minute
  runner.Kill(server.child_pid());
  ASSERT_TRUE(
      Eventually([&] { return server.starts() == 5 && server.running(); }));
  EXPECT_LE(Total(clock.sleeps()) - before, absl::Seconds(1));
  server.Stop();
}

TEST(IperfServerTest, MissingIperf3KeepsRetryingAndStopStillReturns) {
  FakeRunner runner;
  runner.set_fail_starts(true);
  FakeClock clock;
  IperfServer server(runner, clock, 5201);
  server.Start();
  ASSERT_TRUE(Eventually([&] { return runner.start_calls() >= 3; }));
  EXPECT_FALSE(server.running());
  EXPECT_EQ(server.starts(), 0);
  server.Stop();
  const int calls = runner.start_calls();
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(runner.start_calls(), calls);
  // Recovers once iperf3 is there again.
  runner.set_fail_starts(false);
  server.Start();
  ASSERT_TRUE(Eventually([&] { return server.running(); }));
  server.Stop();
}

TEST(IperfServerTest, NewOptionsRestartTheChildAtOnceWithThem) {
  FakeRunner runner;
  FakeClock clock;
  IperfServer server(runner, clock, 5201);
  server.SetExtraArgs({"--rsa-private-key-path", "/k"});  // before Start
  server.Start();
  ASSERT_TRUE(Eventually([&] { return server.starts() == 1; }));
  EXPECT_THAT(runner.argv(0),
              ElementsAre("iperf3", "-s", "-p", "5201", "--forceflush",
                          "--rsa-private-key-path", "/k"));
  const pid_t first = server.child_pid();

  server.SetExtraArgs({"--rsa-private-key-path", "/k"});  // the same
  server.SetExtraArgs({"--rsa-private-key-path", "/k2"});
  ASSERT_TRUE(
      Eventually([&] { return server.starts() == 2 && server.running(); }));
  EXPECT_NE(server.child_pid(), first);
  EXPECT_THAT(runner.argv(1),
              ElementsAre("iperf3", "-s", "-p", "5201", "--forceflush",
                          "--rsa-private-key-path", "/k2"));
  EXPECT_EQ(runner.terminates(), 1);
  EXPECT_EQ(Total(clock.sleeps()), absl::ZeroDuration());  // no backoff

  server.SetExtraArgs({});  // credentials withdrawn: open server again
  ASSERT_TRUE(Eventually([&] { return server.starts() == 3; }));
  EXPECT_THAT(runner.argv(2),
              ElementsAre("iperf3", "-s", "-p", "5201", "--forceflush"));
  server.Stop();
}

// 136 lines at info in 10 minutes: iperf3's own output is debug; only the
// server's state changes are info (or warn, for an exit, with its reason).
TEST(IperfServerTest, OutputLinesAreDebugAndStateChangesInfo) {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  auto logger = std::make_shared<spdlog::logger>("capture", sink);
  logger->set_pattern("%l %v");
  logger->set_level(spdlog::level::debug);
  std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);
  {
    FakeRunner runner;
    runner.set_stderr_line("iperf3: error - unable to start listener");
    FakeClock clock;
    IperfServer server(runner, clock, 5201);
    server.Start();
    ASSERT_TRUE(Eventually([&] { return server.starts() == 1; }));
    runner.Kill(server.child_pid());
    ASSERT_TRUE(
        Eventually([&] { return server.starts() == 2 && server.running(); }));
    server.Stop();
  }
  spdlog::set_default_logger(previous);

  int output_lines = 0, above_debug = 0;
  for (absl::string_view line : absl::StrSplit(captured.str(), '\n')) {
    if (line.empty()) continue;
    if (absl::StrContains(line, "iperf3_server port=")) {
      ++output_lines;
      EXPECT_TRUE(absl::StartsWith(line, "debug ")) << line;
    } else if (!absl::StartsWith(line, "debug ")) {
      ++above_debug;
    }
  }
  EXPECT_EQ(output_lines, 6);  // 3 lines from each of the two children
  const std::string log = captured.str();
  EXPECT_THAT(log, HasSubstr("info iperf3_server_started port=5201"));
  EXPECT_THAT(log, HasSubstr("warning iperf3_server_exited port=5201"));
  EXPECT_THAT(log, HasSubstr("signal=9 last_stderr=\"iperf3: error - unable "
                             "to start listener\""));
  EXPECT_THAT(log, HasSubstr("info iperf3_server_stopped port=5201"));
  // Started twice, exited once, stopped once.
  EXPECT_EQ(above_debug, 4) << log;
}

}  // namespace
}  // namespace netvigil::agent
