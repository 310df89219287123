#include "collector/store/history_mapping.h"

#include <zlib.h>

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "collector/store/pack_codec.h"
#include "common/pg_time.h"

namespace netvigil::collector {
namespace {

constexpr char kPackFormat = 1;
constexpr char kPackFormatDeflated = 2;
// Below this a deflated value is not smaller (its header and check).
constexpr size_t kMinToCompress = 64;
// No snapshot's events come near this (a snapshot is bounded by
// validation); a larger stated length is refused before it is allocated.
constexpr uint64_t kMaxPlainSize = 64u << 20;

using pack::PutVarint;
using pack::Reader;
using pack::UnZigZag;
using pack::ZigZag;

}  // namespace

namespace history {

// Format 1, uncompressed: the string table, the count, nine varints an
// event.
std::string PackSocketEventsPlain(
    const std::vector<PackedSocketEvent>& events) {
  std::vector<const std::string*> table;
  std::map<std::string_view, uint64_t> index;
  auto idx = [&](const std::string& s) {
    auto [it, fresh] = index.try_emplace(s, table.size());
    if (fresh) table.push_back(&s);
    return it->second;
  };
  std::string body;
  for (const PackedSocketEvent& e : events) {
    PutVarint(idx(e.change), body);
    PutVarint(idx(e.kind), body);
    PutVarint(ZigZag(e.proto), body);
    PutVarint(idx(e.local_address), body);
    PutVarint(ZigZag(e.local_port), body);
    PutVarint(idx(e.remote_address), body);
    PutVarint(ZigZag(e.remote_port), body);
    PutVarint(idx(e.exe), body);
    PutVarint(idx(e.process_name), body);
  }
  std::string out(1, kPackFormat);
  PutVarint(table.size(), out);
  for (const std::string* s : table) {
    PutVarint(s->size(), out);
    out += *s;
  }
  PutVarint(events.size(), out);
  return out + body;
}

std::string PackSocketEvents(const std::vector<PackedSocketEvent>& events) {
  std::string plain = PackSocketEventsPlain(events);
  // Format 2: format 1 deflated (zlib, with its Adler-32 check), with the
  // plain length before it. A snapshot's events are about 800 bytes of
  // digits, repeated indexes and ports, which deflate halves (README
  // "Storage"); rows below a page's TOAST threshold are never compressed
  // by PostgreSQL itself. Kept plain when that is not smaller.
  if (plain.size() < kMinToCompress) return plain;
  uLongf bound = compressBound(plain.size());
  std::string z(bound, '\0');
  if (compress2(reinterpret_cast<Bytef*>(z.data()), &bound,
                reinterpret_cast<const Bytef*>(plain.data()), plain.size(),
                Z_DEFAULT_COMPRESSION) != Z_OK) {
    return plain;
  }
  z.resize(bound);
  std::string out(1, kPackFormatDeflated);
  PutVarint(plain.size(), out);
  out += z;
  return out.size() < plain.size() ? out : plain;
}

absl::StatusOr<std::vector<PackedSocketEvent>> UnpackSocketEvents(
    std::string_view packed) {
  if (!packed.empty() && packed[0] == kPackFormatDeflated) {
    Reader r(packed.substr(1));
    uint64_t plain_size = 0;
    // Bounded before anything is allocated: deflate does not expand past
    // about 1,032 to 1, and no snapshot's events come near the cap.
    if (!r.Varint(plain_size) || plain_size == 0 ||
        plain_size > kMaxPlainSize ||
        plain_size > 1100 * static_cast<uint64_t>(packed.size())) {
      return absl::DataLossError(
          "packed socket events: bad length of the deflated events");
    }
    const std::string_view z = packed.substr(packed.size() - r.left());
    std::string plain(plain_size, '\0');
    uLongf got = plain_size;
    uLong used = z.size();
    if (uncompress2(reinterpret_cast<Bytef*>(plain.data()), &got,
                    reinterpret_cast<const Bytef*>(z.data()), &used) != Z_OK ||
        got != plain_size || used != z.size()) {
      return absl::DataLossError(
          "packed socket events: the deflated events do not inflate to "
          "their length");
    }
    if (plain[0] != kPackFormat) {  // one level only
      return absl::DataLossError(
          "packed socket events: deflated value is not format 1");
    }
    return UnpackSocketEvents(plain);
  }
  if (packed.empty() || packed[0] != kPackFormat) {
    return absl::DataLossError(
        "packed socket events: not format 1 or 2 (first byte)");
  }
  Reader r(packed.substr(1));
  uint64_t n = 0;
  // Each string takes at least its length byte, each event nine bytes.
  if (!r.Varint(n) || n > r.left()) {
    return absl::DataLossError("packed socket events: bad string count");
  }
  std::vector<std::string> table(n);
  for (std::string& s : table) {
    uint64_t len = 0;
    if (!r.Varint(len) || !r.Bytes(len, s)) {
      return absl::DataLossError("packed socket events: string cut short");
    }
  }
  if (!r.Varint(n) || n > r.left() / 9) {
    return absl::DataLossError("packed socket events: bad event count");
  }
  std::vector<PackedSocketEvent> out(n);
  for (PackedSocketEvent& e : out) {
    uint64_t v[9];
    for (uint64_t& x : v) {
      if (!r.Varint(x)) {
        return absl::DataLossError("packed socket events: event cut short");
      }
    }
    for (int i : {0, 1, 3, 5, 7, 8}) {
      if (v[i] >= table.size()) {
        return absl::DataLossError(absl::StrCat(
            "packed socket events: string index ", v[i], " of ", table.size()));
      }
    }
    e.change = table[v[0]];
    e.kind = table[v[1]];
    e.proto = UnZigZag(v[2]);
    e.local_address = table[v[3]];
    e.local_port = UnZigZag(v[4]);
    e.remote_address = table[v[5]];
    e.remote_port = UnZigZag(v[6]);
    e.exe = table[v[7]];
    e.process_name = table[v[8]];
  }
  if (r.left() != 0) {
    return absl::DataLossError("packed socket events: bytes after the events");
  }
  return out;
}

}  // namespace history

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
