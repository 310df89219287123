// FakeProcReader: a ProcReader over a recorded /proc tree held in memory,
// for unit tests of the socket and file probes. Thread-compatible.
//
// The tree is text (tests/fixtures/proc/*.txt), one record per entry:
//   @file PID/NAME        followed by the file's lines, up to the next '@'
//   @link PID/NAME TARGET a symlink (PID/exe, PID/cwd, PID/fd/N)
//   @error PID/NAME CODE  reading it fails: ENOENT (gone), EACCES (denied)
//                         or EMFILE (the reader is out of descriptors)
//   # comment
#ifndef NETVIGIL_TESTS_TESTING_FAKE_PROC_READER_H_
#define NETVIGIL_TESTS_TESTING_FAKE_PROC_READER_H_

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/sys/proc_parse.h"
#include "agent/sys/proc_reader.h"

namespace netvigil::testing {

class FakeProcReader final : public agent::ProcReader {
 public:
  // Aborts the test binary on a malformed tree: fixtures are ours. A
  // lenient reader skips malformed lines instead (the fuzz harness's input
  // is a tree too).
  explicit FakeProcReader(const std::string& tree_text, bool lenient = false);

  // The recorded files' contents and links' targets, by "PID/NAME".
  const std::map<std::string, std::string>& files() const { return files_; }
  const std::map<std::string, std::string>& links() const { return links_; }

  absl::StatusOr<std::vector<int>> ListPids() override;
  // The mode of a wanted fd comes from the recorded PID/fdinfo/N flags;
  // an fd without one is unreadable.
  absl::Status ForEachFd(
      int pid, absl::FunctionRef<bool(absl::string_view target)> want_mode,
      absl::FunctionRef<void(int fd, absl::string_view target, char mode)>
          visit,
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

// Header-only: it uses agent/sys parsers, which the netvigil_testing
// library does not link.

namespace fake_proc_internal {

[[noreturn]] inline void Malformed(absl::string_view line) {
  std::fprintf(stderr, "malformed proc tree line: %.*s\n",
               static_cast<int>(line.size()), line.data());
  std::abort();
}

}  // namespace fake_proc_internal

inline FakeProcReader::FakeProcReader(const std::string& tree_text,
                                      bool lenient) {
  std::string* file = nullptr;  // The @file being filled.
  for (absl::string_view line : absl::StrSplit(tree_text, '\n')) {
    const auto malformed = [&] {
      if (!lenient) fake_proc_internal::Malformed(line);
    };
    if (!absl::StartsWith(line, "@") && !absl::StartsWith(line, "#")) {
      if (file != nullptr) absl::StrAppend(file, line, "\n");
      continue;
    }
    file = nullptr;
    if (absl::StartsWith(line, "#")) continue;
    std::vector<std::string> parts =
        absl::StrSplit(line, absl::MaxSplits(' ', 2));
    int pid;
    if (parts.size() < 2 ||
        !absl::SimpleAtoi(parts[1].substr(0, parts[1].find('/')), &pid)) {
      malformed();
      continue;
    }
    pids_.insert(pid);
    if (parts[0] == "@file") {
      file = &files_[parts[1]];
    } else if (parts[0] == "@link" && parts.size() == 3) {
      links_[parts[1]] = parts[2];
    } else if (parts[0] == "@error" && parts.size() == 3) {
      if (parts[2] == "ENOENT") {
        errors_[parts[1]] = ENOENT;
      } else if (parts[2] == "EACCES") {
        errors_[parts[1]] = EACCES;
      } else if (parts[2] == "EMFILE") {
        errors_[parts[1]] = EMFILE;
      } else {
        malformed();
      }
    } else {
      malformed();
    }
  }
}

inline absl::Status FakeProcReader::ErrorFor(const std::string& path) const {
  auto it = errors_.find(path);
  if (it != errors_.end()) return absl::ErrnoToStatus(it->second, path);
  return absl::NotFoundError(absl::StrCat(path, " not in the recorded tree"));
}

inline absl::StatusOr<std::vector<int>> FakeProcReader::ListPids() {
  return std::vector<int>(pids_.begin(), pids_.end());
}

inline absl::Status FakeProcReader::ForEachFd(
    int pid, absl::FunctionRef<bool(absl::string_view)> want_mode,
    absl::FunctionRef<void(int, absl::string_view, char)> visit,
    uint32_t* unreadable) {
  const std::string dir = absl::StrCat(pid, "/fd");
  if (errors_.count(dir)) return ErrorFor(dir);
  const std::string prefix = dir + "/";
  std::map<int, const std::string*> fds;  // In fd order, as the kernel lists.
  for (auto it = links_.lower_bound(prefix);
       it != links_.end() && absl::StartsWith(it->first, prefix); ++it) {
    int fd;
    if (absl::SimpleAtoi(it->first.substr(prefix.size()), &fd)) {
      fds[fd] = &it->second;
    }
  }
  for (auto it = errors_.lower_bound(prefix);
       it != errors_.end() && absl::StartsWith(it->first, prefix); ++it) {
    ++*unreadable;
  }
  for (const auto& [fd, target] : fds) {
    char mode = '\0';
    if (want_mode(*target)) {
      auto info = files_.find(absl::StrCat(pid, "/fdinfo/", fd));
      absl::StatusOr<std::string> parsed =
          info == files_.end() ? absl::NotFoundError("no fdinfo")
                               : agent::ParseFdinfoMode(info->second);
      if (!parsed.ok()) {
        ++*unreadable;
        continue;
      }
      mode = (*parsed)[0];
    }
    visit(fd, *target, mode);
  }
  return absl::OkStatus();
}

inline absl::StatusOr<std::string> FakeProcReader::ReadLink(
    int pid, absl::string_view name) {
  const std::string path = absl::StrCat(pid, "/", name);
  auto it = links_.find(path);
  if (it == links_.end()) return ErrorFor(path);
  return it->second;
}

inline absl::StatusOr<std::string> FakeProcReader::ReadFile(
    int pid, absl::string_view name) {
  const std::string path = absl::StrCat(pid, "/", name);
  auto it = files_.find(path);
  if (it == files_.end()) return ErrorFor(path);
  return it->second;
}

}  // namespace netvigil::testing

#endif  // NETVIGIL_TESTS_TESTING_FAKE_PROC_READER_H_
