// Turns socket and file snapshots into the keyed facts that history is made
// of. Keys are chosen so that churn is not news: a listener is (proto, local
// address, port, executable); an outbound connection is (proto, executable,
// remote address, remote port), never the ephemeral local port; a connection
// into one of the host's listeners is (proto, executable, local port, remote
// address), never the client's ephemeral port; a file access is
// (executable, path, kind). PIDs never appear in a key, so a restarted
// process is not news. Thread-safe (pure functions).
#ifndef NETVIGIL_COLLECTOR_STORE_FACTS_H_
#define NETVIGIL_COLLECTOR_STORE_FACTS_H_

#include <map>
#include <string>
#include <tuple>

#include "netvigil/v1/probes.pb.h"
#include "netvigil/v1/query.pb.h"

namespace netvigil::collector {

struct SocketKey {
  std::string key_kind;  // "listener", "remote" or "inbound"
  v1::Transport proto = v1::TRANSPORT_UNSPECIFIED;
  std::string local_address;
  uint32_t local_port = 0;
  std::string remote_address;
  uint32_t remote_port = 0;
  std::string exe;

  auto Tie() const {
    return std::tie(key_kind, proto, local_address, local_port, remote_address,
                    remote_port, exe);
  }
  bool operator<(const SocketKey& o) const { return Tie() < o.Tie(); }
  bool operator==(const SocketKey& o) const { return Tie() == o.Tie(); }
};

// Each key with the process name seen for it (the first, in snapshot order).
std::map<SocketKey, std::string> SocketFacts(const v1::SocketSnapshot& snap);

struct FileKey {
  std::string exe;
  std::string path;
  v1::FileAccessKind kind = v1::FILE_ACCESS_UNSPECIFIED;

  auto Tie() const { return std::tie(exe, path, kind); }
  bool operator<(const FileKey& o) const { return Tie() < o.Tie(); }
  bool operator==(const FileKey& o) const { return Tie() == o.Tie(); }
};

struct FileFactInfo {
  std::string process_name;
  uint32_t uid = 0;
  bool deleted = false;      // the file was unlinked while held
  bool exe_deleted = false;  // the process's executable was unlinked
};

std::map<FileKey, FileFactInfo> FileFacts(const v1::FileSnapshot& snap);

// The executable that names a process in keys: its exe, or "[name]" when
// the exe could not be read (kernel threads, another user's process).
std::string ExeOf(const v1::ProcessRef& p);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_STORE_FACTS_H_
