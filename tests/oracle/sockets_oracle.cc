// Oracle test: SocketProbe against `ss -tanup` on this host at the same
// moment. The test holds a known mix of sockets (listeners, 500 established
// TCP pairs over loopback, UDP bound and connected, IPv6 on ::1, a listener
// shared by two processes, sockets of a child running as nobody) and compares
// (proto, state, local, remote, pid) tuples of its own processes only, so
// other activity on the machine cannot break it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/probes/socket_probe.h"
#include "common/report/sockets_table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::IsOk;

constexpr int kPairs = 500;
constexpr uid_t kNobody = 65534;

// (proto, state, local address, local port, remote address, remote port, pid)
using Tuple = std::tuple<std::string, std::string, std::string, int,
                         std::string, int, int>;

std::string RunCommand(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[64 * 1024];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// Wildcards are "0.0.0.0", "::" or "*" depending on who prints them.
std::string NormalAddress(std::string a) {
  if (a.size() >= 2 && a.front() == '[') a = a.substr(1, a.size() - 2);
  size_t pct = a.find('%');
  if (pct != std::string::npos) a.resize(pct);
  if (a == "0.0.0.0" || a == "::") return "*";
  return a;
}

// "addr:port" as ss prints it: "[::1]:80", "127.0.0.53%lo:53", "0.0.0.0:*".
bool SplitEndpoint(const std::string& ep, std::string* addr, int* port) {
  size_t colon = ep.rfind(':');
  if (colon == std::string::npos) return false;
  *addr = NormalAddress(ep.substr(0, colon));
  std::string p = ep.substr(colon + 1);
  if (p == "*") {
    *port = 0;
    return true;
  }
  return absl::SimpleAtoi(p, port);
}

// Tuples of `ss -tanup` lines whose process list names one of `pids`.
std::set<Tuple> SsTuples(const std::set<int>& pids) {
  std::set<Tuple> out;
  std::string text = RunCommand("ss -tanup");
  bool header = true;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (header) {
      header = false;
      continue;
    }
    std::vector<std::string> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.size() < 7) continue;
    std::string laddr, raddr;
    int lport, rport;
    if (!SplitEndpoint(f[4], &laddr, &lport) ||
        !SplitEndpoint(f[5], &raddr, &rport)) {
      ADD_FAILURE() << "unparsed ss line: " << line;
      continue;
    }
    // users:(("name",pid=12,fd=3),("name",pid=13,fd=3))
    absl::string_view users = line.substr(line.find("users:"));
    size_t pos = 0;
    while ((pos = users.find("pid=", pos)) != absl::string_view::npos) {
      pos += 4;
      size_t end = users.find_first_not_of("0123456789", pos);
      int pid;
      if (absl::SimpleAtoi(users.substr(pos, end - pos), &pid) &&
          pids.count(pid)) {
        out.emplace(f[0], f[1], laddr, lport, raddr, rport, pid);
      }
    }
  }
  return out;
}

std::set<Tuple> ProbeTuples(const v1::SocketSnapshot& snap,
                            const std::set<int>& pids) {
  std::set<Tuple> out;
  for (const v1::SocketEntry& e : snap.sockets()) {
    for (const v1::ProcessRef& p : e.processes()) {
      if (!pids.count(static_cast<int>(p.pid()))) continue;
      out.emplace(e.proto() == v1::TRANSPORT_TCP ? "tcp" : "udp", e.state(),
                  NormalAddress(e.local_address()), e.local_port(),
                  NormalAddress(e.remote_address()), e.remote_port(), p.pid());
    }
  }
  return out;
}

int BoundSocket(int family, int type, int port = 0) {
  int fd = socket(family, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int rc;
  if (family == AF_INET) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  } else {
    int one = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    a.sin6_port = htons(port);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  if (rc != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool ConnectTo(int fd, int to) {
  sockaddr_storage a{};
  socklen_t len = sizeof(a);
  getsockname(to, reinterpret_cast<sockaddr*>(&a), &len);
  return connect(fd, reinterpret_cast<sockaddr*>(&a), len) == 0;
}

int Port(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return a.ss_family == AF_INET
             ? ntohs(reinterpret_cast<sockaddr_in*>(&a)->sin_port)
             : ntohs(reinterpret_cast<sockaddr_in6*>(&a)->sin6_port);
}

// Closes every fd from 3 up except those in `keep`.
void CloseAllBut(const std::set<int>& keep) {
  long max = sysconf(_SC_OPEN_MAX);
  for (int fd = 3; fd < max && fd < 65536; ++fd) {
    if (!keep.count(fd)) close(fd);
  }
}

// A child process that holds sockets until the test ends; killed by pid.
struct Child {
  pid_t pid = -1;
  ~Child() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
};

class SocketsOracleTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (int fd : fds_) close(fd);
  }
  int Keep(int fd) {
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }
  std::vector<int> fds_;
};

TEST_F(SocketsOracleTest, SameTuplesAsSsForTheTestsOwnProcesses) {
  ASSERT_EQ(geteuid(), 0u) << "needs root to start a child as nobody";
  // IPv4 listener, and 500 established pairs to it.
  int l4 = Keep(BoundSocket(AF_INET, SOCK_STREAM));
  ASSERT_GE(l4, 0);
  ASSERT_EQ(listen(l4, 1024), 0);
  for (int i = 0; i < kPairs; ++i) {
    int c = Keep(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(ConnectTo(c, l4)) << "pair " << i;
    int s = Keep(accept4(l4, nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_GE(s, 0);
  }
  // IPv6 listener on ::1 with one pair.
  int l6 = Keep(BoundSocket(AF_INET6, SOCK_STREAM));
  ASSERT_GE(l6, 0);
  ASSERT_EQ(listen(l6, 16), 0);
  int c6 = Keep(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(ConnectTo(c6, l6));
  ASSERT_GE(Keep(accept4(l6, nullptr, nullptr, SOCK_CLOEXEC)), 0);
  // UDP: bound, connected, and IPv6.
  int u4 = Keep(BoundSocket(AF_INET, SOCK_DGRAM));
  ASSERT_GE(u4, 0);
  int u4c = Keep(BoundSocket(AF_INET, SOCK_DGRAM));
  ASSERT_TRUE(ConnectTo(u4c, u4));
  ASSERT_GE(Keep(BoundSocket(AF_INET6, SOCK_DGRAM)), 0);

  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  // A child sharing the IPv4 listener: ss lists both owners.
  Child sharer;
  sharer.pid = fork();
  ASSERT_GE(sharer.pid, 0);
  if (sharer.pid == 0) {
    CloseAllBut({l4, ready[1]});
    char ok = 1;
    (void)!write(ready[1], &ok, 1);
    pause();
    _exit(0);
  }
  // A child running as nobody with a TCP listener and a UDP socket of its own.
  int ports[2];
  ASSERT_EQ(pipe(ports), 0);
  Child nobody;
  nobody.pid = fork();
  ASSERT_GE(nobody.pid, 0);
  if (nobody.pid == 0) {
    CloseAllBut({ports[1]});
    if (setgid(kNobody) != 0 || setuid(kNobody) != 0) _exit(1);
    int tl = BoundSocket(AF_INET, SOCK_STREAM);
    int ud = BoundSocket(AF_INET, SOCK_DGRAM);
    if (tl < 0 || ud < 0 || listen(tl, 4) != 0) _exit(1);
    int both[2] = {Port(tl), Port(ud)};
    (void)!write(ports[1], both, sizeof(both));
    pause();
    _exit(0);
  }
  close(ready[1]);
  close(ports[1]);
  char ok;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  int nobody_ports[2];
  ASSERT_EQ(read(ports[0], nobody_ports, sizeof(nobody_ports)),
            static_cast<ssize_t>(sizeof(nobody_ports)));
  close(ready[0]);
  close(ports[0]);

  const std::set<int> pids = {getpid(), sharer.pid, nobody.pid};
  std::unique_ptr<SocketProbe> probe = SocketProbe::CreateReal();
  absl::StatusOr<v1::SocketSnapshot> snap = probe->Collect();
  std::set<Tuple> ss = SsTuples(pids);
  ASSERT_THAT(snap, IsOk());
  std::set<Tuple> ours = ProbeTuples(*snap, pids);

  // The mix itself: the test process holds the pair ends, two listeners, the
  // IPv6 pair and three UDP sockets; the sharer one listener; nobody two.
  EXPECT_EQ(ours.size(), 2u * kPairs + 7 + 1 + 2);
  EXPECT_EQ(ours, ss);
  std::vector<Tuple> only_ours, only_ss;
  std::set_difference(ours.begin(), ours.end(), ss.begin(), ss.end(),
                      std::back_inserter(only_ours));
  std::set_difference(ss.begin(), ss.end(), ours.begin(), ours.end(),
                      std::back_inserter(only_ss));
  for (size_t i = 0; i < only_ours.size() && i < 5; ++i) {
    ADD_FAILURE() << "only in probe: " << std::get<0>(only_ours[i]) << " "
                  << std::get<1>(only_ours[i]) << " "
                  << std::get<2>(only_ours[i]) << ":"
                  << std::get<3>(only_ours[i]) << " pid "
                  << std::get<6>(only_ours[i]);
  }
  for (size_t i = 0; i < only_ss.size() && i < 5; ++i) {
    ADD_FAILURE() << "only in ss: " << std::get<0>(only_ss[i]) << " "
                  << std::get<1>(only_ss[i]) << " " << std::get<2>(only_ss[i])
                  << ":" << std::get<3>(only_ss[i]) << " pid "
                  << std::get<6>(only_ss[i]);
  }

  // What ss -tanup does not print but the probe must get right: the uid of
  // the socket and of its owner, and the owner's name and executable.
  bool saw_nobody_listener = false;
  for (const v1::SocketEntry& e : snap->sockets()) {
    if (e.proto() == v1::TRANSPORT_TCP && e.state() == "LISTEN" &&
        static_cast<int>(e.local_port()) == nobody_ports[0]) {
      saw_nobody_listener = true;
      EXPECT_EQ(e.uid(), kNobody);
      ASSERT_EQ(e.processes_size(), 1);
      EXPECT_EQ(e.processes(0).uid(), kNobody);
      EXPECT_EQ(static_cast<int>(e.processes(0).pid()), nobody.pid);
      EXPECT_FALSE(e.processes(0).exe().empty());
    }
    if (e.state() == "LISTEN" && static_cast<int>(e.local_port()) == Port(l4)) {
      EXPECT_EQ(e.processes_size(), 2) << "the listener is shared";
      for (const v1::ProcessRef& p : e.processes()) {
        EXPECT_EQ(p.name(), "sockets_oracle");
      }
    }
  }
  EXPECT_TRUE(saw_nobody_listener);
}

// A "::" socket with IPV6_V6ONLY `v6only`, bound to an ephemeral port.
int WildcardV6(int type, int v6only) {
  int fd = socket(AF_INET6, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_any;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      (type == SOCK_STREAM && listen(fd, 4) != 0)) {
    close(fd);
    return -1;
  }
  return fd;
}

// Port -> (local, peer) as printed on the lines of `table` that name
// "pid=PID"; `local_field` is the column of the local endpoint.
std::map<int, std::pair<std::string, std::string>> Endpoints(
    const std::string& table, int pid, size_t local_field) {
  std::map<int, std::pair<std::string, std::string>> out;
  const std::string mark = "pid=" + std::to_string(pid);
  for (absl::string_view line : absl::StrSplit(table, '\n')) {
    // "pid=12," (ss) or "pid=12)" (ours), not "pid=123".
    if (!absl::StrContains(line, mark + ",") &&
        !absl::StrContains(line, mark + ")")) {
      continue;
    }
    std::vector<std::string> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.size() <= local_field + 1) continue;
    const std::string& local = f[local_field];
    int port;
    if (!absl::SimpleAtoi(local.substr(local.rfind(':') + 1), &port)) continue;
    out[port] = {local, f[local_field + 1]};
  }
  return out;
}

// ss prints a "::" socket that also takes IPv4 as "*:PORT" and an IPv6-only
// one as "[::]:PORT"; the probe's table must too, and its snapshot must say
// which it is.
TEST_F(SocketsOracleTest, DualStackAndV6OnlyListenersPrintAsSsPrintsThem) {
  const int tcp_dual = Keep(WildcardV6(SOCK_STREAM, 0));
  const int tcp_v6 = Keep(WildcardV6(SOCK_STREAM, 1));
  const int udp_dual = Keep(WildcardV6(SOCK_DGRAM, 0));
  const int udp_v6 = Keep(WildcardV6(SOCK_DGRAM, 1));
  for (int fd : {tcp_dual, tcp_v6, udp_dual, udp_v6}) ASSERT_GE(fd, 0);

  absl::StatusOr<v1::SocketSnapshot> snap =
      SocketProbe::CreateReal()->Collect();
  const std::string ss_tcp = RunCommand("ss -tlnp");
  const std::string ss_udp = RunCommand("ss -ulnp");
  ASSERT_THAT(snap, IsOk());

  // The snapshot (and so its JSON) says it.
  std::map<int, bool> v6only;
  for (const v1::SocketEntry& e : snap->sockets()) {
    for (const v1::ProcessRef& p : e.processes()) {
      if (static_cast<int>(p.pid()) != getpid() || e.family() != 6) continue;
      ASSERT_TRUE(e.has_v6_only()) << e.ShortDebugString();
      v6only[static_cast<int>(e.local_port())] = e.v6_only();
    }
  }
  EXPECT_EQ(v6only[Port(tcp_dual)], false);
  EXPECT_EQ(v6only[Port(tcp_v6)], true);
  EXPECT_EQ(v6only[Port(udp_dual)], false);
  EXPECT_EQ(v6only[Port(udp_v6)], true);

  // `ss -tlnp` has no Netid column: local is field 3; ours has it: field 2.
  auto theirs = Endpoints(ss_tcp, getpid(), 3);
  for (const auto& [port, ends] : Endpoints(ss_udp, getpid(), 3)) {
    theirs[port] = ends;
  }
  const auto ours = Endpoints(report::FormatSocketsTable(*snap), getpid(), 2);
  for (int fd : {tcp_dual, tcp_v6, udp_dual, udp_v6}) {
    const int port = Port(fd);
    SCOPED_TRACE(port);
    ASSERT_EQ(theirs.count(port), 1u) << ss_tcp << ss_udp;
    ASSERT_EQ(ours.count(port), 1u);
    EXPECT_EQ(ours.at(port), theirs.at(port));
  }
  EXPECT_EQ(theirs.at(Port(tcp_dual)).first,
            absl::StrCat("*:", Port(tcp_dual)));
  EXPECT_EQ(theirs.at(Port(tcp_v6)).first, absl::StrCat("[::]:", Port(tcp_v6)));
}

}  // namespace
}  // namespace netvigil::agent
