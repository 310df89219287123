// FolderResolver: the seam through which the file probe turns a watched
// folder into the path the kernel writes in /proc links (absolute, every
// symlink followed), and its real implementation. Implementations must be
// thread-safe; the real one keeps no state.
#ifndef NETVIGIL_AGENT_SYS_FOLDER_RESOLVER_H_
#define NETVIGIL_AGENT_SYS_FOLDER_RESOLVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace netvigil::agent {

class FolderResolver {
 public:
  virtual ~FolderResolver() = default;
  // The folder `dir` (absolute) with every symlink resolved. NotFound when
  // it does not exist, FailedPrecondition when it is not a folder, the
  // errno's status otherwise; each message names `dir`.
  virtual absl::StatusOr<std::string> Resolve(const std::string& dir) = 0;
};

// realpath(3) and stat(2) on this host's file system.
std::unique_ptr<FolderResolver> CreateRealFolderResolver();

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_SYS_FOLDER_RESOLVER_H_
