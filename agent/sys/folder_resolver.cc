#include "agent/sys/folder_resolver.h"

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/utf8.h"

namespace netvigil::agent {
namespace {

class RealFolderResolver final : public FolderResolver {
 public:
  absl::StatusOr<std::string> Resolve(const std::string& dir) override {
    // Folder names are any bytes; messages must be UTF-8.
    const std::string shown = ToValidUtf8(dir);
    char resolved[PATH_MAX];
    if (realpath(dir.c_str(), resolved) == nullptr) {
      const int err = errno;
      if (err == ENOENT || err == ENOTDIR) {
        return absl::NotFoundError(
            absl::StrCat("watched folder does not exist: ", shown));
      }
      return absl::ErrnoToStatus(
          err, absl::StrCat("watched folder ", shown, " cannot be resolved"));
    }
    struct stat st;
    if (stat(resolved, &st) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("watched folder ", shown));
    }
    if (!S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("watched folder is not a folder: ", shown));
    }
    return std::string(resolved);
  }
};

}  // namespace

std::unique_ptr<FolderResolver> CreateRealFolderResolver() {
  return std::make_unique<RealFolderResolver>();
}

}  // namespace netvigil::agent
