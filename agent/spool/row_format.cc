#include "agent/spool/row_format.h"

#include "absl/time/time.h"
#include "common/proto_time.h"

namespace netvigil::agent::spool {

uint64_t Checksum(absl::string_view data) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

RowColumns EncodeRow(const v1::Result& result, bool is_gap, std::string* body) {
  *body = result.SerializeAsString();
  RowColumns row;
  row.seq = result.seq();
  row.produced_at_us = absl::ToUnixMicros(FromProtoTime(result.produced_at()));
  row.is_gap = is_gap;
  row.size = body->size();
  row.checksum = Checksum(*body);
  row.body = *body;
  return row;
}

google::protobuf::Timestamp MicrosTimestamp(absl::Time t) {
  return ToProtoTime(absl::FromUnixMicros(absl::ToUnixMicros(t)));
}

bool DecodeRow(const RowColumns& row, v1::Result* out) {
  if (Checksum(row.body) != row.checksum || row.body.size() != row.size) {
    return false;
  }
  if (!out->ParseFromArray(row.body.data(), static_cast<int>(row.body.size())))
    return false;
  return out->seq() == row.seq;
}

}  // namespace netvigil::agent::spool
