#include "agent/probes/socket_probe.h"

#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/sys/netlink_inet_diag.h"
#include "agent/sys/proc_parallel.h"
#include "agent/sys/proc_parse.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "google/protobuf/util/time_util.h"

namespace netvigil::agent {
namespace {

std::string InterfaceName(uint32_t index) {
  char name[IF_NAMESIZE];
  if (if_indextoname(index, name) == nullptr) return absl::StrCat(index);
  return ToValidUtf8(name);  // Interface names are any bytes.
}

}  // namespace

SocketProbe::SocketProbe(NetlinkSource& netlink, ProcReader& proc)
    : netlink_(netlink), proc_(proc) {}

std::unique_ptr<SocketProbe> SocketProbe::CreateReal() {
  std::unique_ptr<NetlinkSource> netlink = CreateRealNetlinkSource();
  std::unique_ptr<ProcReader> proc = CreateRealProcReader();
  auto probe = std::make_unique<SocketProbe>(*netlink, *proc);
  probe->owned_netlink_ = std::move(netlink);
  probe->owned_proc_ = std::move(proc);
  return probe;
}

namespace {

// The four inet_diag dumps (TCP and UDP, IPv4 and IPv6) into `snap`.
absl::Status DumpAll(NetlinkSource& netlink, v1::SocketSnapshot* snap) {
  struct Dump {
    uint8_t family;
    uint8_t protocol;
    v1::Transport transport;
  };
  constexpr Dump kDumps[] = {
      {AF_INET, IPPROTO_TCP, v1::TRANSPORT_TCP},
      {AF_INET6, IPPROTO_TCP, v1::TRANSPORT_TCP},
      {AF_INET, IPPROTO_UDP, v1::TRANSPORT_UDP},
      {AF_INET6, IPPROTO_UDP, v1::TRANSPORT_UDP},
  };
  for (const Dump& d : kDumps) {
    bool done = false;
    NV_RETURN_IF_ERROR(netlink.DumpInet(
        d.family, d.protocol, [&](absl::string_view chunk) -> absl::Status {
          NV_ASSIGN_OR_RETURN(done, ParseInetDiagChunk(chunk, d.transport,
                                                       InterfaceName, snap));
          return absl::OkStatus();
        }));
    if (!done) {
      return absl::DataLossError(
          absl::StrCat("inet_diag dump for family ", d.family, " protocol ",
                       d.protocol, " ended without NLMSG_DONE"));
    }
  }
  return absl::OkStatus();
}

// A process of the fd pass.
struct Owner {
  std::vector<uint64_t> inodes;  // Of the sockets among its fds.
  std::vector<int> entries;      // Indexes of the dumped sockets it holds.
  std::optional<v1::ProcessRef> ref;
  bool gone = false;
  uint32_t unreadable = 0;
  // Out of file descriptors while reading it (ResourceExhausted): the
  // snapshot would show its sockets ownerless, so the probe fails.
  absl::Status exhausted;
};

// The first out-of-descriptors error among the owners, or OK.
absl::Status FirstExhausted(const std::vector<Owner>& owners) {
  for (const Owner& o : owners) {
    if (!o.exhausted.ok()) return o.exhausted;
  }
  return absl::OkStatus();
}

// A second look for the dumped sockets (`unowned`: inode -> entry) that the
// fd pass found no owner for. The dump and the pass run at the same time,
// so a connection opened after its process's fds were listed, or by a
// process started after the pids were, read as ownerless; and an ownerless
// connection is news to the analysis (a browser's new connection became
// "first outbound connection of unknown process"). Read again: the
// processes already holding sockets and the ones new since `pids` was
// listed (appended to `pids` and `owners`), for those inodes only. The
// inodes it finds an owner for are erased from `unowned`. What is still
// ownerless after it is a process hidden by hidepid, a kernel socket, or a
// socket closed meanwhile (see ClosedDuringThePass).
absl::Status SecondLook(ProcReader& proc,
                        absl::flat_hash_map<uint64_t, int>& unowned,
                        std::vector<int>& pids, std::vector<Owner>& owners,
                        std::vector<size_t>& holding) {
  std::vector<size_t> again = holding;
  absl::StatusOr<std::vector<int>> now = proc.ListPids();
  if (absl::IsResourceExhausted(now.status())) return now.status();
  if (now.ok()) {
    const absl::flat_hash_set<int> before(pids.begin(), pids.end());
    for (int pid : *now) {
      if (before.contains(pid)) continue;
      pids.push_back(pid);
      owners.emplace_back();
      again.push_back(owners.size() - 1);
    }
  }
  std::vector<std::vector<int>> found(again.size());
  std::vector<absl::Status> exhausted(again.size());
  ParallelFor(again.size(), ProcPassThreads(), [&](int, size_t k) {
    uint32_t unreadable = 0;  // Counted once, by the first pass.
    absl::Status st = proc.ForEachFd(
        pids[again[k]], [](absl::string_view) { return false; },
        [&](int, absl::string_view target, char) {
          std::optional<uint64_t> inode = ParseSocketInode(target);
          if (!inode) return;
          auto it = unowned.find(*inode);
          if (it != unowned.end()) found[k].push_back(it->second);
        },
        &unreadable);
    // Gone or hidden now: it keeps what it had. Out of descriptors: the
    // look did not happen.
    if (absl::IsResourceExhausted(st)) exhausted[k] = std::move(st);
  });
  for (absl::Status& st : exhausted) {
    if (!st.ok()) return st;
  }
  absl::flat_hash_set<int> owned;
  for (size_t k = 0; k < again.size(); ++k) {
    if (found[k].empty()) continue;
    Owner& o = owners[again[k]];
    const bool held = !o.entries.empty();
    o.entries.insert(o.entries.end(), found[k].begin(), found[k].end());
    owned.insert(found[k].begin(), found[k].end());
    if (!held) holding.push_back(again[k]);
  }
  absl::erase_if(unowned,
                 [&](const auto& kv) { return owned.contains(kv.second); });
  return absl::OkStatus();
}

// The sockets (`unowned`: inode -> entry) still ownerless after the second
// look, dumped again: one that is gone, or whose inode is now 0 (an
// orphaned connection in FIN-WAIT after its close), was closed while the
// pass ran. Its process closed the fd before the pass read it, so the
// snapshot cannot say whose it was; reported as "unknown process" it was a
// false alert (the lab's desktop closes and reopens connections every few
// seconds). Returns the entries to drop. One that is still there with its
// inode and no owner stays in the snapshot ownerless: that is what a
// hidden process looks like.
absl::StatusOr<absl::flat_hash_set<int>> ClosedDuringThePass(
    NetlinkSource& netlink, const absl::flat_hash_map<uint64_t, int>& unowned) {
  v1::SocketSnapshot again;
  NV_RETURN_IF_ERROR(DumpAll(netlink, &again));
  absl::flat_hash_set<uint64_t> still;
  for (const v1::SocketEntry& e : again.sockets()) {
    if (e.inode() != 0 && unowned.contains(e.inode())) still.insert(e.inode());
  }
  absl::flat_hash_set<int> closed;
  for (const auto& [inode, entry] : unowned) {
    if (!still.contains(inode)) closed.insert(entry);
  }
  return closed;
}

// Removes the entries in `drop` from the snapshot, keeping the others'
// order.
void DropEntries(const absl::flat_hash_set<int>& drop,
                 v1::SocketSnapshot& snap) {
  auto& sockets = *snap.mutable_sockets();
  int kept = 0;
  for (int i = 0; i < sockets.size(); ++i) {
    if (drop.contains(i)) continue;
    if (kept != i) sockets.SwapElements(kept, i);
    ++kept;
  }
  sockets.DeleteSubrange(kept, sockets.size() - kept);
}

}  // namespace

absl::StatusOr<v1::SocketSnapshot> SocketProbe::Collect() {
  v1::SocketSnapshot snap;
  NV_RETURN_IF_ERROR(Collect(&snap));
  return snap;
}

absl::Status SocketProbe::Collect(v1::SocketSnapshot* out) {
  const absl::Time start = absl::Now();
  out->Clear();
  v1::SocketSnapshot& snap = *out;
  *snap.mutable_taken_at() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
          absl::ToUnixNanos(start));

  absl::StatusOr<std::vector<int>> pids = proc_.ListPids();
  if (!pids.ok()) {
    NV_RETURN_IF_ERROR(DumpAll(netlink_, &snap));  // Its failure comes first.
    return pids.status();
  }
  std::vector<Owner> owners(pids->size());
  // The dump needs no /proc and the fd pass no dump: the calling thread dumps
  // while the other threads list fds, then helps them finish. The pass keeps
  // every socket inode; which of them were dumped is known only afterwards.
  absl::Status dumped;
  ParallelForBeside(
      pids->size(), ProcPassThreads(),
      [&] { dumped = DumpAll(netlink_, &snap); },
      [&](int, size_t i) {
        Owner& o = owners[i];
        absl::Status st = proc_.ForEachFd(
            (*pids)[i], [](absl::string_view) { return false; },
            [&](int, absl::string_view target, char) {
              std::optional<uint64_t> inode = ParseSocketInode(target);
              if (inode) o.inodes.push_back(*inode);
            },
            &o.unreadable);
        if (absl::IsNotFound(st)) {
          o.gone = true;
          std::vector<uint64_t>().swap(o.inodes);
        } else if (absl::IsResourceExhausted(st)) {
          o.exhausted = std::move(st);
        } else if (!st.ok()) {
          ++o.unreadable;
        }
      });
  NV_RETURN_IF_ERROR(dumped);
  NV_RETURN_IF_ERROR(FirstExhausted(owners));

  // Inode -> index of its entry. TIME-WAIT and request sockets have inode 0
  // and no owner.
  std::vector<size_t> holding;      // Owners holding a dumped socket.
  absl::flat_hash_set<int> closed;  // Entries closed while the pass ran.
  {
    absl::flat_hash_map<uint64_t, int> by_inode;
    by_inode.reserve(snap.sockets_size());
    for (int i = 0; i < snap.sockets_size(); ++i) {
      if (snap.sockets(i).inode() != 0)
        by_inode.emplace(snap.sockets(i).inode(), i);
    }
    std::vector<bool> owned(snap.sockets_size(), false);
    for (size_t i = 0; i < owners.size(); ++i) {
      Owner& o = owners[i];
      for (uint64_t inode : o.inodes) {
        auto it = by_inode.find(inode);
        if (it == by_inode.end()) continue;
        o.entries.push_back(it->second);
        owned[it->second] = true;
      }
      // Freed as soon as read: this lowers the peak of a large snapshot.
      std::vector<uint64_t>().swap(o.inodes);
      if (!o.entries.empty()) holding.push_back(i);
    }
    for (auto it = by_inode.begin(); it != by_inode.end();) {
      auto here = it++;
      if (owned[here->second]) by_inode.erase(here);
    }
    if (!by_inode.empty()) {
      NV_RETURN_IF_ERROR(SecondLook(proc_, by_inode, *pids, owners, holding));
    }
    if (!by_inode.empty()) {
      NV_ASSIGN_OR_RETURN(closed, ClosedDuringThePass(netlink_, by_inode));
    }
  }
  // A process is read (comm, exe, uid) only when it holds a dumped socket.
  ParallelFor(holding.size(), ProcPassThreads(), [&](int, size_t k) {
    const size_t i = holding[k];
    Owner& o = owners[i];
    absl::StatusOr<v1::ProcessRef> ref = ReadProcessRef(proc_, (*pids)[i]);
    if (absl::IsResourceExhausted(ref.status())) {
      o.exhausted = ref.status();
      return;
    }
    if (!ref.ok()) {
      o.gone = true;
      return;
    }
    o.ref = std::move(*ref);
  });
  NV_RETURN_IF_ERROR(FirstExhausted(owners));
  uint32_t unreadable = 0;
  std::vector<const Owner*> listed;  // In pid order.
  for (Owner& o : owners) {
    unreadable += o.unreadable;
    if (o.gone) {
      snap.set_skipped_processes(snap.skipped_processes() + 1);
      continue;
    }
    if (!o.ref) continue;
    // A process holding one socket through several fds is listed once.
    std::sort(o.entries.begin(), o.entries.end());
    o.entries.erase(std::unique(o.entries.begin(), o.entries.end()),
                    o.entries.end());
    listed.push_back(&o);
  }
  // Copying the owners into the entries is the largest step after the
  // pass: the threads split the sockets by index range, and each walks the
  // owners in pid order, so a shared socket lists its owners by pid.
  const int threads = ProcPassThreads();
  const int64_t count = snap.sockets_size();
  ParallelFor(threads, threads, [&](int, size_t part) {
    const int lo = static_cast<int>(count * part / threads);
    const int hi = static_cast<int>(count * (part + 1) / threads);
    for (const Owner* o : listed) {
      auto it = std::lower_bound(o->entries.begin(), o->entries.end(), lo);
      for (; it != o->entries.end() && *it < hi; ++it) {
        *snap.mutable_sockets(*it)->add_processes() = *o->ref;
      }
    }
  });
  if (!closed.empty()) {
    DropEntries(closed, snap);
    snap.set_closed_during_pass(static_cast<uint32_t>(closed.size()));
  }
  snap.set_unreadable_entries(unreadable);
  snap.set_duration_ms(absl::ToDoubleMilliseconds(absl::Now() - start));
  return absl::OkStatus();
}

void MarkAgentOwn(uint32_t agent_pid, uint32_t iperf_port,
                  v1::SocketSnapshot* snapshot) {
  for (v1::SocketEntry& s : *snapshot->mutable_sockets()) {
    if (iperf_port != 0 && s.processes().empty() &&
        s.proto() == v1::TRANSPORT_TCP && s.state() == "LISTEN" &&
        s.local_port() == iperf_port) {
      s.set_agent_own(true);
      continue;
    }
    for (const v1::ProcessRef& p : s.processes()) {
      if (agent_pid != 0 && (p.pid() == agent_pid || p.ppid() == agent_pid)) {
        s.set_agent_own(true);
        break;
      }
    }
  }
}

}  // namespace netvigil::agent
