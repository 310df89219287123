#include "common/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace netvigil {

absl::Status SystemdNotify(absl::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return absl::OkStatus();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const size_t len = std::strlen(path);
  if (len >= sizeof(addr.sun_path) || (path[0] != '/' && path[0] != '@')) {
    return absl::InvalidArgumentError(
        absl::StrCat("NOTIFY_SOCKET is not a usable socket path: ", path));
  }
  std::memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';  // Abstract namespace.
  const socklen_t addr_len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("notify socket: ", std::strerror(errno)));
  }
  ssize_t n = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                     reinterpret_cast<const sockaddr*>(&addr), addr_len);
  int err = errno;
  close(fd);
  if (n < 0) {
    return absl::UnavailableError(
        absl::StrCat("notify ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

absl::Duration SystemdWatchdogInterval() {
  const char* usec_text = std::getenv("WATCHDOG_USEC");
  uint64_t usec = 0;
  if (usec_text == nullptr || !absl::SimpleAtoi(usec_text, &usec) ||
      usec == 0) {
    return absl::ZeroDuration();
  }
  // systemd sets WATCHDOG_PID to the main PID; a child that inherited the
  // environment must not ping on the parent's behalf.
  const char* pid_text = std::getenv("WATCHDOG_PID");
  int64_t pid = 0;
  if (pid_text != nullptr &&
      (!absl::SimpleAtoi(pid_text, &pid) || pid != getpid())) {
    return absl::ZeroDuration();
  }
  return absl::Microseconds(usec) / 2;
}

SystemdNotifier::SystemdNotifier(std::function<bool()> healthy)
    : healthy_(std::move(healthy)) {}

SystemdNotifier::~SystemdNotifier() { StopThread(); }

void SystemdNotifier::Ready() {
  absl::Status s = SystemdNotify("READY=1");
  if (!s.ok())
    spdlog::warn("sd_notify_failed state=READY error=\"{}\"",
                 std::string(s.message()));
  const absl::Duration every = SystemdWatchdogInterval();
  if (every <= absl::ZeroDuration()) return;
  absl::MutexLock l(&mu_);
  if (stop_ || thread_.joinable()) return;
  thread_ = std::thread([this, every] { WatchdogLoop(every); });
  spdlog::info("watchdog_started every_ms={}",
               absl::ToInt64Milliseconds(every));
}

void SystemdNotifier::Stopping() {
  StopThread();
  absl::Status s = SystemdNotify("STOPPING=1");
  if (!s.ok()) {
    spdlog::warn("sd_notify_failed state=STOPPING error=\"{}\"",
                 std::string(s.message()));
  }
}

int SystemdNotifier::pings() const {
  absl::MutexLock l(&mu_);
  return pings_;
}

void SystemdNotifier::StopThread() {
  std::thread t;
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
    wake_.NotifyAll();
    t = std::move(thread_);
  }
  if (t.joinable()) t.join();
}

void SystemdNotifier::WatchdogLoop(absl::Duration every) {
  absl::MutexLock l(&mu_);
  while (!stop_) {
    mu_.Unlock();
    const bool healthy = !healthy_ || healthy_();
    absl::Status s = healthy ? SystemdNotify("WATCHDOG=1") : absl::OkStatus();
    mu_.Lock();
    if (!healthy) {
      spdlog::warn("watchdog_skipped reason=unhealthy");
    } else if (!s.ok()) {
      spdlog::warn("sd_notify_failed state=WATCHDOG error=\"{}\"",
                   std::string(s.message()));
    } else {
      ++pings_;
    }
    wake_.WaitFor(mu_, every,
                  [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stop_; });
  }
}

}  // namespace netvigil
