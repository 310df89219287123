// Tells systemd the service's state over $NOTIFY_SOCKET (sd_notify protocol):
// READY=1 once serving, STOPPING=1 at shutdown, and WATCHDOG=1 from a thread
// at half of $WATCHDOG_USEC while the service is healthy. Without
// NOTIFY_SOCKET (not started by systemd) every call is a no-op. The protocol
// itself is libsystemd's sd_notify and sd_watchdog_enabled.
// Thread-safe: Ready(), Stopping() and the destructor may race.
#ifndef NETVIGIL_COMMON_SYSTEMD_NOTIFY_H_
#define NETVIGIL_COMMON_SYSTEMD_NOTIFY_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/monotonic_wait.h"

namespace netvigil {

// Sends one notification datagram ("READY=1", "STATUS=...") to the socket
// named by NOTIFY_SOCKET ('@' prefix: abstract namespace). OK and nothing sent
// when the variable is unset.
absl::Status SystemdNotify(absl::string_view state);

// The watchdog ping interval systemd asked for (half of WATCHDOG_USEC), or
// zero when the watchdog is off or meant for another process (WATCHDOG_PID).
absl::Duration SystemdWatchdogInterval();

class SystemdNotifier {
 public:
  // `healthy` (optional) is asked before each watchdog ping; while it returns
  // false no ping is sent, so systemd restarts a wedged service. It must not
  // block for long.
  explicit SystemdNotifier(std::function<bool()> healthy = nullptr);
  ~SystemdNotifier();  // Stops the watchdog thread.

  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  // READY=1, and starts the watchdog thread when WATCHDOG_USEC is set.
  void Ready();
  // STOPPING=1, and stops the watchdog thread (a stop may take longer than
  // the watchdog period; systemd does not expect pings after STOPPING=1).
  void Stopping();

  // Pings sent so far (for tests).
  int pings() const;

 private:
  void WatchdogLoop(absl::Duration every);
  void StopThread();

  const std::function<bool()> healthy_;
  mutable absl::Mutex mu_;
  MonotonicCondVar wake_;  // pings keep time through wall clock steps
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int pings_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_SYSTEMD_NOTIFY_H_
