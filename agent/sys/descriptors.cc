#include "agent/sys/descriptors.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace netvigil::agent {
namespace {

std::string Shown(rlim_t v) {
  return v == RLIM_INFINITY ? std::string("unlimited") : absl::StrCat(v);
}

}  // namespace

bool IsOutOfDescriptors(int err) { return err == EMFILE || err == ENFILE; }

absl::Status OutOfDescriptorsError(int err, absl::string_view what) {
  rlimit rl{};
  const std::string limit =
      getrlimit(RLIMIT_NOFILE, &rl) == 0
          ? absl::StrCat(err == ENFILE ? "the system's table is full; " : "",
                         "soft limit ", Shown(rl.rlim_cur))
          : std::string("limit unknown");
  return absl::ResourceExhaustedError(absl::StrCat("out of file descriptors (",
                                                   limit, "): ", what, ": ",
                                                   std::strerror(err)));
}

DescriptorLimit RaiseDescriptorLimit() {
  DescriptorLimit d;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return d;
  d.soft_before = rl.rlim_cur;
  d.hard = rl.rlim_max;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  d.soft_now = rl.rlim_cur;
  return d;
}

}  // namespace netvigil::agent
