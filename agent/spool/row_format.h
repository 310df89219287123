// The spool's row: one v1::Result in the `results` table, with its seq,
// produced_at, gap flag, encoded size and a checksum of the encoding; and the
// check a row read back must pass. Pure; thread-safe.
//
// The table (unchanged since the first spool; existing spools open):
//   results(seq INTEGER PRIMARY KEY, produced_at_us INTEGER, is_gap INTEGER,
//           size INTEGER, checksum INTEGER, body BLOB)
//   meta(key TEXT PRIMARY KEY, value INTEGER) WITHOUT ROWID:
//     next_seq, acked_through, dropped_total
#ifndef NETVIGIL_AGENT_SPOOL_ROW_FORMAT_H_
#define NETVIGIL_AGENT_SPOOL_ROW_FORMAT_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::agent::spool {

// FNV-1a, 64 bits: catches bytes flipped inside a blob, which SQLite's own
// checks (page structure only) and protobuf parsing (strings) would let by.
uint64_t Checksum(absl::string_view data);

// A row's columns. `body` is the encoded v1::Result.
struct RowColumns {
  uint64_t seq = 0;
  int64_t produced_at_us = 0;
  bool is_gap = false;
  uint64_t size = 0;
  uint64_t checksum = 0;
  absl::string_view body;  // Not owned.
};

// The columns of `result` (its seq and produced_at must be set); `body`
// receives the encoding the columns point into.
RowColumns EncodeRow(const v1::Result& result, bool is_gap, std::string* body);

// `t` cut to the microsecond, the precision of the produced_at_us column,
// so a result's body and its row say the same time (and PostgreSQL keeps
// microseconds too).
google::protobuf::Timestamp MicrosTimestamp(absl::Time t);

// True when the row is whole: size and checksum match the body, the body
// parses, and the parsed result carries the row's seq. `out` is set then.
bool DecodeRow(const RowColumns& row, v1::Result* out);

}  // namespace netvigil::agent::spool

#endif  // NETVIGIL_AGENT_SPOOL_ROW_FORMAT_H_
