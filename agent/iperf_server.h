// Keeps Debian's `iperf3 -s -p PORT` running as a child of the agent, so that
// peers (and any stock iperf3 client) can test against this host: restarted
// with exponential backoff when it dies, ended with the agent. Its state
// changes are logged at info (started, stopped, restarted for new options)
// or warn (exited, with its last stderr line); its output lines at debug.
// Thread-safe: Start, Stop and the accessors may be called from any thread.
#ifndef NETVIGIL_AGENT_IPERF_SERVER_H_
#define NETVIGIL_AGENT_IPERF_SERVER_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/sys/process_runner.h"
#include "common/backoff.h"
#include "common/clock.h"

namespace netvigil::agent {

class IperfServer {
 public:
  // A child that stayed up this long was healthy: the next death restarts
  // after the initial backoff again.
  static constexpr absl::Duration kStableUptime = absl::Seconds(60);

  IperfServer(ProcessRunner& runner, Clock& clock, uint16_t port,
              Backoff::Options backoff = {});
  ~IperfServer();  // Stop()s
  IperfServer(const IperfServer&) = delete;
  IperfServer& operator=(const IperfServer&) = delete;

  // Starts the supervisor thread (which starts the child). No-op when
  // already started.
  void Start();
  // Ends the child (SIGTERM, then SIGKILL) and the supervisor; returns when
  // both are gone. No-op when not started. Start may be called again.
  void Stop();

  // Options added to `iperf3 -s` from the next start on (iperf3's
  // authentication: --rsa-private-key-path, --authorized-users-path). When
  // they differ from the current ones, a running child is ended and started
  // again at once with them (a test in progress is cut). Any time.
  void SetExtraArgs(std::vector<std::string> args);
  std::vector<std::string> extra_args() const;

  // True while an iperf3 child is up (it may still be binding its port).
  bool running() const;
  // The current child's PID, or 0.
  pid_t child_pid() const;
  // How many times a child has been started since construction.
  int starts() const;
  uint16_t port() const { return port_; }

 private:
  void Supervise();
  // Sleeps `d` in short steps through the clock, returning early on Stop.
  void SleepUnlessStopped(absl::Duration d);
  bool stopping() const;

  ProcessRunner& runner_;  // Not owned.
  Clock& clock_;           // Not owned.
  const uint16_t port_;
  const Backoff::Options backoff_options_;

  absl::Mutex lifecycle_mu_;  // serialises Start and Stop
  std::thread supervisor_ ABSL_GUARDED_BY(lifecycle_mu_);

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  pid_t pid_ ABSL_GUARDED_BY(mu_) = 0;
  int starts_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> extra_args_ ABSL_GUARDED_BY(mu_);
  bool restart_ ABSL_GUARDED_BY(mu_) = false;  // ended for new arguments
};

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_IPERF_SERVER_H_
