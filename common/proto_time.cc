#include "proto_time.h"

namespace netvigil {
namespace {

// protobuf's limits (google/protobuf/timestamp.proto, duration.proto).
constexpr int64_t kMinSeconds = -62135596800;  // 0001-01-01T00:00:00Z
constexpr int64_t kMaxSeconds = 253402300799;  // 9999-12-31T23:59:59Z
constexpr int64_t kMaxDurationSeconds = 315576000000;
constexpr int32_t kNanosPerSecond = 1'000'000'000;

}  // namespace

bool IsValidTimestamp(const google::protobuf::Timestamp& t) {
  return t.seconds() >= kMinSeconds && t.seconds() <= kMaxSeconds &&
         t.nanos() >= 0 && t.nanos() < kNanosPerSecond;
}

bool IsValidDuration(const google::protobuf::Duration& d) {
  if (d.seconds() < -kMaxDurationSeconds || d.seconds() > kMaxDurationSeconds ||
      d.nanos() <= -kNanosPerSecond || d.nanos() >= kNanosPerSecond) {
    return false;
  }
  return !(d.seconds() > 0 && d.nanos() < 0) &&
         !(d.seconds() < 0 && d.nanos() > 0);
}

absl::Time FromProtoTime(const google::protobuf::Timestamp& t) {
  // absl's arithmetic saturates at infinity; no step here can overflow.
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

absl::Duration FromProtoDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

google::protobuf::Timestamp ToProtoTime(absl::Time t) {
  google::protobuf::Timestamp out;
  if (t <= absl::FromUnixSeconds(kMinSeconds)) {
    out.set_seconds(kMinSeconds);
    return out;
  }
  if (t >= absl::FromUnixSeconds(kMaxSeconds)) {
    out.set_seconds(kMaxSeconds);
    return out;
  }
  const absl::Duration since_epoch = t - absl::UnixEpoch();
  absl::Duration rem;
  const int64_t secs = absl::IDivDuration(since_epoch, absl::Seconds(1), &rem);
  int64_t nanos = absl::ToInt64Nanoseconds(rem);
  int64_t s = secs;
  if (nanos < 0) {  // before 1970 the remainder is negative
    nanos += kNanosPerSecond;
    s -= 1;
  }
  out.set_seconds(s);
  out.set_nanos(static_cast<int32_t>(nanos));
  return out;
}

google::protobuf::Duration ToProtoDuration(absl::Duration d) {
  google::protobuf::Duration out;
  if (d >= absl::Seconds(kMaxDurationSeconds)) {
    out.set_seconds(kMaxDurationSeconds);
    return out;
  }
  if (d <= absl::Seconds(-kMaxDurationSeconds)) {
    out.set_seconds(-kMaxDurationSeconds);
    return out;
  }
  absl::Duration rem;
  const int64_t secs = absl::IDivDuration(d, absl::Seconds(1), &rem);
  out.set_seconds(secs);  // truncation toward zero: nanos share the sign
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(rem)));
  return out;
}

}  // namespace netvigil
