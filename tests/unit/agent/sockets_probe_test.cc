// Tests of SocketProbe's owner mapping and accounting over recorded dumps and
// a recorded /proc tree.
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "agent/probes/socket_probe.h"
#include "common/report/sockets_table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_netlink_source.h"
#include "tests/testing/fake_proc_reader.h"
#include "tests/testing/fixtures.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::FakeNetlinkSource;
using ::netvigil::testing::FakeProcReader;
using ::netvigil::testing::IsOk;
using ::netvigil::testing::ReadFixture;
using ::netvigil::testing::StatusIs;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

void LoadRecordedDumps(FakeNetlinkSource& netlink) {
  netlink.Set(AF_INET, IPPROTO_TCP, ReadFixture("sock_diag/tcp4.bin"));
  netlink.Set(AF_INET6, IPPROTO_TCP, ReadFixture("sock_diag/tcp6.bin"));
  netlink.Set(AF_INET, IPPROTO_UDP, ReadFixture("sock_diag/udp4.bin"));
  netlink.Set(AF_INET6, IPPROTO_UDP, ReadFixture("sock_diag/udp6.bin"));
}

TEST(SocketProbeTest, OwnerComesFromTheInodeInProcFd) {
  FakeNetlinkSource netlink;
  LoadRecordedDumps(netlink);
  FakeProcReader proc(ReadFixture("proc/sockets_and_files.txt"));
  SocketProbe probe(netlink, proc);
  absl::StatusOr<v1::SocketSnapshot> snap = probe.Collect();
  ASSERT_THAT(snap, IsOk());
  ASSERT_EQ(snap->sockets_size(), 7);
  int owned = 0;
  for (const v1::SocketEntry& e : snap->sockets()) {
    if (e.inode() == 0) {
      EXPECT_EQ(e.processes_size(), 0) << "TIME-WAIT has no owner";
      continue;
    }
    ASSERT_EQ(e.processes_size(), 1) << e.ShortDebugString();
    EXPECT_EQ(e.processes(0).pid(), 14295u);
    EXPECT_EQ(e.processes(0).name(), "recorder");
    EXPECT_EQ(e.processes(0).exe(), "/usr/bin/nvfixture");
    EXPECT_EQ(e.processes(0).uid(), 0u);
    ++owned;
  }
  EXPECT_EQ(owned, 6);
  EXPECT_EQ(snap->skipped_processes(), 0u);
  EXPECT_EQ(snap->unreadable_entries(), 0u);
  EXPECT_TRUE(snap->has_taken_at());
}

TEST(SocketProbeTest, DumpSplitIntoManyChunksGivesTheSameSnapshot) {
  FakeNetlinkSource whole, split;
  LoadRecordedDumps(whole);
  LoadRecordedDumps(split);
  split.set_chunk_size(1);  // One message per chunk.
  FakeProcReader proc(ReadFixture("proc/sockets_and_files.txt"));
  absl::StatusOr<v1::SocketSnapshot> a = SocketProbe(whole, proc).Collect();
  absl::StatusOr<v1::SocketSnapshot> b = SocketProbe(split, proc).Collect();
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  ASSERT_EQ(a->sockets_size(), b->sockets_size());
  for (int i = 0; i < a->sockets_size(); ++i) {
    EXPECT_EQ(a->sockets(i).SerializeAsString(),
              b->sockets(i).SerializeAsString());
  }
}

TEST(SocketProbeTest, VanishedAndHiddenProcessesAreCountedNotFatal) {
  FakeNetlinkSource netlink;
  LoadRecordedDumps(netlink);
  FakeProcReader proc(ReadFixture("proc/vanishing.txt"));
  SocketProbe probe(netlink, proc);
  absl::StatusOr<v1::SocketSnapshot> snap = probe.Collect();
  ASSERT_THAT(snap, IsOk());
  // 200 gone before its fds were listed; 400's fds hold no dumped socket.
  EXPECT_EQ(snap->skipped_processes(), 1u);
  // 100's fd 5 vanished; 300's fd table is hidden.
  EXPECT_EQ(snap->unreadable_entries(), 2u);
  for (const v1::SocketEntry& e : snap->sockets()) {
    EXPECT_EQ(e.processes_size(), 0);
  }
}

// Out of file descriptors (EMFILE) says nothing about the process read: a
// snapshot that carried on showed every socket ownerless ("?" owners, a new
// listener and a gone one for each), as `prlimit --nofile=4 netvigil-agent
// probe sockets` did. The probe fails, naming why.
TEST(SocketProbeTest, OutOfDescriptorsFailsTheSnapshotInsteadOfOwnerless) {
  const std::string tree = ReadFixture("proc/sockets_and_files.txt");
  for (const std::string& broken :
       {absl::StrCat(tree, "@error 14295/fd EMFILE\n"),
        absl::StrReplaceAll(
            tree, {{"@file 14295/status", "@error 14295/status EMFILE"}})}) {
    FakeNetlinkSource netlink;
    LoadRecordedDumps(netlink);
    FakeProcReader proc(broken);
    absl::StatusOr<v1::SocketSnapshot> snap =
        SocketProbe(netlink, proc).Collect();
    EXPECT_THAT(snap, StatusIs(absl::StatusCode::kResourceExhausted, "14295/"));
  }
}

// /proc at two moments: what the fd pass saw (before the second ListPids)
// and what a second look sees.
class TwoMomentsProcReader final : public ProcReader {
 public:
  TwoMomentsProcReader(const std::string& first, const std::string& then)
      : first_(first), then_(then) {}
  absl::StatusOr<std::vector<int>> ListPids() override {
    return (++lists_ == 1 ? first_ : then_).ListPids();
  }
  absl::Status ForEachFd(
      int pid, absl::FunctionRef<bool(absl::string_view)> want_mode,
      absl::FunctionRef<void(int, absl::string_view, char)> visit,
      uint32_t* unreadable) override {
    return Now().ForEachFd(pid, want_mode, visit, unreadable);
  }
  absl::StatusOr<std::string> ReadLink(int pid,
                                       absl::string_view name) override {
    return Now().ReadLink(pid, name);
  }
  absl::StatusOr<std::string> ReadFile(int pid,
                                       absl::string_view name) override {
    return Now().ReadFile(pid, name);
  }
  int lists() const { return lists_; }

 private:
  FakeProcReader& Now() { return lists_ <= 1 ? first_ : then_; }
  FakeProcReader first_, then_;
  std::atomic<int> lists_{0};
};

int Ownerless(const v1::SocketSnapshot& snap) {
  int n = 0;
  for (const v1::SocketEntry& e : snap.sockets()) {
    if (e.inode() != 0 && e.processes_size() == 0) ++n;
  }
  return n;
}

// The dump and the fd pass run at the same time: a connection opened after
// its process's fds were listed has no owner in the pass. The lab's desktop
// day saw one as "first outbound connection of unknown process".
TEST(SocketProbeTest, ConnectionOpenedDuringThePassGetsItsOwner) {
  FakeNetlinkSource netlink;
  LoadRecordedDumps(netlink);
  const std::string full = ReadFixture("proc/sockets_and_files.txt");
  std::string before = full;
  const std::string fd8 = "@link 14295/fd/8 socket:[53963]\n";
  ASSERT_NE(before.find(fd8), std::string::npos);
  before.erase(before.find(fd8), fd8.size());
  {
    FakeProcReader only_before(before);
    absl::StatusOr<v1::SocketSnapshot> snap =
        SocketProbe(netlink, only_before).Collect();
    ASSERT_THAT(snap, IsOk());
    EXPECT_EQ(Ownerless(*snap), 1) << "the fixture no longer shows the race";
  }
  TwoMomentsProcReader proc(before, full);
  absl::StatusOr<v1::SocketSnapshot> snap =
      SocketProbe(netlink, proc).Collect();
  ASSERT_THAT(snap, IsOk());
  EXPECT_EQ(Ownerless(*snap), 0);
  EXPECT_EQ(proc.lists(), 2);
  for (const v1::SocketEntry& e : snap->sockets()) {
    if (e.inode() != 53963) continue;
    ASSERT_EQ(e.processes_size(), 1);
    EXPECT_EQ(e.processes(0).pid(), 14295u);
  }
}

// Recorded dump bytes with the socket `inode` changed: gone (`orphan` =
// false) or orphaned, its inode now 0, as a closed connection in FIN-WAIT.
std::string WithSocketClosed(const std::string& dump, uint32_t inode,
                             bool orphan) {
  std::string out;
  size_t off = 0;
  while (off + sizeof(nlmsghdr) <= dump.size()) {
    nlmsghdr h;
    std::memcpy(&h, dump.data() + off, sizeof(h));
    const size_t len = NLMSG_ALIGN(h.nlmsg_len);
    std::string msg = dump.substr(off, len);
    off += len;
    if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY &&
        msg.size() >= NLMSG_LENGTH(sizeof(inet_diag_msg))) {
      inet_diag_msg d;
      std::memcpy(&d, msg.data() + NLMSG_HDRLEN, sizeof(d));
      if (d.idiag_inode == inode) {
        if (!orphan) continue;
        d.idiag_inode = 0;
        std::memcpy(msg.data() + NLMSG_HDRLEN, &d, sizeof(d));
      }
    }
    out += msg;
  }
  return out;
}

// Replays `first` for the probe's first four dumps and `then` afterwards.
class TwoDumpsNetlink final : public NetlinkSource {
 public:
  TwoDumpsNetlink(FakeNetlinkSource& first, FakeNetlinkSource& then)
      : first_(first), then_(then) {}
  absl::Status DumpInet(
      uint8_t family, uint8_t protocol,
      absl::FunctionRef<absl::Status(absl::string_view)> on_chunk) override {
    return (++dumps_ <= 4 ? first_ : then_)
        .DumpInet(family, protocol, on_chunk);
  }
  int dumps() const { return dumps_; }

 private:
  FakeNetlinkSource& first_;
  FakeNetlinkSource& then_;
  int dumps_ = 0;
};

// A connection closed while the pass ran: dumped, then its fd closed before
// the pass read its process, so no owner; the lab's desktop (closing and
// reopening connections every few seconds) saw it as "first outbound
// connection of unknown process". A second dump tells it from a socket
// whose owner is hidden, and it is left out and counted.
TEST(SocketProbeTest, ConnectionClosedDuringThePassIsLeftOutAndCounted) {
  std::string proc_text = ReadFixture("proc/sockets_and_files.txt");
  const std::string fd8 = "@link 14295/fd/8 socket:[53963]\n";
  ASSERT_NE(proc_text.find(fd8), std::string::npos);
  proc_text.erase(proc_text.find(fd8), fd8.size());
  FakeNetlinkSource first;
  LoadRecordedDumps(first);
  size_t dumped = 0;
  {
    FakeProcReader proc(proc_text);
    absl::StatusOr<v1::SocketSnapshot> snap =
        SocketProbe(first, proc).Collect();
    ASSERT_THAT(snap, IsOk());
    ASSERT_EQ(Ownerless(*snap), 1) << "still there: it stays, ownerless";
    EXPECT_EQ(snap->closed_during_pass(), 0u);
    dumped = snap->sockets_size();
  }
  for (bool orphan : {false, true}) {
    SCOPED_TRACE(orphan ? "orphaned" : "gone");
    FakeNetlinkSource then;
    int changed = 0;
    for (auto [family, protocol, name] :
         {std::tuple{AF_INET, IPPROTO_TCP, "tcp4"},
          std::tuple{AF_INET6, IPPROTO_TCP, "tcp6"},
          std::tuple{AF_INET, IPPROTO_UDP, "udp4"},
          std::tuple{AF_INET6, IPPROTO_UDP, "udp6"}}) {
      const std::string dump =
          ReadFixture(absl::StrCat("sock_diag/", name, ".bin"));
      std::string after = WithSocketClosed(dump, 53963, orphan);
      changed += after != dump;
      then.Set(family, protocol, std::move(after));
    }
    ASSERT_EQ(changed, 1) << "the fixture no longer holds socket 53963";
    TwoDumpsNetlink netlink(first, then);
    FakeProcReader proc(proc_text);
    absl::StatusOr<v1::SocketSnapshot> snap =
        SocketProbe(netlink, proc).Collect();
    ASSERT_THAT(snap, IsOk());
    EXPECT_EQ(netlink.dumps(), 8);
    EXPECT_EQ(Ownerless(*snap), 0);
    EXPECT_EQ(snap->closed_during_pass(), 1u);
    EXPECT_EQ(static_cast<size_t>(snap->sockets_size()), dumped - 1);
    for (const v1::SocketEntry& e : snap->sockets()) {
      EXPECT_NE(e.inode(), 53963u);
      if (e.inode() != 0) {
        EXPECT_GT(e.processes_size(), 0) << e.ShortDebugString();
      }
    }
  }
}

// Every socket owned at the first look: no second dump.
TEST(SocketProbeTest, NoSecondDumpWhenEverySocketHasAnOwner) {
  FakeNetlinkSource first, then;
  LoadRecordedDumps(first);
  TwoDumpsNetlink netlink(first, then);
  FakeProcReader proc(ReadFixture("proc/sockets_and_files.txt"));
  ASSERT_THAT(SocketProbe(netlink, proc).Collect(), IsOk());
  EXPECT_EQ(netlink.dumps(), 4);
}

TEST(SocketProbeTest, ProcessStartedDuringThePassOwnsItsSockets) {
  FakeNetlinkSource netlink;
  LoadRecordedDumps(netlink);
  TwoMomentsProcReader proc("# nothing runs yet\n",
                            ReadFixture("proc/sockets_and_files.txt"));
  absl::StatusOr<v1::SocketSnapshot> snap =
      SocketProbe(netlink, proc).Collect();
  ASSERT_THAT(snap, IsOk());
  EXPECT_EQ(Ownerless(*snap), 0);
  EXPECT_EQ(snap->skipped_processes(), 0u);
}

// Nothing ownerless: no second look (a quiet host pays nothing for it).
TEST(SocketProbeTest, NoSecondLookWhenEverySocketHasAnOwner) {
  FakeNetlinkSource netlink;
  LoadRecordedDumps(netlink);
  const std::string full = ReadFixture("proc/sockets_and_files.txt");
  TwoMomentsProcReader proc(full, full);
  ASSERT_THAT(SocketProbe(netlink, proc).Collect(), IsOk());
  EXPECT_EQ(proc.lists(), 1);
}

TEST(SocketProbeTest, SharedSocketListsEachOwnerOnceInPidOrder) {
  FakeNetlinkSource netlink;
  LoadRecordedDumps(netlink);
  // 14295 holds socket 53958 through fds 3 and 7; 20 (listed after it by
  // /proc but first by pid) and 300 hold it too.
  std::string tree = ReadFixture("proc/sockets_and_files.txt");
  tree += "@link 14295/fd/7 socket:[53958]\n";
  for (int pid : {300, 20}) {
    tree += absl::StrFormat(
        "@file %d/status\nName:\towner%d\nUid:\t1000\t1000\t1000\t1000\n"
        "@link %d/exe /usr/bin/owner\n@link %d/fd/9 socket:[53958]\n",
        pid, pid, pid, pid);
  }
  FakeProcReader proc(tree);
  absl::StatusOr<v1::SocketSnapshot> snap =
      SocketProbe(netlink, proc).Collect();
  ASSERT_THAT(snap, IsOk());
  int found = 0;
  for (const v1::SocketEntry& e : snap->sockets()) {
    if (e.inode() != 53958) continue;
    ++found;
    ASSERT_EQ(e.processes_size(), 3) << e.ShortDebugString();
    EXPECT_EQ(e.processes(0).pid(), 20u);
    EXPECT_EQ(e.processes(0).name(), "owner20");
    EXPECT_EQ(e.processes(1).pid(), 300u);
    EXPECT_EQ(e.processes(2).pid(), 14295u);
  }
  EXPECT_EQ(found, 1);
}

// The agent's own sockets (its link to the collector) and its children's
// (its iperf3 server, a speed-test client) are marked; a stranger's are not.
// The quickstart once alerted on the agent's own connection: its first
// snapshot was taken while it was reconnecting.
TEST(SocketProbeTest, SocketsOfTheAgentAndItsChildrenAreMarked) {
  v1::SocketSnapshot snap;
  auto add = [&](std::vector<std::pair<uint32_t, uint32_t>> pid_ppid) {
    v1::SocketEntry* e = snap.add_sockets();
    for (const auto& [pid, ppid] : pid_ppid) {
      v1::ProcessRef* p = e->add_processes();
      p->set_pid(pid);
      p->set_ppid(ppid);
    }
  };
  add({{501, 77}});            // the agent's iperf3 server
  add({{600, 1}, {502, 77}});  // shared with a child of the agent
  add({{700, 1}});             // someone else's
  add({});                     // no owner known (ppid 0 never matches)
  add({{77, 1}});              // the agent itself: its collector link
  MarkAgentOwn(77, 5201, &snap);
  EXPECT_TRUE(snap.sockets(0).agent_own());
  EXPECT_TRUE(snap.sockets(1).agent_own());
  EXPECT_FALSE(snap.sockets(2).agent_own());
  EXPECT_FALSE(snap.sockets(3).agent_own());
  EXPECT_TRUE(snap.sockets(4).agent_own());
  v1::SocketSnapshot zero;
  zero.add_sockets()->add_processes()->set_pid(5);  // ppid unread: 0
  MarkAgentOwn(0, 0, &zero);
  EXPECT_FALSE(zero.sockets(0).agent_own());
}

// iperf3 closes and reopens its listener around each test; one closed
// between the netlink dump and the /proc scan has no owner. On the agent's
// own iperf3 port it is the agent's server (the five-host lab once alerted
// "new listener tcp [::]:5201 (unknown process)"); anywhere else, or held by
// a stranger, or with no iperf3 server, it stays news.
TEST(SocketProbeTest, OwnerlessListenerOnTheAgentsIperfPortIsOwn) {
  v1::SocketSnapshot snap;
  auto add = [&](v1::Transport proto, const std::string& state, uint32_t port,
                 uint32_t pid) {
    v1::SocketEntry* e = snap.add_sockets();
    e->set_proto(proto);
    e->set_state(state);
    e->set_local_address("::");
    e->set_local_port(port);
    if (pid != 0) e->add_processes()->set_pid(pid);
  };
  add(v1::TRANSPORT_TCP, "LISTEN", 5201, 0);    // iperf3's, mid-reopen
  add(v1::TRANSPORT_TCP, "LISTEN", 5201, 900);  // a stranger's process
  add(v1::TRANSPORT_TCP, "LISTEN", 8765, 0);    // another port
  add(v1::TRANSPORT_UDP, "UNCONN", 5201, 0);    // not a TCP listener
  add(v1::TRANSPORT_TCP, "ESTAB", 5201, 0);     // a connection, not a listener
  v1::SocketSnapshot without_server = snap;
  MarkAgentOwn(77, 5201, &snap);
  EXPECT_TRUE(snap.sockets(0).agent_own());
  EXPECT_FALSE(snap.sockets(1).agent_own());
  EXPECT_FALSE(snap.sockets(2).agent_own());
  EXPECT_FALSE(snap.sockets(3).agent_own());
  EXPECT_FALSE(snap.sockets(4).agent_own());
  MarkAgentOwn(77, 0, &without_server);
  EXPECT_FALSE(without_server.sockets(0).agent_own());
}

TEST(SocketProbeTest, NetlinkFailureIsAnError) {
  FakeNetlinkSource netlink;
  netlink.SetError(absl::PermissionDeniedError("denied"));
  FakeProcReader proc("");
  SocketProbe probe(netlink, proc);
  EXPECT_THAT(probe.Collect(), StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(SocketProbeTest, DumpWithoutDoneIsDataLoss) {
  FakeNetlinkSource netlink;
  std::string dump = ReadFixture("sock_diag/udp4.bin");
  netlink.Set(AF_INET, IPPROTO_UDP, dump.substr(0, dump.size() - 20));
  FakeProcReader proc("");
  SocketProbe probe(netlink, proc);
  EXPECT_THAT(probe.Collect(), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(SocketProbeTest, TableLooksLikeSs) {
  FakeNetlinkSource netlink;
  LoadRecordedDumps(netlink);
  FakeProcReader proc(ReadFixture("proc/sockets_and_files.txt"));
  absl::StatusOr<v1::SocketSnapshot> snap =
      SocketProbe(netlink, proc).Collect();
  ASSERT_THAT(snap, IsOk());
  std::string table = report::FormatSocketsTable(*snap);
  EXPECT_THAT(table, HasSubstr("Local Address:Port"));
  EXPECT_THAT(table, HasSubstr("127.0.0.1:44299"));
  EXPECT_THAT(table, HasSubstr("0.0.0.0:*"));
  EXPECT_THAT(table, HasSubstr("[::1]:55857"));
  EXPECT_THAT(table, HasSubstr("[::]:*"));
  EXPECT_THAT(table, HasSubstr("UNCONN"));
  EXPECT_THAT(table, HasSubstr("users:((\"recorder\",pid=14295))"));
}

// As ss prints them: "*:5004" for a dual-stack listener, "[::]:7002" for
// an IPv6-only one (the peer column likewise).
TEST(SocketProbeTest, TableTellsDualStackFromV6Only) {
  FakeNetlinkSource netlink;
  netlink.Set(AF_INET6, IPPROTO_TCP, ReadFixture("sock_diag/tcp6_v6only.bin"));
  netlink.Set(AF_INET6, IPPROTO_UDP, ReadFixture("sock_diag/udp6_v6only.bin"));
  FakeProcReader proc("");
  absl::StatusOr<v1::SocketSnapshot> snap =
      SocketProbe(netlink, proc).Collect();
  ASSERT_THAT(snap, IsOk());
  std::string table = report::FormatSocketsTable(*snap);
  EXPECT_THAT(table, ContainsRegex("tcp +LISTEN +\\*:5004 +\\*:\\*"));
  EXPECT_THAT(table, ContainsRegex("tcp +LISTEN +\\[::\\]:7002 +\\[::\\]:\\*"));
  EXPECT_THAT(table, ContainsRegex("udp +UNCONN +\\*:5005 +\\*:\\*"));
  EXPECT_THAT(table, ContainsRegex("udp +UNCONN +\\[::\\]:7003 +\\[::\\]:\\*"));
  // An entry recorded before the field existed keeps the old spelling.
  v1::SocketSnapshot old = *snap;
  for (v1::SocketEntry& e : *old.mutable_sockets()) e.clear_v6_only();
  EXPECT_THAT(report::FormatSocketsTable(old), Not(HasSubstr("*:5004")));
}

}  // namespace
}  // namespace netvigil::agent
