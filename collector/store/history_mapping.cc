#include "collector/store/history_mapping.h"

#include <string>
#include <utility>
#include <vector>

#include "common/pg_time.h"

namespace netvigil::collector {

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

namespace history {

const char* StateKind(const v1::Result& r) {
  switch (r.payload_case()) {
    case v1::Result::kSockets:
      return "sockets";
    case v1::Result::kFiles:
      return "files";
    case v1::Result::kPath:
      return "path";
    case v1::Result::kSpeed:
      return "speed";
    default:
      return nullptr;  // gaps have no probe state
  }
}

int64_t SnapshotTime(const v1::Result& r) {
  if (r.has_sockets() && r.sockets().has_taken_at()) {
    return ProtoTimeToEpochMicros(r.sockets().taken_at());
  }
  if (r.has_files() && r.files().has_taken_at()) {
    return ProtoTimeToEpochMicros(r.files().taken_at());
  }
  return ProtoTimeToEpochMicros(r.produced_at());
}

}  // namespace history

template <typename E>
bool PresentFactsCache::Take(std::map<int64_t, E>& entries, int64_t agent,
                             int64_t seq, E& out) {
  auto it = entries.find(agent);
  if (it == entries.end()) return false;
  const bool hit = it->second.seq == seq;
  if (hit) out = std::move(it->second);
  entries.erase(it);
  return hit;
}

bool PresentFactsCache::TakeSockets(int64_t agent, int64_t seq, Sockets& out) {
  absl::MutexLock l(&mu_);
  return Take(sockets_, agent, seq, out);
}

bool PresentFactsCache::TakeFiles(int64_t agent, int64_t seq, Files& out) {
  absl::MutexLock l(&mu_);
  return Take(files_, agent, seq, out);
}

void PresentFactsCache::Put(std::map<int64_t, Sockets> sockets,
                            std::map<int64_t, Files> files) {
  absl::MutexLock l(&mu_);
  for (auto& [agent, e] : sockets) sockets_[agent] = std::move(e);
  for (auto& [agent, e] : files) files_[agent] = std::move(e);
}

}  // namespace netvigil::collector
