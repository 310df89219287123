#include "agent/sys/proc_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/sys/descriptors.h"
#include "agent/sys/proc_parse.h"

namespace netvigil::agent {
namespace {

// ESRCH and ENOENT both mean the process went away under us. Out of
// descriptors is about us, not the process: ResourceExhausted, so that a
// probe fails instead of reporting the process as hidden or gone.
absl::Status ProcError(int err, absl::string_view what) {
  if (IsOutOfDescriptors(err)) return OutOfDescriptorsError(err, what);
  if (err == ESRCH) err = ENOENT;
  return absl::ErrnoToStatus(err, what);
}

bool ParseNumber(const char* s, int* out) {
  if (*s < '0' || *s > '9') return false;
  return absl::SimpleAtoi(s, out);
}

class RealProcReader final : public ProcReader {
 public:
  explicit RealProcReader(std::string root) : root_(std::move(root)) {}

  absl::StatusOr<std::vector<int>> ListPids() override {
    DIR* dir = opendir(root_.c_str());
    if (dir == nullptr) return ProcError(errno, root_);
    std::vector<int> pids;
    while (dirent* ent = readdir(dir)) {
      int pid;
      if (ParseNumber(ent->d_name, &pid)) pids.push_back(pid);
    }
    closedir(dir);
    std::sort(pids.begin(), pids.end());
    return pids;
  }

  absl::Status ForEachFd(
      int pid, absl::FunctionRef<bool(absl::string_view)> want_mode,
      absl::FunctionRef<void(int, absl::string_view, char)> visit,
      uint32_t* unreadable) override {
    std::string path = absl::StrCat(root_, "/", pid, "/fd");
    int dfd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return ProcError(errno, path);
    DIR* dir = fdopendir(dfd);
    if (dir == nullptr) {
      int err = errno;
      close(dfd);
      return ProcError(err, path);
    }
    char target[PATH_MAX];
    int err = 0;
    for (;;) {
      // errno is cleared before each readdir: a failed readlinkat below
      // leaves it set, and must not read as the end of a vanished listing.
      errno = 0;
      dirent* ent = readdir(dir);
      if (ent == nullptr) {
        err = errno;
        break;
      }
      int fd;
      if (!ParseNumber(ent->d_name, &fd)) continue;
      // readlinkat on the open directory saves a path walk per fd.
      ssize_t n = readlinkat(dfd, ent->d_name, target, sizeof(target));
      if (n < 0) {
        ++*unreadable;
        continue;
      }
      absl::string_view link(target, static_cast<size_t>(n));
      char mode = '\0';
      if (want_mode(link)) {
        struct stat st;
        if (fstatat(dfd, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
          ++*unreadable;
          continue;
        }
        mode = ModeFromFdLinkPermissions(st.st_mode);
      }
      visit(fd, link, mode);
    }
    // readdir fails with ENOENT when the process exits mid-listing.
    closedir(dir);
    if (err != 0) return ProcError(err, path);
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> ReadLink(int pid,
                                       absl::string_view name) override {
    std::string path = absl::StrCat(root_, "/", pid, "/", name);
    char target[PATH_MAX];
    ssize_t n = readlink(path.c_str(), target, sizeof(target));
    if (n < 0) return ProcError(errno, path);
    return std::string(target, static_cast<size_t>(n));
  }

  absl::StatusOr<std::string> ReadFile(int pid,
                                       absl::string_view name) override {
    std::string path = absl::StrCat(root_, "/", pid, "/", name);
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ProcError(errno, path);
    std::string out;
    char buf[16 * 1024];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        close(fd);
        return ProcError(err, path);
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    return out;
  }

 private:
  const std::string root_;
};

}  // namespace

std::unique_ptr<ProcReader> CreateRealProcReader(std::string root) {
  return std::make_unique<RealProcReader>(std::move(root));
}

}  // namespace netvigil::agent
