#include "collector/notify/child_process.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/escape.h"

namespace netvigil::collector {
namespace {

constexpr size_t kHeadBytes = 4096;

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// Reads what is there; false at EOF or a hard error.
bool Drain(int fd, std::string* head) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      const size_t room = kHeadBytes - std::min(kHeadBytes, head->size());
      head->append(buf, std::min(room, static_cast<size_t>(n)));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
}

bool Reap(pid_t pid, int* status) {
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno == EINTR) continue;
    return false;
  }
}

}  // namespace

absl::StatusOr<ChildResult> RunChild(const std::vector<std::string>& argv,
                                     const std::string& input,
                                     absl::Duration timeout,
                                     absl::Duration kill_grace) {
  if (argv.empty() || argv[0].empty()) {
    return absl::InvalidArgumentError("no program to run");
  }
  // Writing to a child that closed its stdin must be an error, not the
  // end of the collector; children get the default back before exec.
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { signal(SIGPIPE, SIG_IGN); });

  std::vector<std::string> copies = argv;
  std::vector<char*> args;
  for (std::string& a : copies) args.push_back(a.data());
  args.push_back(nullptr);

  int in[2], out[2], err[2], ex[2];
  if (pipe2(in, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]), close(in[1]);
    return absl::InternalError("pipe failed");
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    return absl::InternalError("pipe failed");
  }
  if (pipe2(ex, O_CLOEXEC) != 0) {
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    close(err[0]), close(err[1]);
    return absl::InternalError("pipe failed");
  }
  sigset_t none;
  sigemptyset(&none);
  const pid_t pid = fork();
  if (pid == 0) {
    // The child: async-signal-safe calls only until exec.
    setpgid(0, 0);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, nullptr);
    // The collector blocks its stop signals in every thread (sigwait in
    // main); the child must feel SIGTERM.
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    // Nothing else of the collector's (sockets, the database) reaches the
    // program: every other descriptor closes at exec; ex[1] stays open
    // until then to report a failed exec.
    syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
    execv(args[0], args.data());
    int e = errno;
    (void)!write(ex[1], &e, sizeof e);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  close(ex[1]);
  if (pid < 0) {
    close(in[1]), close(out[0]), close(err[0]), close(ex[0]);
    return absl::InternalError(absl::StrCat("fork failed: ", strerror(errno)));
  }
  setpgid(pid, pid);  // also here: no race with the kill below
  int exec_errno = 0;
  ssize_t got;
  do {
    got = read(ex[0], &exec_errno, sizeof exec_errno);
  } while (got < 0 && errno == EINTR);
  close(ex[0]);
  if (got == static_cast<ssize_t>(sizeof exec_errno)) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    close(in[1]), close(out[0]), close(err[0]);
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot run ", Escape(argv[0]), ": ", strerror(exec_errno)));
  }
  int fds[3] = {in[1], out[0], err[0]};
  for (int fd : fds) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  if (input.empty()) CloseFd(fds[0]);

  ChildResult result;
  const absl::Time deadline = absl::Now() + timeout;
  size_t written = 0;
  int status = 0;
  bool reaped = false;
  while (!reaped) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    pollfd p[3];
    int n = 0;
    int which[3];
    for (int i = 0; i < 3; ++i) {
      if (fds[i] < 0) continue;
      p[n].fd = fds[i];
      p[n].events = i == 0 ? POLLOUT : POLLIN;
      p[n].revents = 0;
      which[n++] = i;
    }
    // Short polls: the child may exit while a grandchild holds the pipes.
    const int ms = static_cast<int>(
        std::min<int64_t>(50, absl::ToInt64Milliseconds(left) + 1));
    if (poll(p, n, ms) < 0 && errno != EINTR) break;
    for (int k = 0; k < n; ++k) {
      const int i = which[k];
      if (p[k].revents == 0) continue;
      if (i == 0) {
        ssize_t w =
            write(fds[0], input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) ||
            written == input.size() || (p[k].revents & (POLLERR | POLLHUP))) {
          CloseFd(fds[0]);
        }
      } else if (!Drain(fds[i],
                        i == 1 ? &result.stdout_head : &result.stderr_head)) {
        CloseFd(fds[i]);
      }
    }
    reaped = Reap(pid, &status);
  }
  if (!reaped) {
    result.timed_out = true;
    kill(-pid, SIGTERM);
    const absl::Time hard = absl::Now() + kill_grace;
    while (!(reaped = Reap(pid, &status)) && absl::Now() < hard) {
      usleep(20'000);
    }
    if (!reaped) {
      kill(-pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    // Whatever else of the group outlived its leader goes too.
    kill(-pid, SIGKILL);
  } else {
    // Collect what the child wrote just before it exited.
    for (int i = 1; i < 3; ++i) {
      if (fds[i] >= 0) {
        Drain(fds[i], i == 1 ? &result.stdout_head : &result.stderr_head);
      }
    }
  }
  for (int& fd : fds) CloseFd(fd);
  if (WIFEXITED(status)) result.exit_status = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

std::string DescribeChild(const ChildResult& r, absl::Duration timeout) {
  std::string out;
  if (r.timed_out) {
    out = absl::StrCat("killed after the ", absl::FormatDuration(timeout),
                       " timeout");
  } else if (r.signal != 0) {
    out = absl::StrCat("killed by signal ", r.signal);
  } else {
    out = absl::StrCat("exit status ", r.exit_status);
  }
  std::string line = r.stderr_head.substr(0, r.stderr_head.find('\n'));
  if (line.size() > 200) line.resize(200);
  if (!line.empty()) absl::StrAppend(&out, "; stderr: ", Escape(line));
  return out;
}

}  // namespace netvigil::collector
