#include "agent/sys/process_runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"

namespace netvigil::agent {
namespace {

// iperf3 --json for a long test is a few hundred KiB; anything far past that
// is a runaway child, not a result worth keeping.
constexpr size_t kCaptureCap = 16 << 20;
// After the child is gone, how long a grandchild holding the pipes may keep
// the reader waiting.
constexpr int kDrainAfterExitMs = 200;

int PollMillis(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return -1;
  if (d <= absl::ZeroDuration()) return 0;
  const int64_t ms =
      absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1)));
  return ms > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(ms);
}

// True when `fd` became readable within `timeout` (EINTR retried with the
// remaining time).
bool PollReadable(int fd, absl::Duration timeout) {
  const absl::Time deadline = timeout == absl::InfiniteDuration()
                                  ? absl::InfiniteFuture()
                                  : absl::Now() + timeout;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const absl::Duration left = deadline == absl::InfiniteFuture()
                                    ? absl::InfiniteDuration()
                                    : deadline - absl::Now();
    const int n = poll(&p, 1, PollMillis(left));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

struct Child {
  pid_t pid = 0;
  int pidfd = -1;
  int out_fd = -1;
  int err_fd = -1;
  ProcessRunner::LineCallback on_line;
  std::thread reader;

  absl::Mutex mu;
  bool reaped ABSL_GUARDED_BY(mu) = false;
  bool collected ABSL_GUARDED_BY(mu) = false;
  int status ABSL_GUARDED_BY(mu) = 0;
  // Written by the reader thread only, read after it is joined.
  std::string out_text;
  std::string err_text;
  bool truncated = false;

  ~Child() {
    for (int fd : {pidfd, out_fd, err_fd}) {
      if (fd >= 0) close(fd);
    }
  }

  // Collects the exit status when the child has ended. Keeping the zombie
  // until here is what makes kill(pid) safe: the PID cannot be reused.
  void ReapIfExited(bool block) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (reaped) return;
    int st = 0;
    const pid_t r = waitpid(pid, &st, block ? 0 : WNOHANG);
    if (r == pid) {
      reaped = true;
      status = st;
    } else if (r < 0 && errno == ECHILD) {
      // Someone else reaped it (SIGCHLD ignored): the status is lost.
      reaped = true;
      status = -1;
    }
  }

  void ReadLoop() {
    std::string partial[2];
    bool open[2] = {true, true};
    const int fds[2] = {out_fd, err_fd};
    bool gone = false;
    char buf[65536];
    auto emit = [&](int i, absl::string_view data) {
      if (!on_line) {
        std::string& dst = i == 0 ? out_text : err_text;
        if (dst.size() + data.size() > kCaptureCap) {
          truncated = true;
          data = data.substr(0, kCaptureCap - dst.size());
        }
        dst.append(data.data(), data.size());
        return;
      }
      partial[i].append(data.data(), data.size());
      size_t start = 0;
      for (size_t nl; (nl = partial[i].find('\n', start)) != std::string::npos;
           start = nl + 1) {
        on_line(i == 0 ? ProcessRunner::Stream::kStdout
                       : ProcessRunner::Stream::kStderr,
                absl::string_view(partial[i]).substr(start, nl - start));
      }
      partial[i].erase(0, start);
      if (partial[i].size() > kCaptureCap) partial[i].clear();
    };
    while (open[0] || open[1]) {
      pollfd p[3];
      int map[3];
      int n = 0;
      for (int i = 0; i < 2; ++i) {
        if (open[i]) {
          p[n] = {fds[i], POLLIN, 0};
          map[n++] = i;
        }
      }
      if (!gone) {
        p[n] = {pidfd, POLLIN, 0};
        map[n++] = -1;
      }
      const int r = poll(p, n, gone ? kDrainAfterExitMs : -1);
      if (r < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (r == 0) break;  // child gone and the pipes quiet
      for (int k = 0; k < n; ++k) {
        if (p[k].revents == 0) continue;
        if (map[k] < 0) {
          gone = true;
          continue;
        }
        const int i = map[k];
        const ssize_t got = read(fds[i], buf, sizeof(buf));
        if (got > 0) {
          emit(i, absl::string_view(buf, static_cast<size_t>(got)));
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
          open[i] = false;
        }
      }
    }
    if (on_line) {
      for (int i = 0; i < 2; ++i) {
        if (!partial[i].empty()) {
          on_line(i == 0 ? ProcessRunner::Stream::kStdout
                         : ProcessRunner::Stream::kStderr,
                  partial[i]);
        }
      }
    }
  }
};

class RealProcessRunner final : public ProcessRunner {
 public:
  ~RealProcessRunner() override {
    std::map<pid_t, std::shared_ptr<Child>> children;
    {
      absl::MutexLock l(&mu_);
      children.swap(children_);
    }
    for (auto& [pid, child] : children) {
      {
        absl::MutexLock l(&child->mu);
        if (!child->reaped) kill(pid, SIGKILL);
        child->ReapIfExited(/*block=*/true);
      }
      if (child->reader.joinable()) child->reader.join();
    }
  }

  absl::StatusOr<pid_t> Start(const std::vector<std::string>& argv,
                              LineCallback on_line) override {
    return StartWithEnv(argv, {}, std::move(on_line));
  }

  absl::StatusOr<pid_t> StartWithEnv(const std::vector<std::string>& argv,
                                     const std::vector<std::string>& env,
                                     LineCallback on_line) override {
    if (argv.empty()) return absl::InvalidArgumentError("empty argv");
    absl::StatusOr<std::string> path = FindProgram(argv[0]);
    if (!path.ok()) return path.status();
    // Everything the child needs is prepared before fork: between fork and
    // exec only async-signal-safe calls are allowed.
    std::vector<char*> cargv;
    cargv.reserve(argv.size() + 1);
    for (const std::string& a : argv)
      cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    // The child's environment: ours, with `env`'s names replaced.
    std::vector<std::string> envs = env;
    std::vector<char*> cenv;
    for (std::string& e : envs) cenv.push_back(e.data());
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      const absl::string_view entry(*e);
      const absl::string_view name = entry.substr(0, entry.find('='));
      bool replaced = false;
      for (const std::string& mine : envs) {
        replaced = replaced ||
                   absl::string_view(mine).substr(0, mine.find('=')) == name;
      }
      if (!replaced) cenv.push_back(*e);
    }
    cenv.push_back(nullptr);

    int out[2], err[2], exec_err[2];
    if (pipe2(out, O_CLOEXEC) != 0) return Errno("pipe");
    if (pipe2(err, O_CLOEXEC) != 0) {
      CloseAll({out[0], out[1]});
      return Errno("pipe");
    }
    if (pipe2(exec_err, O_CLOEXEC) != 0) {
      CloseAll({out[0], out[1], err[0], err[1]});
      return Errno("pipe");
    }
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
      CloseAll({out[0], out[1], err[0], err[1], exec_err[0], exec_err[1]});
      return Errno("fork");
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);  // the parent died before prctl
      sigset_t all;
      sigemptyset(&all);
      sigprocmask(SIG_SETMASK, &all, nullptr);
      signal(SIGPIPE, SIG_DFL);
      const int devnull = open("/dev/null", O_RDONLY);
      if (devnull >= 0) dup2(devnull, 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      execve(path->c_str(), cargv.data(), cenv.data());
      const int e = errno;
      (void)!write(exec_err[1], &e, sizeof(e));
      _exit(127);
    }
    CloseAll({out[1], err[1], exec_err[1]});
    int child_errno = 0;
    ssize_t got;
    do {
      got = read(exec_err[0], &child_errno, sizeof(child_errno));
    } while (got < 0 && errno == EINTR);
    close(exec_err[0]);
    if (got == sizeof(child_errno)) {
      CloseAll({out[0], err[0]});
      int st;
      waitpid(pid, &st, 0);
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot execute ", *path, ": ", std::strerror(child_errno)));
    }

    auto child = std::make_shared<Child>();
    child->pid = pid;
    child->out_fd = out[0];
    child->err_fd = err[0];
    child->on_line = std::move(on_line);
    child->pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (child->pidfd < 0) {
      absl::Status s = Errno("pidfd_open");
      kill(pid, SIGKILL);
      int st;
      waitpid(pid, &st, 0);
      return s;
    }
    child->reader = std::thread([c = child.get()] { c->ReadLoop(); });
    absl::MutexLock l(&mu_);
    children_[pid] = std::move(child);
    return pid;
  }

  absl::StatusOr<ProcessExit> Wait(pid_t pid, absl::Duration timeout) override {
    std::shared_ptr<Child> child = Find(pid);
    if (child == nullptr) {
      return absl::NotFoundError(absl::StrCat("no child with pid ", pid));
    }
    if (!PollReadable(child->pidfd, timeout)) {
      return absl::DeadlineExceededError(absl::StrCat(
          "pid ", pid, " still running after ", absl::FormatDuration(timeout)));
    }
    ProcessExit exit;
    {
      absl::MutexLock l(&child->mu);
      if (child->collected) {
        return absl::NotFoundError(
            absl::StrCat("pid ", pid, " already waited for"));
      }
      child->collected = true;
      child->ReapIfExited(/*block=*/true);
      if (WIFEXITED(child->status)) {
        exit.exit_code = WEXITSTATUS(child->status);
      } else if (WIFSIGNALED(child->status)) {
        exit.term_signal = WTERMSIG(child->status);
      }
    }
    child->reader.join();
    exit.stdout_text = std::move(child->out_text);
    exit.stderr_text = std::move(child->err_text);
    exit.truncated = child->truncated;
    absl::MutexLock l(&mu_);
    children_.erase(pid);
    return exit;
  }

  absl::Status Terminate(pid_t pid, absl::Duration grace) override {
    std::shared_ptr<Child> child = Find(pid);
    if (child == nullptr) {
      return absl::NotFoundError(absl::StrCat("no child with pid ", pid));
    }
    {
      absl::MutexLock l(&child->mu);
      child->ReapIfExited(/*block=*/false);
      if (child->reaped) return absl::OkStatus();
      kill(pid, SIGTERM);
    }
    if (!PollReadable(child->pidfd, grace)) {
      absl::MutexLock l(&child->mu);
      child->ReapIfExited(/*block=*/false);
      if (!child->reaped) kill(pid, SIGKILL);
    }
    if (!PollReadable(child->pidfd, absl::Seconds(10))) {
      return absl::InternalError(
          absl::StrCat("pid ", pid, " survived SIGKILL"));
    }
    absl::MutexLock l(&child->mu);
    child->ReapIfExited(/*block=*/true);
    return absl::OkStatus();
  }

 private:
  static absl::Status Errno(absl::string_view what) {
    return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
  }
  static void CloseAll(std::initializer_list<int> fds) {
    for (int fd : fds) close(fd);
  }
  std::shared_ptr<Child> Find(pid_t pid) {
    absl::MutexLock l(&mu_);
    auto it = children_.find(pid);
    return it == children_.end() ? nullptr : it->second;
  }

  absl::Mutex mu_;
  std::map<pid_t, std::shared_ptr<Child>> children_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::string> FindProgram(absl::string_view program) {
  if (program.empty()) return absl::InvalidArgumentError("empty program name");
  auto executable = [](const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
           access(p.c_str(), X_OK) == 0;
  };
  if (program.find('/') != absl::string_view::npos) {
    std::string p(program);
    if (executable(p)) return p;
    return absl::NotFoundError(absl::StrCat(program, ": no such executable"));
  }
  const char* env = getenv("PATH");
  const std::string path =
      env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin";
  for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    std::string p = absl::StrCat(dir, "/", program);
    if (executable(p)) return p;
  }
  return absl::NotFoundError(absl::StrCat(program, ": not found in PATH"));
}

std::unique_ptr<ProcessRunner> MakeRealProcessRunner() {
  return std::make_unique<RealProcessRunner>();
}

}  // namespace netvigil::agent
