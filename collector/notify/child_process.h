// Runs a program (argv, no shell) with bytes on its stdin and a deadline,
// for the command and sendmail channels. The child leads a process group of
// its own so that at the deadline the whole group is ended: SIGTERM, then
// SIGKILL after a grace period. Thread-safe (no shared state); safe to call
// from a multi-threaded process (only async-signal-safe calls after fork).
#ifndef NETVIGIL_COLLECTOR_NOTIFY_CHILD_PROCESS_H_
#define NETVIGIL_COLLECTOR_NOTIFY_CHILD_PROCESS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace netvigil::collector {

struct ChildResult {
  bool timed_out = false;   // the group was ended at the deadline
  int exit_status = -1;     // when it exited
  int signal = 0;           // when a signal ended it
  std::string stdout_head;  // at most the first 4 KiB
  std::string stderr_head;  // at most the first 4 KiB
};

// An error only when the program could not be started at all.
absl::StatusOr<ChildResult> RunChild(
    const std::vector<std::string>& argv, const std::string& input,
    absl::Duration timeout, absl::Duration kill_grace = absl::Seconds(2));

// "exit status 3", "killed by signal 9", "killed after the 5s timeout",
// with the first stderr line escaped when there is one.
std::string DescribeChild(const ChildResult& r, absl::Duration timeout);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_NOTIFY_CHILD_PROCESS_H_
