// The real process runner against real children (sh, sleep, true).
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agent/sys/process_runner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::IsOk;
using ::netvigil::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

bool Alive(pid_t pid) { return kill(pid, 0) == 0; }

TEST(ProcessRunnerTest, ReportsExitCodeAndCapturesBothStreams) {
  auto runner = MakeRealProcessRunner();
  absl::StatusOr<pid_t> pid =
      runner->Start({"sh", "-c", "echo out-line; echo err-line >&2; exit 7"});
  ASSERT_THAT(pid, IsOk());
  absl::StatusOr<ProcessExit> exit = runner->Wait(*pid, absl::Seconds(10));
  ASSERT_THAT(exit, IsOk());
  EXPECT_EQ(exit->exit_code, 7);
  EXPECT_EQ(exit->term_signal, 0);
  EXPECT_EQ(exit->stdout_text, "out-line\n");
  EXPECT_EQ(exit->stderr_text, "err-line\n");
}

TEST(ProcessRunnerTest, StartWithEnvAddsAndReplacesVariables) {
  setenv("NETVIGIL_TEST_KEPT", "kept", 1);
  setenv("NETVIGIL_TEST_REPLACED", "old", 1);
  auto runner = MakeRealProcessRunner();
  absl::StatusOr<pid_t> pid = runner->StartWithEnv(
      {"/bin/sh", "-c",
       "echo \"$NETVIGIL_TEST_KEPT $NETVIGIL_TEST_REPLACED "
       "$NETVIGIL_TEST_ADDED\""},
      {"NETVIGIL_TEST_REPLACED=new", "NETVIGIL_TEST_ADDED=added"});
  ASSERT_THAT(pid, IsOk());
  absl::StatusOr<ProcessExit> exit = runner->Wait(*pid, absl::Seconds(10));
  ASSERT_THAT(exit, IsOk());
  EXPECT_EQ(exit->stdout_text, "kept new added\n");
  // The agent's own environment is untouched.
  EXPECT_STREQ(getenv("NETVIGIL_TEST_REPLACED"), "old");
  EXPECT_EQ(getenv("NETVIGIL_TEST_ADDED"), nullptr);
}

TEST(ProcessRunnerTest, CapturesLargeOutputWhole) {
  auto runner = MakeRealProcessRunner();
  // 2 MiB: far more than a pipe buffer, so the reader must drain as it goes.
  absl::StatusOr<pid_t> pid =
      runner->Start({"sh", "-c", "head -c 2097152 /dev/zero | tr '\\0' x"});
  ASSERT_THAT(pid, IsOk());
  absl::StatusOr<ProcessExit> exit = runner->Wait(*pid, absl::Seconds(20));
  ASSERT_THAT(exit, IsOk());
  EXPECT_EQ(exit->exit_code, 0);
  EXPECT_EQ(exit->stdout_text.size(), 2097152u);
  EXPECT_FALSE(exit->truncated);
}

TEST(ProcessRunnerTest, TimeoutLeavesChildRunningUntilTerminated) {
  auto runner = MakeRealProcessRunner();
  absl::StatusOr<pid_t> pid = runner->Start({"sleep", "30"});
  ASSERT_THAT(pid, IsOk());
  const absl::Time t0 = absl::Now();
  EXPECT_THAT(runner->Wait(*pid, absl::Milliseconds(200)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_GE(absl::Now() - t0, absl::Milliseconds(190));
  EXPECT_TRUE(Alive(*pid));
  ASSERT_THAT(runner->Terminate(*pid, absl::Seconds(2)), IsOk());
  absl::StatusOr<ProcessExit> exit = runner->Wait(*pid, absl::Seconds(1));
  ASSERT_THAT(exit, IsOk());
  EXPECT_EQ(exit->term_signal, SIGTERM);
  EXPECT_EQ(exit->exit_code, -1);
  EXPECT_FALSE(Alive(*pid));
}

TEST(ProcessRunnerTest, TerminateEscalatesToSigkill) {
  auto runner = MakeRealProcessRunner();
  // A child that ignores SIGTERM; it says so before sleeping, so the test
  // does not race the trap being set.
  absl::StatusOr<pid_t> pid =
      runner->Start({"sh", "-c", "trap '' TERM; echo ready; exec sleep 30"},
                    [](ProcessRunner::Stream, absl::string_view) {});
  ASSERT_THAT(pid, IsOk());
  absl::SleepFor(absl::Milliseconds(300));
  const absl::Time t0 = absl::Now();
  ASSERT_THAT(runner->Terminate(*pid, absl::Milliseconds(300)), IsOk());
  EXPECT_GE(absl::Now() - t0, absl::Milliseconds(290));
  absl::StatusOr<ProcessExit> exit = runner->Wait(*pid, absl::Seconds(1));
  ASSERT_THAT(exit, IsOk());
  EXPECT_EQ(exit->term_signal, SIGKILL);
}

TEST(ProcessRunnerTest, MissingBinaryIsNotFound) {
  auto runner = MakeRealProcessRunner();
  EXPECT_THAT(runner->Start({"netvigil-no-such-program-xyz"}),
              StatusIs(absl::StatusCode::kNotFound, "not found in PATH"));
  EXPECT_THAT(runner->Start({"/nonexistent/iperf3"}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(runner->Start({}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ProcessRunnerTest, UnknownPidIsNotFound) {
  auto runner = MakeRealProcessRunner();
  EXPECT_THAT(runner->Wait(1, absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(runner->Terminate(1, absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(ProcessRunnerTest, LineCallbackGetsEveryLineIncludingTheLastPartial) {
  auto runner = MakeRealProcessRunner();
  absl::Mutex mu;
  std::vector<std::string> lines;
  absl::StatusOr<pid_t> pid = runner->Start(
      {"sh", "-c", "printf 'a\\nb\\n'; printf 'e\\n' >&2; printf 'tail'"},
      [&](ProcessRunner::Stream s, absl::string_view line) {
        absl::MutexLock l(&mu);
        lines.push_back(absl::StrCat(
            s == ProcessRunner::Stream::kStdout ? "out:" : "err:", line));
      });
  ASSERT_THAT(pid, IsOk());
  absl::StatusOr<ProcessExit> exit = runner->Wait(*pid, absl::Seconds(10));
  ASSERT_THAT(exit, IsOk());
  EXPECT_EQ(exit->stdout_text, "");  // not captured when streamed
  absl::MutexLock l(&mu);
  std::sort(lines.begin(), lines.end());
  EXPECT_THAT(lines, ElementsAre("err:e", "out:a", "out:b", "out:tail"));
}

TEST(ProcessRunnerTest, ChildIsKilledWhenTheStartingThreadsProcessDies) {
  // A helper process starts a child and dies; PR_SET_PDEATHSIG must take the
  // child with it.
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  const pid_t helper = fork();
  ASSERT_GE(helper, 0);
  if (helper == 0) {
    auto runner = MakeRealProcessRunner();
    absl::StatusOr<pid_t> pid = runner->Start({"sleep", "30"});
    pid_t p = pid.ok() ? *pid : -1;
    (void)!write(report[1], &p, sizeof(p));
    _exit(0);  // no destructors: the runner does not get to kill it
  }
  close(report[1]);
  pid_t child = -1;
  ASSERT_EQ(read(report[0], &child, sizeof(child)),
            static_cast<ssize_t>(sizeof(child)));
  close(report[0]);
  int st;
  waitpid(helper, &st, 0);
  ASSERT_GT(child, 0);
  // The orphan is reparented to init (or a subreaper) and reaped there.
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    std::string stat_path = absl::StrCat("/proc/", child, "/stat");
    FILE* f = fopen(stat_path.c_str(), "r");
    if (f == nullptr) {
      gone = true;
      break;
    }
    char buf[512] = {0};
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    std::string s(buf, n);
    // Field 3 is the state; Z is dead but not reaped yet.
    size_t rp = s.rfind(')');
    if (rp != std::string::npos && rp + 2 < s.size() && s[rp + 2] == 'Z')
      gone = true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  if (!gone) kill(child, SIGKILL);
  EXPECT_TRUE(gone);
}

TEST(ProcessRunnerTest, ConcurrentWaitAndTerminate) {
  auto runner = MakeRealProcessRunner();
  absl::StatusOr<pid_t> pid = runner->Start({"sleep", "30"});
  ASSERT_THAT(pid, IsOk());
  absl::StatusOr<ProcessExit> exit = absl::UnknownError("not set");
  std::thread waiter([&] { exit = runner->Wait(*pid, absl::Seconds(20)); });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_THAT(runner->Terminate(*pid, absl::Seconds(2)), IsOk());
  waiter.join();
  ASSERT_THAT(exit, IsOk());
  EXPECT_EQ(exit->term_signal, SIGTERM);
}

}  // namespace
}  // namespace netvigil::agent
