// The pure half of the history writer (history_writer.h): how results map
// onto the history tables' rows, with no libpqxx, so that a test or a fuzz
// harness links it without PostgreSQL. The present facts of a batch's
// agents and their appeared/gone events (FactBook), the column arrays the
// writer sends in one statement per table, PostgreSQL array literals, a
// result's probe-state kind and time, and the cache of present facts.
// Thread-safe: PresentFactsCache; the rest is plain data and pure functions
// (thread-compatible).
#ifndef NETVIGIL_COLLECTOR_STORE_HISTORY_MAPPING_H_
#define NETVIGIL_COLLECTOR_STORE_HISTORY_MAPPING_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/model/facts.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::collector {

// History keys are the fact model's (model/facts.h): nothing else decides
// what "the same socket" is.
using SocketKey = model::SocketFact;
using FileKey = model::FileFact;
using FileFactInfo = model::FileFactInfo;

// The present socket and file facts of each agent as its newest committed
// snapshot left them, so that a batch compares a snapshot with them without
// reading them back from PostgreSQL (hundreds of rows an agent, every
// snapshot). An entry is used only while probe_state, read under lock in
// the batch's own transaction, still names the snapshot it was made from;
// anything else (another collector sharing the database, a commit that
// failed or whose outcome is unknown) reads the tables, which stay the only
// truth. Thread-safe.
class PresentFactsCache {
 public:
  template <typename Key, typename Info>
  struct Entry {
    int64_t seq = 0;  // probe_state.last_seq these facts belong to
    std::map<Key, Info> facts;
  };
  using Sockets = Entry<SocketKey, model::SocketFactInfo>;
  using Files = Entry<FileKey, FileFactInfo>;

  // Moves out the facts of `agent` if they belong to snapshot `seq`; the
  // entry is gone either way (the caller puts back what it commits).
  bool TakeSockets(int64_t agent, int64_t seq, Sockets& out);
  bool TakeFiles(int64_t agent, int64_t seq, Files& out);
  // After a commit: the facts each agent's newest snapshot left.
  void Put(std::map<int64_t, Sockets> sockets, std::map<int64_t, Files> files);

 private:
  template <typename E>
  bool Take(std::map<int64_t, E>& entries, int64_t agent, int64_t seq, E& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::map<int64_t, Sockets> sockets_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, Files> files_ ABSL_GUARDED_BY(mu_);
};

// A PostgreSQL array literal ({"a","b"}) of strings / numbers.
std::string PgTextArray(const std::vector<std::string>& v);
std::string PgIntArray(const std::vector<int64_t>& v);

// What HistoryBatch (history_writer.cc) computes before it writes.
namespace history {

// The newest result of one kind of one agent: present facts were last seen
// at its time.
struct Previous {
  bool exists = false;
  int64_t last_seq = 0;
  int64_t last_at_us = 0;
};

// The facts of one kind (sockets or files) of the agents in a batch: what is
// present, the net change per fact, and the appeared/gone events in order.
template <typename Key, typename Info>
struct FactBook {
  struct Delta {
    bool present = false;
    int64_t first_seen = 0;  // used only when the fact is new
    int64_t last_seen = 0;   // for a new fact; for an old one if set_last
    bool set_last = false;   // the fact went at least once in the batch
    Info info;
  };
  struct Event {
    int64_t agent, seq, at;
    const char* change;
    Key key;
    Info info;
  };

  std::map<int64_t, std::map<Key, Info>> present;
  std::map<std::pair<int64_t, Key>, Delta> deltas;
  std::vector<Event> events;

  // Compares one snapshot with what is present: appeared facts are new
  // (first and last seen `at`), gone ones were last seen `gone_at` (the
  // previous snapshot). A fact present before keeps the info it had.
  void Apply(int64_t agent, int64_t seq, int64_t at, int64_t gone_at,
             const std::map<Key, Info>& now) {
    std::map<Key, Info>& cur = present[agent];
    // The one diff of the fact model: the analysis sees the same.
    const model::FactDiff<Key> diff = model::DiffFacts(cur, now);
    const std::vector<const Key*>& appeared = diff.appeared;
    const std::vector<const Key*>& gone = diff.gone;
    for (const Key* k : appeared) {
      const Info& info = now.at(*k);
      events.push_back({agent, seq, at, "appeared", *k, info});
      auto [it, fresh] = deltas.try_emplace({agent, *k});
      if (fresh) it->second.first_seen = it->second.last_seen = at;
      it->second.present = true;
      it->second.info = info;
    }
    for (const Key* k : gone) {
      const Info& info = cur.at(*k);
      events.push_back({agent, seq, at, "gone", *k, info});
      auto [it, fresh] = deltas.try_emplace({agent, *k});
      if (fresh) {
        it->second.first_seen = at;
        it->second.info = info;
      }
      it->second.present = false;
      it->second.last_seen = gone_at;
      it->second.set_last = true;
    }
    for (const Key* k : gone) cur.erase(*k);
    for (const Key* k : appeared) cur.emplace(*k, now.at(*k));
  }
};

using SocketBook = FactBook<SocketKey, model::SocketFactInfo>;
using FileBook = FactBook<FileKey, FileFactInfo>;

// Columns of socket rows as array literals, in the order of
// history_writer.cc's SocketRows().
struct SocketColumns {
  std::vector<int64_t> agent, proto, lport, rport, first, last, present, seq,
      at;
  std::vector<std::string> kind, laddr, raddr, exe, name, change;

  void AddKey(int64_t agent_id, const SocketKey& k,
              const model::SocketFactInfo& info) {
    const std::string& n = info.process_name;
    agent.push_back(agent_id);
    kind.push_back(model::KindName(k.kind));
    proto.push_back(k.proto);
    laddr.push_back(k.local_address);
    lport.push_back(k.local_port);
    raddr.push_back(k.remote_address);
    rport.push_back(k.remote_port);
    exe.push_back(k.owner);
    name.push_back(n);
  }
};

// Columns of file rows as array literals, in the order of history_writer.cc's
// FileRows().
struct FileColumns {
  std::vector<int64_t> agent, kind, uid, deleted, first, last, present, seq, at;
  std::vector<std::string> exe, path, name, change;

  void AddKey(int64_t agent_id, const FileKey& k, const FileFactInfo& i) {
    agent.push_back(agent_id);
    exe.push_back(k.owner);
    path.push_back(k.path);
    kind.push_back(k.kind);
    name.push_back(i.process_name);
    uid.push_back(i.uid);
    // Two flags in one column of the unnest: bit 0 the file, bit 1 the
    // executable (FileRows' readers take them apart).
    deleted.push_back((i.deleted ? 1 : 0) | (i.exe_deleted ? 2 : 0));
  }
};

// One socket event as stored in its snapshot's packed row of
// socket_event_sets (migration 0016): the key and process name as the
// socket_events columns held them.
struct PackedSocketEvent {
  std::string change;  // "appeared" or "gone"
  std::string kind;    // model::KindName
  int64_t proto = 0;
  std::string local_address;
  int64_t local_port = 0;
  std::string remote_address;
  int64_t remote_port = 0;
  std::string exe;
  std::string process_name;

  bool operator==(const PackedSocketEvent& o) const {
    return change == o.change && kind == o.kind && proto == o.proto &&
           local_address == o.local_address && local_port == o.local_port &&
           remote_address == o.remote_address && remote_port == o.remote_port &&
           exe == o.exe && process_name == o.process_name;
  }
};

// The events of one snapshot as one value, in order. Format 1: a version
// byte (1); a string table (count, then each as length and bytes: every
// distinct text of the events once, so a program's path and name cost
// their bytes once a row, not once an event); the events (count, then each
// as nine varints: change, kind, local address, remote address, exe and
// process name as indexes into the table, proto and the ports zigzagged).
// About 30 bytes an event where a socket_events row with its index took
// about 200. Format 2 (what PackSocketEvents writes when it is smaller): a
// version byte (2), format 1's length as a varint, then format 1 deflated
// in zlib's format (with its Adler-32 check): about half the bytes.
std::string PackSocketEvents(const std::vector<PackedSocketEvent>& events);
// Format 1 always (for tests and for reading what it holds).
std::string PackSocketEventsPlain(const std::vector<PackedSocketEvent>& events);
// The inverse, of either format. What is read is bounded by its own length
// (counts and indexes are checked against what is left and the table's
// size; a deflated value's stated length is capped and must be what it
// inflates to, with no bytes after): a value that is neither format or is
// cut short is an error naming what is wrong, never a crash.
absl::StatusOr<std::vector<PackedSocketEvent>> UnpackSocketEvents(
    std::string_view packed);

// The probe_state kind a result updates ("sockets", "files", "path",
// "speed"), or nullptr (a gap has no probe state).
const char* StateKind(const v1::Result& r);
// When a result's facts were seen: its snapshot's taken_at, else when it
// was produced (microseconds since the epoch).
int64_t SnapshotTime(const v1::Result& r);

}  // namespace history
}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_STORE_HISTORY_MAPPING_H_
