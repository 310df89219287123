#include "agent/sys/icmp_socket.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace netvigil::agent {
namespace {

constexpr int kReceiveBufferBytes = 4 << 20;  // a burst of 50 targets x 30 TTLs
constexpr size_t kMaxPacketBytes = 65536;
// Bounds one Receive() so a flood cannot starve the caller's timers.
constexpr int kMaxPacketsPerReceive = 4096;

std::string ErrnoText(int err) { return std::strerror(err); }

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
};

std::string PingGroupRange() {
  std::ifstream in("/proc/sys/net/ipv4/ping_group_range");
  std::string lo, hi;
  if (!(in >> lo >> hi)) return "unreadable";
  return absl::StrCat(lo, " ", hi);
}

// Opens a socket of `type` for ICMP of `ip_version`, or returns errno.
int OpenSocket(int ip_version, bool raw, Fd& out) {
  int domain = ip_version == 6 ? AF_INET6 : AF_INET;
  int proto = ip_version == 6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
  int fd = socket(domain,
                  (raw ? SOCK_RAW : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  proto);
  if (fd < 0) return errno;
  out = Fd(fd);
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
  int buf = kReceiveBufferBytes;
  // FORCE needs CAP_NET_ADMIN; without it the sysctl cap applies.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
  }
  if (raw && ip_version == 4) {
    // A raw socket sees every ICMP packet of the host; keep only ours.
    icmp_filter filter;
    filter.data = ~((1U << ICMP_ECHOREPLY) | (1U << ICMP_DEST_UNREACH) |
                    (1U << ICMP_TIME_EXCEEDED));
    setsockopt(fd, SOL_RAW, ICMP_FILTER, &filter, sizeof(filter));
  } else if (raw) {
    icmp6_filter filter;
    ICMP6_FILTER_SETBLOCKALL(&filter);
    ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
    ICMP6_FILTER_SETPASS(ICMP6_DST_UNREACH, &filter);
    ICMP6_FILTER_SETPASS(ICMP6_TIME_EXCEEDED, &filter);
    setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof(filter));
  } else if (ip_version == 4) {
    setsockopt(fd, SOL_IP, IP_RECVERR, &on, sizeof(on));
  } else {
    setsockopt(fd, SOL_IPV6, IPV6_RECVERR, &on, sizeof(on));
  }
  return 0;
}

class SocketTransport final : public IcmpTransport {
 public:
  SocketTransport(bool raw, Fd v4, Fd v6)
      : raw_(raw), v4_(std::move(v4)), v6_(std::move(v6)) {}

  std::string kind() const override { return raw_ ? "raw" : "dgram"; }
  bool SupportsIpVersion(int v) const override {
    return v == 4 ? v4_.valid() : v == 6 ? v6_.valid() : false;
  }
  bool KernelSetsIdentifier() const override { return !raw_; }

  absl::Status Send(absl::string_view destination, int ttl,
                    absl::string_view icmp) override {
    sockaddr_storage ss{};
    socklen_t len;
    int fd;
    if (destination.size() == 4 && v4_.valid()) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
      sin->sin_family = AF_INET;
      std::memcpy(&sin->sin_addr, destination.data(), 4);
      len = sizeof(*sin);
      fd = v4_.get();
      if (setsockopt(fd, SOL_IP, IP_TTL, &ttl, sizeof(ttl)) != 0) {
        return absl::InternalError(
            absl::StrCat("setting IP_TTL: ", ErrnoText(errno)));
      }
    } else if (destination.size() == 16 && v6_.valid()) {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
      sin6->sin6_family = AF_INET6;
      std::memcpy(&sin6->sin6_addr, destination.data(), 16);
      len = sizeof(*sin6);
      fd = v6_.get();
      if (setsockopt(fd, SOL_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof(ttl)) != 0) {
        return absl::InternalError(
            absl::StrCat("setting IPV6_UNICAST_HOPS: ", ErrnoText(errno)));
      }
    } else {
      return absl::InvalidArgumentError(
          "no ICMP socket for this destination's IP version");
    }
    for (int attempt = 0;; ++attempt) {
      ssize_t n = sendto(fd, icmp.data(), icmp.size(), 0,
                         reinterpret_cast<sockaddr*>(&ss), len);
      if (n >= 0) return absl::OkStatus();
      int err = errno;
      // A datagram socket reports an earlier ICMP error on the next call;
      // that error belongs to an earlier probe, already counted from the
      // error queue, so send again.
      if ((err == EHOSTUNREACH || err == ENETUNREACH || err == ECONNREFUSED ||
           err == EINTR) &&
          !raw_ && attempt < 2) {
        continue;
      }
      return absl::UnavailableError(absl::StrCat("send: ", ErrnoText(err)));
    }
  }

  absl::Status Receive(absl::Duration timeout,
                       std::vector<IcmpPacketIn>& out) override {
    pollfd fds[2];
    int nfds = 0;
    int versions[2];
    if (v4_.valid()) {
      fds[nfds] = {v4_.get(), POLLIN, 0};
      versions[nfds++] = 4;
    }
    if (v6_.valid()) {
      fds[nfds] = {v6_.get(), POLLIN, 0};
      versions[nfds++] = 6;
    }
    int ms = 0;
    if (timeout > absl::ZeroDuration()) {
      ms = static_cast<int>(absl::ToInt64Milliseconds(
          timeout + absl::Microseconds(999)));  // round up: never spin
    }
    int r = poll(fds, nfds, ms);
    if (r < 0) {
      if (errno == EINTR) return absl::OkStatus();
      return absl::InternalError(absl::StrCat("poll: ", ErrnoText(errno)));
    }
    int budget = kMaxPacketsPerReceive;
    for (int i = 0; i < nfds && r > 0; ++i) {
      if (fds[i].revents == 0) continue;
      if (!raw_) DrainErrorQueue(fds[i].fd, versions[i], out, budget);
      Drain(fds[i].fd, versions[i], out, budget);
    }
    return absl::OkStatus();
  }

 private:
  static absl::Time Timestamp(msghdr& msg) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
        timespec ts;
        std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
        return absl::TimeFromTimespec(ts);
      }
    }
    return absl::InfinitePast();
  }

  static std::string PackedAddress(const sockaddr_storage& ss) {
    if (ss.ss_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
      return std::string(reinterpret_cast<const char*>(&sin->sin_addr), 4);
    }
    if (ss.ss_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
      return std::string(reinterpret_cast<const char*>(&sin6->sin6_addr), 16);
    }
    return "";
  }

  // recvmsg into buffer_ and control_; `msg` points at them afterwards.
  ssize_t ReceiveOne(int fd, int flags, sockaddr_storage& from, msghdr& msg) {
    iov_ = iovec{buffer_, sizeof(buffer_)};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof(from);
    msg.msg_iov = &iov_;
    msg.msg_iovlen = 1;
    msg.msg_control = control_;
    msg.msg_controllen = sizeof(control_);
    return recvmsg(fd, &msg, flags);
  }

  void Drain(int fd, int version, std::vector<IcmpPacketIn>& out, int& budget) {
    while (budget > 0) {
      sockaddr_storage from{};
      msghdr msg{};
      ssize_t n = ReceiveOne(fd, MSG_DONTWAIT, from, msg);
      if (n < 0) {
        // EAGAIN: drained. Anything else on a datagram socket is a pending
        // ICMP error already queued on the error queue: read on.
        if (errno == EAGAIN || errno == EWOULDBLOCK || raw_) return;
        continue;
      }
      --budget;
      IcmpPacketIn p;
      p.ip_version = version;
      p.data.assign(buffer_, static_cast<size_t>(n));
      p.has_ip_header = raw_ && version == 4;
      p.source = PackedAddress(from);
      p.received_at = Timestamp(msg);
      out.push_back(std::move(p));
    }
  }

  void DrainErrorQueue(int fd, int version, std::vector<IcmpPacketIn>& out,
                       int& budget) {
    while (budget > 0) {
      sockaddr_storage from{};
      msghdr msg{};
      ssize_t n = ReceiveOne(fd, MSG_ERRQUEUE | MSG_DONTWAIT, from, msg);
      if (n < 0) return;
      --budget;
      const sock_extended_err* ee = nullptr;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
            (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
          ee = reinterpret_cast<const sock_extended_err*>(CMSG_DATA(c));
        }
      }
      if (ee == nullptr || (ee->ee_origin != SO_EE_ORIGIN_ICMP &&
                            ee->ee_origin != SO_EE_ORIGIN_ICMP6)) {
        continue;  // a local error (EMSGSIZE, ...): the send already failed
      }
      IcmpPacketIn p;
      p.ip_version = version;
      p.data.assign(buffer_, static_cast<size_t>(n));
      p.from_error_queue = true;
      p.error_type = ee->ee_type;
      p.error_code = ee->ee_code;
      sockaddr_storage offender{};
      const sockaddr* off = SO_EE_OFFENDER(ee);
      if (off->sa_family == AF_INET) {
        std::memcpy(&offender, off, sizeof(sockaddr_in));
      } else if (off->sa_family == AF_INET6) {
        std::memcpy(&offender, off, sizeof(sockaddr_in6));
      }
      p.source = PackedAddress(offender);
      p.received_at = Timestamp(msg);
      out.push_back(std::move(p));
    }
  }

  bool raw_;
  Fd v4_;
  Fd v6_;
  char buffer_[kMaxPacketBytes];
  alignas(cmsghdr) char control_[512];
  iovec iov_{};
};

absl::StatusOr<std::unique_ptr<IcmpTransport>> OpenKind(bool raw, int& v4_err,
                                                        int& v6_err) {
  Fd v4, v6;
  v4_err = OpenSocket(4, raw, v4);
  v6_err = OpenSocket(6, raw, v6);
  if (!v4.valid() && !v6.valid()) {
    return absl::PermissionDeniedError(
        absl::StrCat(raw ? "raw" : "datagram", " ICMP socket: IPv4 ",
                     ErrnoText(v4_err), ", IPv6 ", ErrnoText(v6_err)));
  }
  spdlog::debug("event=icmp_transport_open kind={} ipv4={} ipv6={}",
                raw ? "raw" : "dgram", v4.valid(), v6.valid());
  return std::unique_ptr<IcmpTransport>(
      new SocketTransport(raw, std::move(v4), std::move(v6)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<IcmpTransport>> OpenIcmpTransport(
    IcmpSocketChoice choice) {
  int e4 = 0, e6 = 0;
  absl::StatusOr<std::unique_ptr<IcmpTransport>> raw =
      absl::PermissionDeniedError("raw ICMP socket: not tried");
  if (choice != IcmpSocketChoice::kDatagram) {
    raw = OpenKind(true, e4, e6);
    if (raw.ok() || choice == IcmpSocketChoice::kRaw) return raw;
  }
  absl::StatusOr<std::unique_ptr<IcmpTransport>> dgram =
      OpenKind(false, e4, e6);
  if (dgram.ok()) return dgram;
  return absl::PermissionDeniedError(absl::StrCat(
      "cannot open an ICMP socket: ", raw.status().message(),
      " (a raw socket needs CAP_NET_RAW); ", dgram.status().message(),
      " (a datagram ICMP socket needs the process's group in "
      "net.ipv4.ping_group_range, now '",
      PingGroupRange(), "')"));
}

}  // namespace netvigil::agent
