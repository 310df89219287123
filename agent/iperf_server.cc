#include "agent/iperf_server.h"

#include <signal.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/escape.h"
#include "spdlog/spdlog.h"

namespace netvigil::agent {
namespace {

// The last line a child wrote to stderr, bounded; logged through LogValue
// (a child writes anything). Thread-safe: set on the runner's reader thread,
// read by the supervisor.
class LastLine {
 public:
  void Set(absl::string_view line) {
    absl::MutexLock l(&mu_);
    line_ = std::string(line.substr(0, 300));
  }
  std::string Get() const {
    absl::MutexLock l(&mu_);
    return line_;
  }

 private:
  mutable absl::Mutex mu_;
  std::string line_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

IperfServer::IperfServer(ProcessRunner& runner, Clock& clock, uint16_t port,
                         Backoff::Options backoff)
    : runner_(runner), clock_(clock), port_(port), backoff_options_(backoff) {}

IperfServer::~IperfServer() { Stop(); }

void IperfServer::Start() {
  absl::MutexLock lifecycle(&lifecycle_mu_);
  if (supervisor_.joinable()) return;
  {
    absl::MutexLock l(&mu_);
    stopping_ = false;
  }
  supervisor_ = std::thread([this] { Supervise(); });
}

void IperfServer::Stop() {
  absl::MutexLock lifecycle(&lifecycle_mu_);
  if (!supervisor_.joinable()) return;
  pid_t pid;
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    pid = pid_;
  }
  // The supervisor is blocked in Wait on this PID; ending the child wakes it.
  // A child started after this read sees stopping_ and ends itself.
  if (pid > 0) {
    absl::Status s = runner_.Terminate(pid, absl::Seconds(2));
    if (!s.ok() && !absl::IsNotFound(s)) {
      spdlog::warn("iperf3_server_stop port={} pid={} error=\"{}\"", port_, pid,
                   std::string(s.message()));
    }
  }
  supervisor_.join();
  supervisor_ = std::thread();
}

void IperfServer::SetExtraArgs(std::vector<std::string> args) {
  pid_t pid = 0;
  {
    absl::MutexLock l(&mu_);
    if (args == extra_args_) return;
    extra_args_ = std::move(args);
    if (pid_ > 0 && !stopping_) {
      restart_ = true;
      pid = pid_;
    }
  }
  if (pid > 0) {
    spdlog::info("iperf3_server_restart port={} pid={} reason=new_options",
                 port_, pid);
    absl::Status s = runner_.Terminate(pid, absl::Seconds(2));
    if (!s.ok() && !absl::IsNotFound(s)) {
      spdlog::warn("iperf3_server_stop port={} pid={} error=\"{}\"", port_, pid,
                   std::string(s.message()));
    }
  }
}

std::vector<std::string> IperfServer::extra_args() const {
  absl::MutexLock l(&mu_);
  return extra_args_;
}

bool IperfServer::running() const {
  absl::MutexLock l(&mu_);
  return pid_ > 0;
}

pid_t IperfServer::child_pid() const {
  absl::MutexLock l(&mu_);
  return pid_;
}

int IperfServer::starts() const {
  absl::MutexLock l(&mu_);
  return starts_;
}

bool IperfServer::stopping() const {
  absl::MutexLock l(&mu_);
  return stopping_;
}

void IperfServer::SleepUnlessStopped(absl::Duration d) {
  const absl::Duration step = absl::Milliseconds(50);
  while (d > absl::ZeroDuration() && !stopping()) {
    const absl::Duration s = std::min(d, step);
    clock_.SleepFor(s);
    d -= s;
  }
}

void IperfServer::Supervise() {
  Backoff backoff(backoff_options_);
  const std::string port = absl::StrCat(port_);
  // --forceflush: iperf3 buffers its report when writing to a pipe, and a
  // log line an hour late is no log line.
  while (!stopping()) {
    std::vector<std::string> argv = {"iperf3", "-s", "-p", port,
                                     "--forceflush"};
    std::vector<std::string> used_args;
    {
      absl::MutexLock l(&mu_);
      used_args = extra_args_;
      argv.insert(argv.end(), used_args.begin(), used_args.end());
      restart_ = false;
    }
    const absl::Time started = clock_.MonotonicNow();
    // iperf3 writes a dozen lines per test it serves (136 in 10 minutes of
    // a small mesh): they are debug. What an operator needs at info is the
    // server's state (started, exited and why, restarted); the last thing it
    // wrote to stderr goes with its exit, as the likely reason.
    auto last_error = std::make_shared<LastLine>();
    absl::StatusOr<pid_t> pid = runner_.Start(
        argv, [port = port_, last_error](ProcessRunner::Stream stream,
                                         absl::string_view line) {
          if (line.empty() ||
              line.find_first_not_of("- ") == absl::string_view::npos) {
            return;  // iperf3's separator lines carry nothing
          }
          const bool err = stream == ProcessRunner::Stream::kStderr;
          if (err) last_error->Set(line);
          // A peer's iperf3 client can put text in these lines.
          spdlog::debug("iperf3_server port={} stream={} line={}", port,
                        err ? "stderr" : "stdout", LogValue(line));
        });
    if (!pid.ok()) {
      const absl::Duration delay = backoff.Next();
      spdlog::error(
          "iperf3_server_start_failed port={} error=\"{}\" retry_in={}", port_,
          std::string(pid.status().message()), absl::FormatDuration(delay));
      SleepUnlessStopped(delay);
      continue;
    }
    bool stop_now;
    {
      absl::MutexLock l(&mu_);
      pid_ = *pid;
      ++starts_;
      stop_now = stopping_;
      // New options arrived while this child was starting.
      if (!stop_now && extra_args_ != used_args) restart_ = stop_now = true;
    }
    spdlog::info("iperf3_server_started port={} pid={} authenticated={}", port_,
                 *pid, used_args.empty() ? "no" : "yes");
    if (stop_now) (void)runner_.Terminate(*pid, absl::Seconds(2));

    absl::StatusOr<ProcessExit> exit =
        runner_.Wait(*pid, absl::InfiniteDuration());
    bool restart;
    {
      absl::MutexLock l(&mu_);
      pid_ = 0;
      restart = restart_;
    }
    if (stopping()) {
      spdlog::info("iperf3_server_stopped port={} pid={}", port_, *pid);
      break;
    }
    if (restart) continue;  // SetExtraArgs ended it: start again at once
    if (clock_.MonotonicNow() - started >= kStableUptime) backoff.Reset();
    const absl::Duration delay = backoff.Next();
    if (exit.ok()) {
      spdlog::warn(
          "iperf3_server_exited port={} pid={} exit_code={} signal={} "
          "last_stderr={} restart_in={}",
          port_, *pid, exit->exit_code, exit->term_signal,
          LogValue(last_error->Get()), absl::FormatDuration(delay));
    } else {
      spdlog::error(
          "iperf3_server_wait_failed port={} pid={} error=\"{}\" restart_in={}",
          port_, *pid, std::string(exit.status().message()),
          absl::FormatDuration(delay));
    }
    SleepUnlessStopped(delay);
  }
}

}  // namespace netvigil::agent
