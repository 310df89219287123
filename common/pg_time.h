// Times as the PostgreSQL store binds and reads them: whole microseconds
// since the Unix epoch (bound as `to_timestamp($n / 1e6)`, read back with
// EpochMicrosSql) and timestamptz text (the elements of a timestamptz[]
// parameter). Safe on any input: infinite times and protobuf Timestamps
// outside their range saturate instead of overflowing.
// Thread-safe (pure functions).
#ifndef NETVIGIL_COMMON_PG_TIME_H_
#define NETVIGIL_COMMON_PG_TIME_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace netvigil {

// `t` in microseconds since 1970-01-01 UTC, rounded down (before 1970 too:
// half a microsecond before the epoch is -1). The infinite past and future,
// and times beyond int64, saturate to INT64_MIN and INT64_MAX, never a
// wrapped date. Bound through to_timestamp(), INT64_MIN is refused ("timestamp
// out of range") but INT64_MAX is stored as year 294247 (PostgreSQL reaches
// 294276 AD) and reads back within a millisecond of INT64_MAX: callers bind
// finite, validated times.
// to_timestamp() computes in double precision: what it stores is exact to
// the microsecond from 1900 to 2100 (tests/unit/collector/store/
// store_pg_time_test.cc), off by up to tens of microseconds near year 9999;
// ToPgTimestamptz's text is exact everywhere.
int64_t ToEpochMicros(absl::Time t);

// The inverse of ToEpochMicros: INT64_MIN and INT64_MAX, its saturated
// values, are the infinite past and future.
absl::Time FromEpochMicros(int64_t us);

// A protobuf Timestamp as epoch microseconds (rounded down), for any seconds
// and nanos: protobuf's TimeUtil::TimestampToMicroseconds multiplies without
// an overflow check.
int64_t ProtoTimeToEpochMicros(const google::protobuf::Timestamp& t);

// Epoch microseconds as a Timestamp, clamped to protobuf's 0001..9999 as
// ToProtoTime (common/proto_time.h) does.
google::protobuf::Timestamp EpochMicrosToProtoTime(int64_t us);

// `t` as timestamptz text in UTC to the microsecond (rounded down), e.g.
// "2026-12-05 16:04:13.123456+00". Clamped to 0001-01-01 00:00:00 ..
// 9999-12-31 23:59:59.999999, the range a valid protobuf Timestamp holds,
// infinite times included: never "infinity", which every read through
// EpochMicrosSql would refuse (a bigint has no infinity) for as long as the
// row is kept.
std::string ToPgTimestamptz(absl::Time t);

// The SQL expression that reads timestamptz `column` as epoch microseconds
// (a bigint, rounded to the nearest; NULL stays NULL).
std::string EpochMicrosSql(absl::string_view column);

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_PG_TIME_H_
