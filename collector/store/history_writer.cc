#include "collector/store/history_writer.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "collector/store/facts.h"
#include "google/protobuf/util/time_util.h"

namespace netvigil::collector {
namespace {

using google::protobuf::util::TimeUtil;

int64_t Micros(const google::protobuf::Timestamp& t) {
  return TimeUtil::TimestampToMicroseconds(t);
}

// The time of the previous result of `kind` (when present facts were last
// seen) and whether this result is newer than it; updates the pointer.
struct Previous {
  bool exists = false;
  int64_t last_seq = 0;
  int64_t last_at_us = 0;
};

Previous AdvanceProbeState(pqxx::work& tx, int64_t agent_id, const char* kind,
                           int64_t seq, int64_t at_us) {
  Previous prev;
  pqxx::result r = tx.exec_params(
      "SELECT last_seq, (extract(epoch FROM last_at) * 1e6)::bigint"
      " FROM probe_state WHERE agent_id = $1 AND kind = $2 FOR UPDATE",
      agent_id, kind);
  if (!r.empty()) {
    prev.exists = true;
    prev.last_seq = r[0][0].as<int64_t>();
    prev.last_at_us = r[0][1].as<int64_t>();
  }
  if (!prev.exists || seq > prev.last_seq) {
    tx.exec_params(
        "INSERT INTO probe_state (agent_id, kind, last_seq, last_at)"
        " VALUES ($1, $2, $3, to_timestamp($4 / 1e6))"
        " ON CONFLICT (agent_id, kind) DO UPDATE SET"
        "  last_seq = EXCLUDED.last_seq, last_at = EXCLUDED.last_at",
        agent_id, kind, seq, at_us);
  }
  return prev;
}

void WriteSockets(pqxx::work& tx, int64_t agent_id, int64_t seq,
                  const v1::SocketSnapshot& snap, int64_t at_us) {
  const Previous prev = AdvanceProbeState(tx, agent_id, "sockets", seq, at_us);
  // A snapshot older than the newest one stored (never expected: results
  // arrive in order) is kept raw but does not rewrite history.
  if (prev.exists && seq < prev.last_seq) return;
  const std::map<SocketKey, std::string> now = SocketFacts(snap);
  std::map<SocketKey, std::string> present;
  for (const auto& row :
       tx.exec_params("SELECT key_kind, proto, local_address, local_port,"
                      "  remote_address, remote_port, exe, process_name"
                      " FROM socket_facts WHERE agent_id = $1 AND present",
                      agent_id)) {
    SocketKey k;
    k.key_kind = row[0].as<std::string>();
    k.proto = static_cast<v1::Transport>(row[1].as<int>());
    k.local_address = row[2].as<std::string>();
    k.local_port = row[3].as<int64_t>();
    k.remote_address = row[4].as<std::string>();
    k.remote_port = row[5].as<int64_t>();
    k.exe = row[6].as<std::string>();
    present.emplace(std::move(k), row[7].as<std::string>());
  }
  // Appeared: in the snapshot, not present before. Gone: the reverse.
  std::vector<std::string> kind, laddr, raddr, exe, name, change;
  std::vector<int64_t> proto, lport, rport;
  auto add = [&](const SocketKey& k, const std::string& n, const char* c) {
    kind.push_back(k.key_kind);
    proto.push_back(k.proto);
    laddr.push_back(k.local_address);
    lport.push_back(k.local_port);
    raddr.push_back(k.remote_address);
    rport.push_back(k.remote_port);
    exe.push_back(k.exe);
    name.push_back(n);
    change.push_back(c);
  };
  for (const auto& [k, n] : now) {
    if (present.count(k) == 0) add(k, n, "appeared");
  }
  for (const auto& [k, n] : present) {
    if (now.count(k) == 0) add(k, n, "gone");
  }
  if (change.empty()) return;
  const std::string a_kind = PgTextArray(kind), a_laddr = PgTextArray(laddr),
                    a_raddr = PgTextArray(raddr), a_exe = PgTextArray(exe),
                    a_name = PgTextArray(name), a_change = PgTextArray(change),
                    a_proto = PgIntArray(proto), a_lport = PgIntArray(lport),
                    a_rport = PgIntArray(rport);
  const char* kRows =
      " FROM unnest($2::text[], $3::smallint[], $4::text[], $5::int[],"
      "  $6::text[], $7::int[], $8::text[], $9::text[], $10::text[])"
      "  AS c(key_kind, proto, local_address, local_port, remote_address,"
      "       remote_port, exe, process_name, change)";
  tx.exec_params(
      absl::StrCat(
          "INSERT INTO socket_facts AS f (agent_id, key_kind, proto,"
          "  local_address, local_port, remote_address, remote_port, exe,"
          "  process_name, first_seen, last_seen, present)"
          " SELECT $1, key_kind, proto, local_address, local_port,"
          "  remote_address, remote_port, exe, process_name,"
          "  to_timestamp($11 / 1e6), to_timestamp($11 / 1e6), true",
          kRows,
          " WHERE change = 'appeared'"
          " ON CONFLICT (agent_id, key_kind, proto, local_address, local_port,"
          "  remote_address, remote_port, exe) DO UPDATE SET present = true,"
          "  process_name = EXCLUDED.process_name"),
      agent_id, a_kind, a_proto, a_laddr, a_lport, a_raddr, a_rport, a_exe,
      a_name, a_change, at_us);
  tx.exec_params(
      absl::StrCat("UPDATE socket_facts f SET present = false,"
                   "  last_seen = to_timestamp($11 / 1e6)",
                   kRows,
                   " WHERE c.change = 'gone' AND f.agent_id = $1"
                   "  AND f.key_kind = c.key_kind AND f.proto = c.proto"
                   "  AND f.local_address = c.local_address"
                   "  AND f.local_port = c.local_port"
                   "  AND f.remote_address = c.remote_address"
                   "  AND f.remote_port = c.remote_port AND f.exe = c.exe"),
      agent_id, a_kind, a_proto, a_laddr, a_lport, a_raddr, a_rport, a_exe,
      a_name, a_change, prev.exists ? prev.last_at_us : at_us);
  tx.exec_params(
      absl::StrCat(
          "INSERT INTO socket_events (agent_id, seq, at, change, key_kind,"
          "  proto, local_address, local_port, remote_address, remote_port,"
          "  exe, process_name)"
          " SELECT $1, $12, to_timestamp($11 / 1e6), change, key_kind, proto,"
          "  local_address, local_port, remote_address, remote_port, exe,"
          "  process_name",
          kRows),
      agent_id, a_kind, a_proto, a_laddr, a_lport, a_raddr, a_rport, a_exe,
      a_name, a_change, at_us, seq);
}

void WriteFiles(pqxx::work& tx, int64_t agent_id, int64_t seq,
                const v1::FileSnapshot& snap, int64_t at_us) {
  const Previous prev = AdvanceProbeState(tx, agent_id, "files", seq, at_us);
  if (prev.exists && seq < prev.last_seq) return;
  const std::map<FileKey, FileFactInfo> now = FileFacts(snap);
  std::map<FileKey, FileFactInfo> present;
  for (const auto& row :
       tx.exec_params("SELECT exe, path, kind, process_name FROM file_facts"
                      " WHERE agent_id = $1 AND present",
                      agent_id)) {
    FileKey k{row[0].as<std::string>(), row[1].as<std::string>(),
              static_cast<v1::FileAccessKind>(row[2].as<int>())};
    present.emplace(std::move(k), FileFactInfo{row[3].as<std::string>()});
  }
  std::vector<std::string> exe, path, name, change;
  std::vector<int64_t> kind, uid, deleted;
  auto add = [&](const FileKey& k, const FileFactInfo& i, const char* c) {
    exe.push_back(k.exe);
    path.push_back(k.path);
    kind.push_back(k.kind);
    name.push_back(i.process_name);
    uid.push_back(i.uid);
    deleted.push_back(i.deleted ? 1 : 0);
    change.push_back(c);
  };
  for (const auto& [k, i] : now) {
    if (present.count(k) == 0) add(k, i, "appeared");
  }
  for (const auto& [k, i] : present) {
    if (now.count(k) == 0) add(k, i, "gone");
  }
  if (change.empty()) return;
  const std::string a_exe = PgTextArray(exe), a_path = PgTextArray(path),
                    a_kind = PgIntArray(kind), a_name = PgTextArray(name),
                    a_uid = PgIntArray(uid), a_del = PgIntArray(deleted),
                    a_change = PgTextArray(change);
  const char* kRows =
      " FROM unnest($2::text[], $3::text[], $4::smallint[], $5::text[],"
      "  $6::bigint[], $7::int[], $8::text[])"
      "  AS c(exe, path, kind, process_name, uid, deleted, change)";
  tx.exec_params(
      absl::StrCat(
          "INSERT INTO file_facts (agent_id, exe, path, kind, process_name,"
          "  uid, deleted, first_seen, last_seen, present)"
          " SELECT $1, exe, path, kind, process_name, uid, deleted <> 0,"
          "  to_timestamp($9 / 1e6), to_timestamp($9 / 1e6), true",
          kRows,
          " WHERE change = 'appeared'"
          " ON CONFLICT (agent_id, exe, path, kind) DO UPDATE SET"
          "  present = true, process_name = EXCLUDED.process_name,"
          "  uid = EXCLUDED.uid, deleted = EXCLUDED.deleted"),
      agent_id, a_exe, a_path, a_kind, a_name, a_uid, a_del, a_change, at_us);
  tx.exec_params(absl::StrCat("UPDATE file_facts f SET present = false,"
                              "  last_seen = to_timestamp($9 / 1e6)",
                              kRows,
                              " WHERE c.change = 'gone' AND f.agent_id = $1"
                              "  AND f.exe = c.exe AND f.path = c.path"
                              "  AND f.kind = c.kind"),
                 agent_id, a_exe, a_path, a_kind, a_name, a_uid, a_del,
                 a_change, prev.exists ? prev.last_at_us : at_us);
  tx.exec_params(
      absl::StrCat("INSERT INTO file_events (agent_id, seq, at, change, exe,"
                   "  path, kind, process_name)"
                   " SELECT $1, $10, to_timestamp($9 / 1e6), change, exe,"
                   "  path, kind, process_name",
                   kRows),
      agent_id, a_exe, a_path, a_kind, a_name, a_uid, a_del, a_change, at_us,
      seq);
}

void WritePath(pqxx::work& tx, int64_t agent_id, int64_t seq,
               const v1::PathRun& run, int64_t at_us) {
  AdvanceProbeState(tx, agent_id, "path", seq, at_us);
  const v1::PathHop& d = run.destination();
  tx.exec_params(
      "INSERT INTO path_runs (agent_id, seq, target, resolved_address,"
      "  started_at, destination_reached, loss_percent, avg_ms, best_ms,"
      "  worst_ms, hop_count, error)"
      " VALUES ($1, $2, $3, $4, to_timestamp($5 / 1e6), $6, $7, $8, $9, $10,"
      "  $11, $12) ON CONFLICT DO NOTHING",
      agent_id, seq, run.target(), run.resolved_address(),
      run.has_started_at() ? Micros(run.started_at()) : at_us,
      run.destination_reached(),
      run.destination_reached() || d.sent() > 0 ? d.loss_percent() : 100.0,
      d.avg_ms(), d.best_ms(), d.worst_ms(), run.hops_size(), run.error());
}

void WriteSpeed(pqxx::work& tx, int64_t agent_id, int64_t seq,
                const v1::SpeedResult& s, int64_t at_us) {
  AdvanceProbeState(tx, agent_id, "speed", seq, at_us);
  const int64_t started = s.has_started_at() ? Micros(s.started_at()) : at_us;
  const int64_t finished =
      s.has_finished_at() ? Micros(s.finished_at()) : started;
  tx.exec_params(
      "INSERT INTO speed_results (agent_id, seq, client, server, external,"
      "  started_at, finished_at, outcome, error, forward_bps, reverse_bps,"
      "  retransmits, schedule_id)"
      " VALUES ($1, $2, $3, $4, $5, to_timestamp($6 / 1e6),"
      "  to_timestamp($7 / 1e6), $8, $9, $10, $11, $12, $13)"
      " ON CONFLICT DO NOTHING",
      agent_id, seq, s.client(), s.server(), s.external(), started, finished,
      static_cast<int>(s.outcome()), s.error(), s.forward().received_bps(),
      s.reverse_figures().received_bps(),
      static_cast<int64_t>(s.forward().retransmits() +
                           s.reverse_figures().retransmits()),
      s.schedule_id());
}

void WriteGap(pqxx::work& tx, int64_t agent_id, int64_t seq, const v1::Gap& g) {
  tx.exec_params(
      "INSERT INTO gaps (agent_id, seq, first_seq, last_seq, count, first_at,"
      "  last_at, reason)"
      " VALUES ($1, $2, $3, $4, $5, to_timestamp($6 / 1e6),"
      "  to_timestamp($7 / 1e6), $8) ON CONFLICT DO NOTHING",
      agent_id, seq, static_cast<int64_t>(g.first_seq()),
      static_cast<int64_t>(g.last_seq()), static_cast<int64_t>(g.count()),
      Micros(g.first_produced_at()), Micros(g.last_produced_at()), g.reason());
}

}  // namespace

std::string PgTextArray(const std::vector<std::string>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ",";
    out += "\"";
    for (char c : v[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += "\"";
  }
  return out + "}";
}

std::string PgIntArray(const std::vector<int64_t>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ",";
    out += std::to_string(v[i]);
  }
  return out + "}";
}

void WriteHistory(pqxx::work& tx, int64_t agent_id, const v1::Result& r) {
  const int64_t seq = static_cast<int64_t>(r.seq());
  const int64_t at = Micros(r.produced_at());
  switch (r.payload_case()) {
    case v1::Result::kSockets: {
      const auto& s = r.sockets();
      WriteSockets(tx, agent_id, seq, s,
                   s.has_taken_at() ? Micros(s.taken_at()) : at);
      break;
    }
    case v1::Result::kFiles: {
      const auto& f = r.files();
      WriteFiles(tx, agent_id, seq, f,
                 f.has_taken_at() ? Micros(f.taken_at()) : at);
      break;
    }
    case v1::Result::kPath:
      WritePath(tx, agent_id, seq, r.path(), at);
      break;
    case v1::Result::kSpeed:
      WriteSpeed(tx, agent_id, seq, r.speed(), at);
      break;
    case v1::Result::kGap:
      WriteGap(tx, agent_id, seq, r.gap());
      break;
    case v1::Result::PAYLOAD_NOT_SET:
      break;
  }
}

}  // namespace netvigil::collector
