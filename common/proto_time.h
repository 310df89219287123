// Conversions between protobuf Timestamp/Duration and absl time that are safe
// on any input. protobuf's TimeUtil throws (and so aborts a process built
// without exception handlers) on a value outside 0001..9999, and its
// *ToMicroseconds/*ToNanoseconds multiply without an overflow check. A time
// that came from a peer, a child's output or a request goes through these.
// Thread-safe (pure functions).
#ifndef NETVIGIL_COMMON_PROTO_TIME_H_
#define NETVIGIL_COMMON_PROTO_TIME_H_

#include <cstdint>

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace netvigil {

// True when `t` is a timestamp protobuf accepts: seconds within
// 0001-01-01..9999-12-31 and nanos within [0, 1e9).
bool IsValidTimestamp(const google::protobuf::Timestamp& t);

// True when `d` is a duration protobuf accepts: |seconds| <= 315,576,000,000,
// |nanos| < 1e9, and both of the same sign.
bool IsValidDuration(const google::protobuf::Duration& d);

// `t` as absl::Time; saturates to absl::InfinitePast/InfiniteFuture instead
// of overflowing, so callers can range-check the result.
absl::Time FromProtoTime(const google::protobuf::Timestamp& t);

// `d` as absl::Duration; saturates to +/-absl::InfiniteDuration.
absl::Duration FromProtoDuration(const google::protobuf::Duration& d);

// `t` as a Timestamp, clamped to protobuf's valid range (an infinite time
// becomes the first or last representable second).
google::protobuf::Timestamp ToProtoTime(absl::Time t);

// `d` as a Duration, clamped to protobuf's valid range.
google::protobuf::Duration ToProtoDuration(absl::Duration d);

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_PROTO_TIME_H_
