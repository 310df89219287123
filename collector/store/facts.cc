#include "collector/store/facts.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace netvigil::collector {
namespace {

// An IPv4 peer of a dual-stack socket shows as ::ffff:a.b.c.d; it is the
// same endpoint as a.b.c.d and must key the same.
std::string Plain(const std::string& addr) {
  constexpr char kMapped[] = "::ffff:";
  if (addr.rfind(kMapped, 0) == 0 && addr.find('.') != std::string::npos) {
    return addr.substr(sizeof(kMapped) - 1);
  }
  return addr;
}

bool IsUnspecified(const std::string& addr) {
  return addr.empty() || addr == "0.0.0.0" || addr == "::" || addr == "*";
}

}  // namespace

std::string ExeOf(const v1::ProcessRef& p) {
  if (!p.exe().empty()) return p.exe();
  if (!p.name().empty()) return absl::StrCat("[", p.name(), "]");
  return "";
}

std::map<SocketKey, std::string> SocketFacts(const v1::SocketSnapshot& snap) {
  // Listening ports first, to tell inbound connections from outbound ones.
  std::set<std::pair<v1::Transport, uint32_t>> listening;
  for (const v1::SocketEntry& s : snap.sockets()) {
    if (s.state() == "LISTEN" ||
        (s.proto() == v1::TRANSPORT_UDP && s.state() == "UNCONN")) {
      listening.insert({s.proto(), s.local_port()});
    }
  }
  std::map<SocketKey, std::string> out;
  for (const v1::SocketEntry& s : snap.sockets()) {
    // A socket without an owner (TIME-WAIT, a closing orphan) names no
    // process; its connection was already seen while it had one.
    if (s.processes().empty()) continue;
    const v1::ProcessRef& p = s.processes(0);
    SocketKey k;
    k.proto = s.proto();
    k.exe = ExeOf(p);
    if (s.state() == "LISTEN" ||
        (s.proto() == v1::TRANSPORT_UDP && s.state() == "UNCONN")) {
      k.key_kind = "listener";
      k.local_address = Plain(s.local_address());
      k.local_port = s.local_port();
    } else if (IsUnspecified(s.remote_address()) && s.remote_port() == 0) {
      continue;  // Neither listening nor connected: nothing to key.
    } else if (listening.count({s.proto(), s.local_port()}) > 0) {
      k.key_kind = "inbound";
      k.local_port = s.local_port();
      k.remote_address = Plain(s.remote_address());
    } else {
      k.key_kind = "remote";
      k.remote_address = Plain(s.remote_address());
      k.remote_port = s.remote_port();
    }
    out.emplace(std::move(k), p.name());
  }
  return out;
}

std::map<FileKey, FileFactInfo> FileFacts(const v1::FileSnapshot& snap) {
  std::map<FileKey, FileFactInfo> out;
  for (const v1::FileEntry& e : snap.entries()) {
    FileKey k{ExeOf(e.process()), e.path(), e.kind()};
    FileFactInfo info{e.process().name(), e.process().uid(), e.deleted(),
                      e.process().exe_deleted()};
    out.emplace(std::move(k), std::move(info));
  }
  return out;
}

}  // namespace netvigil::collector
