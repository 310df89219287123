#include "collector/connection_gate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {
namespace {

constexpr char kHttp2Preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t kHttp2PrefaceLen = sizeof(kHttp2Preface) - 1;
// TLSPlaintext: 2^14 bytes of fragment at most; allow the 2^14 + 2048 of
// a TLSCiphertext for good measure.
constexpr size_t kMaxTlsRecord = (1 << 14) + 2048;
constexpr int kBacklog = 1024;
constexpr absl::Duration kYoungScan = absl::Milliseconds(250);
constexpr absl::Duration kSettledScan = absl::Seconds(2);
constexpr absl::Duration kMaxPause = absl::Seconds(1);

uint64_t SocketCookie(int fd) {
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) return 0;
  return cookie;
}

// Who a connection comes from, as the caps count it: an IPv4 address, the
// /64 of an IPv6 one (a host picks addresses freely within its /64), or
// "local" for a UNIX socket.
std::string SourceKey(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    inet_ntop(AF_INET, &a.sin_addr, buf, sizeof(buf));
    return buf;
  }
  if (ss.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    if (IN6_IS_ADDR_V4MAPPED(&a.sin6_addr)) {
      in_addr v4;
      std::memcpy(&v4, &a.sin6_addr.s6_addr[12], 4);
      inet_ntop(AF_INET, &v4, buf, sizeof(buf));
      return buf;
    }
    in6_addr prefix = a.sin6_addr;
    std::memset(&prefix.s6_addr[8], 0, 8);
    inet_ntop(AF_INET6, &prefix, buf, sizeof(buf));
    return absl::StrCat(buf, "/64");
  }
  return "local";
}

// "ADDRESS PORT" with the address in inet_ntop's form (IPv4-mapped IPv6 as
// IPv4), from a socket address or from gRPC's peer string; "" if neither.
std::string PeerKey(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    inet_ntop(AF_INET, &a.sin_addr, buf, sizeof(buf));
    return absl::StrCat(buf, " ", ntohs(a.sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    if (IN6_IS_ADDR_V4MAPPED(&a.sin6_addr)) {
      inet_ntop(AF_INET, &a.sin6_addr.s6_addr[12], buf, sizeof(buf));
    } else {
      inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof(buf));
    }
    return absl::StrCat(buf, " ", ntohs(a.sin6_port));
  }
  return "";
}

std::string PeerKey(absl::string_view grpc_peer) {
  std::string addr;
  absl::string_view port;
  if (absl::ConsumePrefix(&grpc_peer, "ipv4:")) {
    const size_t colon = grpc_peer.rfind(':');
    if (colon == absl::string_view::npos) return "";
    addr = std::string(grpc_peer.substr(0, colon));
    port = grpc_peer.substr(colon + 1);
  } else if (absl::ConsumePrefix(&grpc_peer, "ipv6:[")) {
    const size_t end = grpc_peer.find("]:");
    if (end == absl::string_view::npos) return "";
    addr = std::string(grpc_peer.substr(0, end));
    port = grpc_peer.substr(end + 2);
  } else {
    return "";
  }
  sockaddr_storage ss{};
  int p = 0;
  if (!absl::SimpleAtoi(port, &p) || p < 0 || p > 65535) return "";
  auto& a4 = reinterpret_cast<sockaddr_in&>(ss);
  auto& a6 = reinterpret_cast<sockaddr_in6&>(ss);
  if (inet_pton(AF_INET, addr.c_str(), &a4.sin_addr) == 1) {
    a4.sin_family = AF_INET;
    a4.sin_port = htons(p);
  } else if (inet_pton(AF_INET6, addr.substr(0, addr.find('%')).c_str(),
                       &a6.sin6_addr) == 1) {
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons(p);
  } else {
    return "";
  }
  return PeerKey(ss);
}

// Tells gates of each RPC's peer once its initial metadata has arrived
// (the peer is not known yet when the interceptor is created); after that
// a flag test per operation.
class EstablishedInterceptor final : public grpc::experimental::Interceptor {
 public:
  EstablishedInterceptor(grpc::experimental::ServerRpcInfo* info,
                         const std::vector<ConnectionGate*>& gates)
      : info_(info), gates_(gates) {}
  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (!told_ &&
        methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::
                POST_RECV_INITIAL_METADATA) &&
        info_->server_context() != nullptr) {
      told_ = true;
      const std::string peer = info_->server_context()->peer();
      for (ConnectionGate* g : gates_) {
        if (g != nullptr) g->Established(peer);
      }
    }
    methods->Proceed();
  }

 private:
  grpc::experimental::ServerRpcInfo* const info_;
  const std::vector<ConnectionGate*>& gates_;
  bool told_ = false;
};

class EstablishedNotifier final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit EstablishedNotifier(std::vector<ConnectionGate*> gates)
      : gates_(std::move(gates)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // gRPC owns (and deletes) what this returns.
    return new EstablishedInterceptor(info, gates_);
  }

 private:
  const std::vector<ConnectionGate*> gates_;
};

// Closes with a reset: the refused peer learns at once, and no TIME_WAIT
// is left on this side.
void CloseWithReset(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

bool OutOfDescriptors(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

absl::Status ErrnoError(const std::string& what, int err) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(err)));
}

}  // namespace

ConnectionGate::ConnectionGate(ConnectionGateOptions options)
    : options_(std::move(options)) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ >= 0 && wake_fd_ >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake_fd_;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  }
}

ConnectionGate::~ConnectionGate() {
  Stop();
  for (int fd : listeners_) close(fd);
  for (const std::string& p : unix_paths_) unlink(p.c_str());
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

absl::StatusOr<int> ConnectionGate::Listen(const std::string& address,
                                           int unix_mode) {
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    return ErrnoError("cannot create the accept loop's epoll", errno);
  }
  absl::string_view rest(address);
  if (absl::ConsumePrefix(&rest, "unix:")) {
    sockaddr_un a{};
    if (rest.empty() || rest.size() >= sizeof(a.sun_path)) {
      return absl::InvalidArgumentError(
          absl::StrCat("UNIX socket path too long or empty: ", rest));
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return ErrnoError("socket", errno);
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, rest.data(), rest.size());
    const std::string path(rest);
    // Created with no permissions for anyone else from the first moment;
    // then the mode the caller asked for, before listen() lets anyone in.
    const mode_t old = umask(0177);
    const int b = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    const int bind_errno = errno;
    umask(old);
    if (b != 0) {
      close(fd);
      return ErrnoError(absl::StrCat("bind ", path), bind_errno);
    }
    if (chmod(path.c_str(), unix_mode) != 0 || listen(fd, kBacklog) != 0) {
      const int e = errno;
      close(fd);
      unlink(path.c_str());
      return ErrnoError(absl::StrCat("listen ", path), e);
    }
    listeners_.push_back(fd);
    unix_paths_.push_back(path);
    return 0;
  }

  // HOST:PORT, HOST possibly in brackets.
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", address, "' has no port"));
  }
  std::string host = address.substr(0, colon);
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", address, "': bad port"));
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::vector<std::pair<sockaddr_storage, socklen_t>> addrs;
  bool dual_stack = false;
  if (host.empty() || host == "0.0.0.0" || host == "::") {
    // As gRPC does: a wildcard is both families, one dual-stack socket.
    sockaddr_storage ss{};
    auto& a6 = reinterpret_cast<sockaddr_in6&>(ss);
    a6.sin6_family = AF_INET6;
    a6.sin6_addr = in6addr_any;
    a6.sin6_port = htons(port);
    addrs.push_back({ss, sizeof(sockaddr_in6)});
    dual_stack = true;
  } else {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const int rc =
        getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
    if (rc != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("listen address '", address, "': ", gai_strerror(rc)));
    }
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      sockaddr_storage ss{};
      std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
      addrs.push_back({ss, ai->ai_addrlen});
    }
    freeaddrinfo(res);
  }
  int bound_port = port;
  std::vector<int> opened;
  for (auto& [ss, len] : addrs) {
    if (bound_port != 0) {
      // A port the kernel picked for the first address is used for all.
      if (ss.ss_family == AF_INET) {
        reinterpret_cast<sockaddr_in&>(ss).sin_port = htons(bound_port);
      } else {
        reinterpret_cast<sockaddr_in6&>(ss).sin6_port = htons(bound_port);
      }
    }
    int fd =
        socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 && dual_stack) {
      // No IPv6 here: the IPv4 wildcard.
      sockaddr_storage v4{};
      auto& a4 = reinterpret_cast<sockaddr_in&>(v4);
      a4.sin_family = AF_INET;
      a4.sin_addr.s_addr = htonl(INADDR_ANY);
      a4.sin_port = htons(port);
      ss = v4;
      len = sizeof(sockaddr_in);
      fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (fd < 0) {
      for (int o : opened) close(o);
      return ErrnoError("socket", errno);
    }
    const int one = 1, zero = 0;
    // SO_REUSEADDR: a restart can bind while old connections sit in
    // TIME_WAIT. Never SO_REUSEPORT: a second collector must fail to bind.
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6) {
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual_stack ? &zero : &one,
                 sizeof(int));
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
        listen(fd, kBacklog) != 0) {
      const int e = errno;
      close(fd);
      for (int o : opened) close(o);
      return ErrnoError(absl::StrCat("listen on ", address), e);
    }
    if (bound_port == 0) {
      sockaddr_storage got{};
      socklen_t got_len = sizeof(got);
      getsockname(fd, reinterpret_cast<sockaddr*>(&got), &got_len);
      bound_port = ntohs(got.ss_family == AF_INET
                             ? reinterpret_cast<sockaddr_in&>(got).sin_port
                             : reinterpret_cast<sockaddr_in6&>(got).sin6_port);
    }
    opened.push_back(fd);
  }
  if (opened.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", address, "' resolves to nothing"));
  }
  listeners_.insert(listeners_.end(), opened.begin(), opened.end());
  return bound_port;
}

void ConnectionGate::Attach(grpc::ServerBuilder& builder,
                            std::shared_ptr<grpc::ServerCredentials> creds) {
  acceptor_ = builder.experimental().AddExternalConnectionAcceptor(
      grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
      std::move(creds));
}

void ConnectionGate::Start() {
  if (started_) return;
  started_ = true;
  for (int fd : listeners_) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }
  next_log_ = absl::Now() + options_.log_interval;
  thread_ = std::thread([this] { Loop(); });
}

void ConnectionGate::Stop() {
  if (stop_.exchange(true)) return;
  if (wake_fd_ >= 0) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
  if (thread_.joinable()) thread_.join();
  for (auto it = held_.begin(); it != held_.end();) {
    close(it->first);
    it = held_.erase(it);
  }
}

void ConnectionGate::Established(const std::string& grpc_peer) {
  std::string key = PeerKey(grpc_peer);
  if (key.empty()) return;
  absl::MutexLock l(&established_mu_);
  // Bounded: the loop drains it every 250 ms; an RPC storm between two
  // drains loses only precision (the handshake timeout still applies).
  if (established_.size() < 65536) established_.push_back(std::move(key));
}

std::vector<
    std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
ConnectionGate::EstablishedNotifiers(std::vector<ConnectionGate*> gates) {
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      out;
  out.push_back(std::make_unique<EstablishedNotifier>(std::move(gates)));
  return out;
}

ConnectionGateStats ConnectionGate::stats() {
  absl::MutexLock l(&stats_mu_);
  return stats_;
}

static bool IsListener(const std::vector<int>& listeners, int fd) {
  return std::find(listeners.begin(), listeners.end(), fd) != listeners.end();
}

void ConnectionGate::Loop() {
  std::vector<epoll_event> events(256);
  absl::Time next_young_scan = absl::Now();
  while (!stop_.load()) {
    absl::Time now = absl::Now();
    // Wake for the next held deadline, the next scan or the end of a pause.
    absl::Time wake = next_young_scan;
    if (!held_.empty()) {
      for (const auto& [fd, h] : held_) wake = std::min(wake, h.deadline);
    }
    if (paused_) wake = std::min(wake, paused_until_);
    const int timeout_ms =
        std::clamp<int64_t>(absl::ToInt64Milliseconds(wake - now) + 1, 0, 1000);
    const int n = epoll_wait(epoll_fd_, events.data(),
                             static_cast<int>(events.size()), timeout_ms);
    if (stop_.load()) break;
    now = absl::Now();
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_fd_) continue;
      if (IsListener(listeners_, fd)) {
        if (!paused_) AcceptAll(fd, now);
      } else {
        Inspect(fd, now);
      }
    }
    if (paused_ && now >= paused_until_) {
      paused_ = false;
      for (int fd : listeners_) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
      }
    }
    Expire(now);
    if (now >= next_young_scan) {
      const bool all = now >= next_scan_all_;
      Scan(now, all);
      if (all) next_scan_all_ = now + kSettledScan;
      next_young_scan = now + kYoungScan;
    }
    MaybeLog(now);
  }
}

int ConnectionGate::Unfinished() const {
  return static_cast<int>(held_.size() + young_.size());
}

int ConnectionGate::UnfinishedFrom(const std::string& source) const {
  auto it = unfinished_by_source_.find(source);
  return it == unfinished_by_source_.end() ? 0 : it->second;
}

std::map<int, ConnectionGate::Held>::iterator ConnectionGate::EvictionVictim(
    const std::string& source) {
  // The source with the most unfinished connections, if it has more than
  // the newcomer's and something held here to give up.
  const std::string* heaviest = nullptr;
  int most = UnfinishedFrom(source) + 1;
  for (const auto& [s, n] : unfinished_by_source_) {
    if (n > most) {
      most = n;
      heaviest = &s;
    }
  }
  if (heaviest == nullptr) return held_.end();
  auto victim = held_.end();
  for (auto it = held_.begin(); it != held_.end(); ++it) {
    if (it->second.source == *heaviest &&
        (victim == held_.end() ||
         it->second.accepted < victim->second.accepted)) {
      victim = it;
    }
  }
  return victim;
}

void ConnectionGate::Refuse(int fd, const std::string& source,
                            const char* reason) {
  CloseWithReset(fd);
  ++refusals_[source][reason];
  absl::MutexLock l(&stats_mu_);
  ++stats_.refused;
}

void ConnectionGate::AcceptAll(int listener_fd, absl::Time now) {
  // Bounded per wake-up so one busy listener does not starve the deadlines.
  for (int i = 0; i < 256; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    const int fd = accept4(listener_fd, reinterpret_cast<sockaddr*>(&ss), &len,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK) return;
      if (OutOfDescriptors(e)) {
        // Stop watching the listeners for a while (the kernel's backlog
        // holds the newcomers), then try again: never give up on them.
        paused_ = true;
        paused_until_ = now + pause_;
        pause_ = std::min(pause_ * 2, kMaxPause);
        ++pauses_since_log_;
        last_pause_error_ = std::strerror(e);
        for (int l : listeners_) {
          epoll_event ev{};
          ev.data.fd = l;
          epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, l, &ev);
        }
        absl::MutexLock l(&stats_mu_);
        ++stats_.accept_pauses;
        return;
      }
      // ECONNABORTED, EPROTO, EINTR, ...: that one connection, not us.
      continue;
    }
    pause_ = absl::Milliseconds(100);
    {
      absl::MutexLock l(&stats_mu_);
      ++stats_.accepted;
    }
    std::string source = SourceKey(ss);
    const int open =
        static_cast<int>(held_.size() + young_.size() + settled_.size());
    if (open >= options_.max_connections) {
      Refuse(fd, source, "connection_cap");
      continue;
    }
    if (UnfinishedFrom(source) >= options_.max_unfinished_per_source) {
      Refuse(fd, source, "per_source_handshake_cap");
      continue;
    }
    if (Unfinished() >= options_.max_unfinished) {
      auto victim = EvictionVictim(source);
      if (victim == held_.end()) {
        Refuse(fd, source, "handshake_cap");
        continue;
      }
      ++refusals_[victim->second.source]["evicted_for_another_source"];
      {
        absl::MutexLock l(&stats_mu_);
        ++stats_.evicted;
      }
      CloseHeld(victim);
    }
    epoll_event ev{};
    // Edge-triggered: a peek leaves the bytes in place, so only new bytes
    // should wake the loop again.
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      Refuse(fd, source, "epoll_failed");
      continue;
    }
    ++unfinished_by_source_[source];
    held_.emplace(fd,
                  Held{fd, listener_fd, std::move(source),
                       now + options_.first_record_timeout, now, PeerKey(ss)});
    // The bytes may be there already.
    Inspect(fd, now);
  }
}

void ConnectionGate::Inspect(int fd, absl::Time now) {
  auto it = held_.find(fd);
  if (it == held_.end()) return;
  unsigned char buf[5 + kMaxTlsRecord];
  const size_t want = options_.tls ? 5 : kHttp2PrefaceLen;
  const ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    return;
  }
  if (n <= 0) {  // closed or reset before its first record
    CloseHeld(it);
    return;
  }
  const size_t got = static_cast<size_t>(n);
  if (!options_.tls) {
    const size_t cmp = std::min(got, want);
    if (std::memcmp(buf, kHttp2Preface, cmp) != 0) {
      ++refusals_[it->second.source]["not_http2"];
      absl::MutexLock l(&stats_mu_);
      ++stats_.bad_first_bytes;
    } else if (got >= want) {
      HandOver(it, now);
      return;
    } else {
      return;  // wait for the rest
    }
    CloseHeld(it);
    return;
  }
  if (got < 1) return;
  // TLS record: type 22 (handshake), version 3.x, 16-bit length.
  if (buf[0] != 22 || (got >= 2 && buf[1] != 3)) {
    ++refusals_[it->second.source]["not_tls"];
    {
      absl::MutexLock l(&stats_mu_);
      ++stats_.bad_first_bytes;
    }
    CloseHeld(it);
    return;
  }
  if (got < 5) return;
  const size_t record = (size_t{buf[3]} << 8) | buf[4];
  if (record == 0 || record > kMaxTlsRecord) {
    ++refusals_[it->second.source]["not_tls"];
    {
      absl::MutexLock l(&stats_mu_);
      ++stats_.bad_first_bytes;
    }
    CloseHeld(it);
    return;
  }
  if (got >= 5 + record) HandOver(it, now);
}

void ConnectionGate::HandOver(std::map<int, Held>::iterator it,
                              absl::Time now) {
  const int fd = it->first;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  const uint64_t cookie = SocketCookie(fd);
  Handed h{fd, cookie, std::move(it->second.source), now,
           std::move(it->second.peer)};
  const int listener_fd = it->second.listener_fd;
  held_.erase(it);
  grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters p;
  p.listener_fd = listener_fd;
  p.fd = fd;
  // From here gRPC owns (and closes) the descriptor.
  acceptor_->HandleNewConnection(&p);
  young_.push_back(std::move(h));
  absl::MutexLock l(&stats_mu_);
  ++stats_.handed_over;
}

void ConnectionGate::CloseHeld(std::map<int, Held>::iterator it) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->first, nullptr);
  CloseWithReset(it->first);
  if (--unfinished_by_source_[it->second.source] <= 0) {
    unfinished_by_source_.erase(it->second.source);
  }
  held_.erase(it);
}

void ConnectionGate::Expire(absl::Time now) {
  for (auto it = held_.begin(); it != held_.end();) {
    if (now < it->second.deadline) {
      ++it;
      continue;
    }
    ++refusals_[it->second.source]["no_first_record_in_time"];
    {
      absl::MutexLock l(&stats_mu_);
      ++stats_.timed_out;
    }
    auto next = std::next(it);
    CloseHeld(it);
    it = next;
  }
}

void ConnectionGate::Scan(absl::Time now, bool all) {
  auto drop_source = [&](const std::string& source) {
    if (--unfinished_by_source_[source] <= 0) {
      unfinished_by_source_.erase(source);
    }
  };
  std::vector<std::string> established;
  {
    absl::MutexLock l(&established_mu_);
    established.swap(established_);
  }
  std::sort(established.begin(), established.end());
  // A handed connection is gone when its number no longer names its socket.
  std::deque<Handed> young;
  for (Handed& h : young_) {
    const bool open = h.cookie != 0 && SocketCookie(h.fd) == h.cookie;
    if (!open) {
      drop_source(h.source);
    } else if (!h.peer.empty() &&
               std::binary_search(established.begin(), established.end(),
                                  h.peer)) {
      // An RPC came over it: its handshake is done.
      drop_source(h.source);
      settled_.push_back(std::move(h));
    } else if (now - h.handed >=
               options_.grpc_handshake_timeout + absl::Seconds(1)) {
      // gRPC would have closed it by now had the handshake not finished.
      drop_source(h.source);
      settled_.push_back(std::move(h));
    } else {
      young.push_back(std::move(h));
    }
  }
  young_ = std::move(young);
  if (all) {
    settled_.erase(std::remove_if(settled_.begin(), settled_.end(),
                                  [](const Handed& h) {
                                    return SocketCookie(h.fd) != h.cookie;
                                  }),
                   settled_.end());
  }
  absl::MutexLock l(&stats_mu_);
  stats_.unfinished = Unfinished();
  stats_.open =
      static_cast<int>(held_.size() + young_.size() + settled_.size());
}

void ConnectionGate::MaybeLog(absl::Time now) {
  if (now < next_log_) return;
  next_log_ = now + options_.log_interval;
  const double secs = absl::ToDoubleSeconds(options_.log_interval);
  for (const auto& [source, reasons] : refusals_) {
    std::string detail;
    int64_t total = 0;
    for (const auto& [reason, count] : reasons) {
      absl::StrAppend(&detail, detail.empty() ? "" : ",", reason, ":", count);
      total += count;
    }
    spdlog::warn(
        "connections_refused listener={} source={} count={} interval_s={:.0f} "
        "reasons={} unfinished={} open={}",
        options_.name, source, total, secs, detail, Unfinished(),
        held_.size() + young_.size() + settled_.size());
  }
  refusals_.clear();
  if (pauses_since_log_ > 0) {
    // The limit in the line: a reader sees what was exhausted.
    rlimit rl{};
    const unsigned long long fd_limit =
        getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 0;
    spdlog::error(
        "accept_paused listener={} times={} interval_s={:.0f} error=\"{}\" "
        "fd_limit={} detail=\"out of descriptors: accepting again in at "
        "most 1 s\"",
        options_.name, pauses_since_log_, secs, last_pause_error_, fd_limit);
    pauses_since_log_ = 0;
  }
}

DescriptorBudget RaiseDescriptorLimit() {
  DescriptorBudget b;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    b.soft_before = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
      rlimit raised = rl;
      raised.rlim_cur = rl.rlim_max;
      if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
    }
    b.limit = rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : rl.rlim_cur;
  } else {
    b.limit = 1024;
    b.soft_before = 1024;
  }
  // The database pool, log files, gRPC's epoll and wake-up descriptors, the
  // listeners and a margin: an eighth, at least 96, or half of a limit under
  // 192 (an idle collector holds 17). The budget is never more than what is
  // left: it was at least 64 whatever the limit, so under
  // `prlimit --nofile=64` connections could take every descriptor, and the
  // Query socket and the database's reconnections failed for as long as
  // they stayed.
  const uint64_t reserve =
      std::max<uint64_t>({kMinDescriptorLimit / 2,
                          std::min<uint64_t>(96, b.limit / 2), b.limit / 8});
  const uint64_t left = b.limit > reserve ? b.limit - reserve : 0;
  b.for_connections =
      static_cast<int>(std::min<uint64_t>(left, uint64_t{1} << 20));
  return b;
}

}  // namespace netvigil::collector
