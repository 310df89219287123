#include "agent/spool/posix_file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace netvigil::agent::spool {
namespace {

absl::Status ErrnoStatus(int err, absl::string_view call,
                         absl::string_view path) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(call, " ", path, ": ", strerror(err)));
}

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override { close(fd_); }

  absl::StatusOr<size_t> Read(uint64_t offset, char* buf, size_t n) override {
    size_t done = 0;
    while (done < n) {
      ssize_t r =
          pread(fd_, buf + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return ErrnoStatus(errno, "read", path_);
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  }

  absl::Status Write(uint64_t offset, absl::string_view data) override {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t w = pwrite(fd_, data.data() + done, data.size() - done,
                         static_cast<off_t>(offset + done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return ErrnoStatus(errno, "write", path_);
      // A short write without an error is the file system running out.
      if (w == 0) return ErrnoStatus(ENOSPC, "write", path_);
      done += static_cast<size_t>(w);
    }
    return absl::OkStatus();
  }

  absl::Status Truncate(uint64_t size) override {
    if (ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return ErrnoStatus(errno, "truncate", path_);
    }
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    if (fsync(fd_) != 0) return ErrnoStatus(errno, "fsync", path_);
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> Size() override {
    struct stat st;
    if (fstat(fd_, &st) != 0) return ErrnoStatus(errno, "fstat", path_);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  const int fd_;
  const std::string path_;
};

class PosixLock final : public FileLock {
 public:
  explicit PosixLock(int fd) : fd_(fd) {}
  ~PosixLock() override { close(fd_); }  // closing releases the flock

 private:
  const int fd_;
};

class Posix final : public FileSystem {
 public:
  absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path,
                                             Mode mode) override {
    int flags = O_CLOEXEC | O_NOFOLLOW;
    switch (mode) {
      case Mode::kRead:
        flags |= O_RDONLY;
        break;
      case Mode::kWrite:
        flags |= O_RDWR;
        break;
      case Mode::kCreate:
        flags |= O_RDWR | O_CREAT;
        break;
      case Mode::kCreateTruncate:
        flags |= O_RDWR | O_CREAT | O_TRUNC;
        break;
    }
    int fd = open(path.c_str(), flags, 0600);
    if (fd < 0) return ErrnoStatus(errno, "open", path);
    // Files an older agent left open to its group or others are tightened.
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0 &&
        fchmod(fd, st.st_mode & 0700) != 0) {
      spdlog::warn("event=spool_mode_not_tightened path={} error=\"{}\"", path,
                   std::strerror(errno));
    }
    return std::make_unique<PosixFile>(fd, path);
  }

  absl::StatusOr<bool> Exists(const std::string& path) override {
    struct stat st;
    if (lstat(path.c_str(), &st) == 0) return true;
    if (errno == ENOENT) return false;
    return ErrnoStatus(errno, "stat", path);
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoStatus(errno, "rename", absl::StrCat(from, " to ", to));
    }
    return absl::OkStatus();
  }

  absl::Status Unlink(const std::string& path) override {
    if (unlink(path.c_str()) != 0) return ErrnoStatus(errno, "unlink", path);
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "open folder", dir);
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    // EINVAL: a file system that cannot fsync a folder (as SQLite's unix
    // VFS does, go on; there is nothing more to make durable there).
    if (rc != 0 && err != EINVAL) return ErrnoStatus(err, "fsync folder", dir);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> List(
      const std::string& dir) override {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus(errno, "list", dir);
    std::vector<std::string> names;
    while (struct dirent* e = readdir(d)) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
        continue;
      }
      names.emplace_back(e->d_name);
    }
    closedir(d);
    return names;
  }

  absl::StatusOr<std::unique_ptr<FileLock>> Lock(
      const std::string& path) override {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return ErrnoStatus(errno, "open for lock", path);
    // flock belongs to the open file description: a second open of the same
    // spool in this process is refused as well as one in another process.
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      close(fd);
      if (err == EWOULDBLOCK) {
        return absl::UnavailableError(
            absl::StrCat("lock ", path, ": held by another process"));
      }
      return ErrnoStatus(err, "lock", path);
    }
    return std::make_unique<PosixLock>(fd);
  }
};

}  // namespace

FileSystem& PosixFileSystem() {
  static Posix* fs = new Posix();
  return *fs;
}

}  // namespace netvigil::agent::spool
