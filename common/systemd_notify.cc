#include "common/systemd_notify.h"

#include <systemd/sd-daemon.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace netvigil {

// libsystemd speaks the protocol (socket address forms, credentials,
// WATCHDOG_PID); this file only turns its negative errno into a Status.
absl::Status SystemdNotify(absl::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  // libsystemd refuses an empty variable as invalid; systemd never sets it
  // empty, so it means "not started by systemd" here, as unset does.
  if (path == nullptr || path[0] == '\0') return absl::OkStatus();
  const std::string text(state);  // sd_notify wants a C string
  const int r = sd_notify(/*unset_environment=*/0, text.c_str());
  if (r >= 0) return absl::OkStatus();
  if (r == -EINVAL) {
    return absl::InvalidArgumentError(
        absl::StrCat("NOTIFY_SOCKET is not a usable socket path: ", path));
  }
  return absl::UnavailableError(
      absl::StrCat("notify ", path, ": ", std::strerror(-r)));
}

absl::Duration SystemdWatchdogInterval() {
  // Zero when WATCHDOG_USEC is unset, zero or not a number, and when
  // WATCHDOG_PID names another process: a child that inherited the
  // environment must not ping on the parent's behalf.
  uint64_t usec = 0;
  if (sd_watchdog_enabled(/*unset_environment=*/0, &usec) <= 0 || usec == 0) {
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
