// SystemdNotifier against a real datagram socket standing in for systemd.
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/systemd_notify.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace netvigil {
namespace {

// Binds a socket at a fresh path and points NOTIFY_SOCKET at it.
class FakeSystemd {
 public:
  FakeSystemd() {
    char dir[] = "/tmp/nv-notify-XXXXXX";
    dir_ = mkdtemp(dir);
    path_ = dir_ + "/notify";
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, path_.size());
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    timeval tv{0, 50'000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  ~FakeSystemd() {
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    close(fd_);
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }

  // Every message that arrives within `d`.
  std::vector<std::string> Receive(absl::Duration d) {
    std::vector<std::string> out;
    absl::Time end = absl::Now() + d;
    while (absl::Now() < end) {
      char buf[256];
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n > 0) out.emplace_back(buf, n);
    }
    return out;
  }

 private:
  std::string dir_, path_;
  int fd_ = -1;
};

int Count(const std::vector<std::string>& v, const std::string& s) {
  int n = 0;
  for (const auto& m : v) n += (m == s);
  return n;
}

TEST(SystemdNotifyTest, NoSocketIsANoOp) {
  unsetenv("NOTIFY_SOCKET");
  EXPECT_THAT(SystemdNotify("READY=1"), testing::IsOk());
}

TEST(SystemdNotifyTest, RelativeSocketPathIsAnError) {
  setenv("NOTIFY_SOCKET", "relative/path", 1);
  EXPECT_FALSE(SystemdNotify("READY=1").ok());
  unsetenv("NOTIFY_SOCKET");
}

TEST(SystemdNotifyTest, WatchdogIntervalIsHalfAndOnlyForThisPid) {
  unsetenv("WATCHDOG_PID");
  unsetenv("WATCHDOG_USEC");
  EXPECT_EQ(SystemdWatchdogInterval(), absl::ZeroDuration());
  setenv("WATCHDOG_USEC", "3000000", 1);
  EXPECT_EQ(SystemdWatchdogInterval(), absl::Milliseconds(1500));
  setenv("WATCHDOG_PID", absl::StrCat(getpid()).c_str(), 1);
  EXPECT_EQ(SystemdWatchdogInterval(), absl::Milliseconds(1500));
  setenv("WATCHDOG_PID", absl::StrCat(getpid() + 1).c_str(), 1);
  EXPECT_EQ(SystemdWatchdogInterval(), absl::ZeroDuration());
  setenv("WATCHDOG_USEC", "garbage", 1);
  unsetenv("WATCHDOG_PID");
  EXPECT_EQ(SystemdWatchdogInterval(), absl::ZeroDuration());
  unsetenv("WATCHDOG_USEC");
}

TEST(SystemdNotifierTest, ReadyPingsAtHalfTheWatchdogPeriodThenStopping) {
  FakeSystemd systemd;
  setenv("WATCHDOG_USEC", "100000", 1);  // Pings every 50 ms.
  SystemdNotifier notifier;
  notifier.Ready();
  std::vector<std::string> got = systemd.Receive(absl::Milliseconds(500));
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got[0], "READY=1");
  // ~10 expected; generous bounds for a loaded machine.
  EXPECT_GE(Count(got, "WATCHDOG=1"), 4);
  EXPECT_LE(Count(got, "WATCHDOG=1"), 12);
  notifier.Stopping();
  got = systemd.Receive(absl::Milliseconds(200));
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back(), "STOPPING=1");
  // The thread is joined before STOPPING=1: nothing after it.
  EXPECT_TRUE(systemd.Receive(absl::Milliseconds(200)).empty());
}

TEST(SystemdNotifierTest, NoPingWhileUnhealthy) {
  FakeSystemd systemd;
  setenv("WATCHDOG_USEC", "100000", 1);
  std::atomic<bool> healthy{false};
  SystemdNotifier notifier([&] { return healthy.load(); });
  notifier.Ready();
  std::vector<std::string> got = systemd.Receive(absl::Milliseconds(300));
  EXPECT_EQ(Count(got, "READY=1"), 1);
  EXPECT_EQ(Count(got, "WATCHDOG=1"), 0);
  healthy = true;
  got = systemd.Receive(absl::Milliseconds(300));
  EXPECT_GE(Count(got, "WATCHDOG=1"), 2);
  EXPECT_GE(notifier.pings(), 2);
}

TEST(SystemdNotifierTest, NoWatchdogVariableNoThreadAndDestructorIsQuick) {
  FakeSystemd systemd;
  unsetenv("WATCHDOG_USEC");
  {
    SystemdNotifier notifier;
    notifier.Ready();
  }
  std::vector<std::string> got = systemd.Receive(absl::Milliseconds(200));
  EXPECT_EQ(got, std::vector<std::string>{"READY=1"});
}

}  // namespace
}  // namespace netvigil
