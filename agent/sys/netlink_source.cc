#include "agent/sys/netlink_source.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/sys/descriptors.h"

namespace netvigil::agent {
namespace {

// Closes a file descriptor on scope exit.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

class RealNetlinkSource final : public NetlinkSource {
 public:
  absl::Status DumpInet(
      uint8_t family, uint8_t protocol,
      absl::FunctionRef<absl::Status(absl::string_view)> on_chunk) override {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) {
      if (IsOutOfDescriptors(errno)) {
        return OutOfDescriptorsError(errno, "socket(NETLINK_SOCK_DIAG)");
      }
      return absl::ErrnoToStatus(errno, "socket(NETLINK_SOCK_DIAG)");
    }
    FdCloser closer(fd);

    struct {
      nlmsghdr nlh;
      inet_diag_req_v2 req;
    } request;
    std::memset(&request, 0, sizeof(request));
    request.nlh.nlmsg_len = sizeof(request);
    request.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    request.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    request.nlh.nlmsg_seq = 1;
    request.req.sdiag_family = family;
    request.req.sdiag_protocol = protocol;
    // Every state, including TIME-WAIT and SYN-RECV minisockets, as `ss -a`.
    request.req.idiag_states = ~0U;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (sendto(fd, &request, sizeof(request), 0,
               reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) {
      return absl::ErrnoToStatus(errno, "sendto(NETLINK_SOCK_DIAG)");
    }

    // The kernel sizes dump batches by the reader's buffer (up to 32 KiB),
    // so a large buffer means few system calls; 64 KiB leaves headroom.
    std::vector<char> buf(64 * 1024);
    for (;;) {
      ssize_t n = recv(fd, buf.data(), buf.size(), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return absl::ErrnoToStatus(errno, "recv(NETLINK_SOCK_DIAG)");
      }
      if (n == 0) {
        return absl::DataLossError("netlink dump ended without NLMSG_DONE");
      }
      absl::string_view chunk(buf.data(), static_cast<size_t>(n));
      absl::Status st = on_chunk(chunk);
      if (!st.ok()) return st;
      if (ChunkEndsDump(chunk)) return absl::OkStatus();
    }
  }

 private:
  // True when the chunk holds NLMSG_DONE or NLMSG_ERROR: the dump is over.
  static bool ChunkEndsDump(absl::string_view chunk) {
    size_t off = 0;
    while (off + sizeof(nlmsghdr) <= chunk.size()) {
      nlmsghdr h;
      std::memcpy(&h, chunk.data() + off, sizeof(h));
      if (h.nlmsg_type == NLMSG_DONE || h.nlmsg_type == NLMSG_ERROR) {
        return true;
      }
      if (h.nlmsg_len < sizeof(nlmsghdr)) return true;  // Malformed: stop.
      off += NLMSG_ALIGN(h.nlmsg_len);
    }
    return false;
  }
};

}  // namespace

std::unique_ptr<NetlinkSource> CreateRealNetlinkSource() {
  return std::make_unique<RealNetlinkSource>();
}

}  // namespace netvigil::agent
