#include "tests/testing/fake_proc_reader.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace netvigil::testing {
namespace {

[[noreturn]] void Malformed(absl::string_view line) {
  std::fprintf(stderr, "malformed proc tree line: %.*s\n",
               static_cast<int>(line.size()), line.data());
  std::abort();
}

}  // namespace

FakeProcReader::FakeProcReader(const std::string& tree_text) {
  std::string* file = nullptr;  // The @file being filled.
  for (absl::string_view line : absl::StrSplit(tree_text, '\n')) {
    if (!absl::StartsWith(line, "@") && !absl::StartsWith(line, "#")) {
      if (file != nullptr) absl::StrAppend(file, line, "\n");
      continue;
    }
    file = nullptr;
    if (absl::StartsWith(line, "#")) continue;
    std::vector<std::string> parts =
        absl::StrSplit(line, absl::MaxSplits(' ', 2));
    if (parts.size() < 2) Malformed(line);
    int pid;
    if (!absl::SimpleAtoi(parts[1].substr(0, parts[1].find('/')), &pid)) {
      Malformed(line);
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
      } else {
        Malformed(line);
      }
    } else {
      Malformed(line);
    }
  }
}

absl::Status FakeProcReader::ErrorFor(const std::string& path) const {
  auto it = errors_.find(path);
  if (it != errors_.end()) return absl::ErrnoToStatus(it->second, path);
  return absl::NotFoundError(absl::StrCat(path, " not in the recorded tree"));
}

absl::StatusOr<std::vector<int>> FakeProcReader::ListPids() {
  return std::vector<int>(pids_.begin(), pids_.end());
}

absl::Status FakeProcReader::ForEachFd(
    int pid, absl::FunctionRef<void(int, absl::string_view)> visit,
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
  for (const auto& [fd, target] : fds) visit(fd, *target);
  return absl::OkStatus();
}

absl::StatusOr<std::string> FakeProcReader::ReadLink(int pid,
                                                     absl::string_view name) {
  const std::string path = absl::StrCat(pid, "/", name);
  auto it = links_.find(path);
  if (it == links_.end()) return ErrorFor(path);
  return it->second;
}

absl::StatusOr<std::string> FakeProcReader::ReadFile(int pid,
                                                     absl::string_view name) {
  const std::string path = absl::StrCat(pid, "/", name);
  auto it = files_.find(path);
  if (it == files_.end()) return ErrorFor(path);
  return it->second;
}

}  // namespace netvigil::testing
