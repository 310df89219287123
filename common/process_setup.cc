#include "common/process_setup.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/synchronization/mutex.h"

namespace netvigil {

void SetUpProcess() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

void LowerThisThreadsPriority(int by) {
  // On Linux PRIO_PROCESS names one thread: the process id is the main
  // thread's.
  errno = 0;
  const int main_nice = getpriority(PRIO_PROCESS, static_cast<id_t>(getpid()));
  if (errno != 0) return;
  const auto tid = static_cast<id_t>(syscall(SYS_gettid));
  const int now = getpriority(PRIO_PROCESS, tid);
  if (errno != 0) return;
  const int target = std::min(19, main_nice + by);
  if (now < target) setpriority(PRIO_PROCESS, tid, target);
}

void NameThisThread(const char* name) {
  pthread_setname_np(pthread_self(), name);
}

}  // namespace netvigil
