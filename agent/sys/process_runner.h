// Starting, waiting for and ending child processes (iperf3), as a seam so the
// speed probe and the iperf3 supervisor are tested with fakes. Implementations
// are thread-safe: Wait and Terminate on one PID may race from two threads.
#ifndef NETVIGIL_AGENT_SYS_PROCESS_RUNNER_H_
#define NETVIGIL_AGENT_SYS_PROCESS_RUNNER_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace netvigil::agent {

// How a child ended, and what it printed (when its output was captured).
struct ProcessExit {
  int exit_code = -1;   // -1 when ended by a signal
  int term_signal = 0;  // 0 when it exited by itself
  std::string stdout_text;
  std::string stderr_text;
  bool truncated = false;  // output went past the capture cap and was cut
};

class ProcessRunner {
 public:
  enum class Stream { kStdout, kStderr };
  // Called from a reader thread, once per complete line (without '\n').
  using LineCallback = std::function<void(Stream, absl::string_view line)>;

  virtual ~ProcessRunner() = default;

  // Starts argv[0] (looked up in PATH when it has no '/') with argv. With
  // `on_line` set, output goes to it line by line and is not captured (a
  // long-lived server); without, it is captured for Wait. NotFound when the
  // program does not exist. The child gets SIGKILL if the *thread* that
  // started it exits (PR_SET_PDEATHSIG), so start long-lived children from a
  // thread that outlives them.
  virtual absl::StatusOr<pid_t> Start(const std::vector<std::string>& argv,
                                      LineCallback on_line = nullptr) = 0;

  // As Start, with `env` ("NAME=value") added to (or replacing in) the
  // agent's environment: for a secret iperf3 takes only from its
  // environment (IPERF3_PASSWORD), never from a command line `ps` shows.
  // The default runs Start when `env` is empty and is Unimplemented
  // otherwise.
  virtual absl::StatusOr<pid_t> StartWithEnv(
      const std::vector<std::string>& argv, const std::vector<std::string>& env,
      LineCallback on_line = nullptr) {
    if (!env.empty()) {
      return absl::UnimplementedError("this runner cannot set a child's env");
    }
    return Start(argv, std::move(on_line));
  }

  // Waits up to `timeout` for the child to end. DeadlineExceeded when it is
  // still running (the child is left alone: call Terminate, then Wait
  // again). NotFound for a PID this runner did not start or already
  // returned from Wait. After a successful Wait the PID is forgotten.
  virtual absl::StatusOr<ProcessExit> Wait(pid_t pid,
                                           absl::Duration timeout) = 0;

  // SIGTERM, then SIGKILL if the child is still alive after `grace`. The
  // child is reaped but stays known until Wait collects its exit. Ok when it
  // had already ended.
  virtual absl::Status Terminate(pid_t pid, absl::Duration grace) = 0;
};

// fork/exec with pipes for stdout and stderr; a reader thread per child.
std::unique_ptr<ProcessRunner> MakeRealProcessRunner();

// Where `program` is in PATH (or itself when it contains '/'); NotFound.
absl::StatusOr<std::string> FindProgram(absl::string_view program);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_SYS_PROCESS_RUNNER_H_
