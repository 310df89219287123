// FakeProcReader: a ProcReader over a recorded /proc tree held in memory,
// for unit tests of the socket and file probes. Thread-compatible.
//
// The tree is text (tests/fixtures/proc/*.txt), one record per entry:
//   @file PID/NAME        followed by the file's lines, up to the next '@'
//   @link PID/NAME TARGET a symlink (PID/exe, PID/cwd, PID/fd/N)
//   @error PID/NAME CODE  reading it fails: ENOENT (gone) or EACCES (denied)
//   # comment
#ifndef NETVIGIL_TESTS_TESTING_FAKE_PROC_READER_H_
#define NETVIGIL_TESTS_TESTING_FAKE_PROC_READER_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/sys/proc_reader.h"

namespace netvigil::testing {

class FakeProcReader final : public agent::ProcReader {
 public:
  // Aborts the test binary on a malformed tree: fixtures are ours.
  explicit FakeProcReader(const std::string& tree_text);

  absl::StatusOr<std::vector<int>> ListPids() override;
  absl::Status ForEachFd(
      int pid, absl::FunctionRef<void(int fd, absl::string_view target)> visit,
      uint32_t* unreadable) override;
  absl::StatusOr<std::string> ReadLink(int pid,
                                       absl::string_view name) override;
  absl::StatusOr<std::string> ReadFile(int pid,
                                       absl::string_view name) override;

 private:
  absl::Status ErrorFor(const std::string& path) const;

  std::set<int> pids_;
  std::map<std::string, std::string> files_;
  std::map<std::string, std::string> links_;
  std::map<std::string, int> errors_;  // Path -> errno.
};

}  // namespace netvigil::testing

#endif  // NETVIGIL_TESTS_TESTING_FAKE_PROC_READER_H_
