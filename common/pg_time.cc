#include "common/pg_time.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"

namespace netvigil {
namespace {

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// The range a valid protobuf Timestamp holds, 0001-01-01T00:00:00Z to
// 9999-12-31T23:59:59.999999Z (PostgreSQL's is wider: 4713 BC to 294276 AD).
constexpr int64_t kFirstSecond = -62135596800;
constexpr int64_t kLastSecond = 253402300799;

}  // namespace

int64_t ToEpochMicros(absl::Time t) {
  // absl rounds toward the infinite past and saturates at int64's ends,
  // for infinite times and finite ones beyond int64 microseconds alike.
  return absl::ToUnixMicros(t);
}

absl::Time FromEpochMicros(int64_t us) {
  if (us == kMin) return absl::InfinitePast();
  if (us == kMax) return absl::InfiniteFuture();
  return absl::FromUnixMicros(us);
}

int64_t ProtoTimeToEpochMicros(const google::protobuf::Timestamp& t) {
  return ToEpochMicros(FromProtoTime(t));  // FromProtoTime saturates
}

google::protobuf::Timestamp EpochMicrosToProtoTime(int64_t us) {
  return ToProtoTime(FromEpochMicros(us));
}

std::string ToPgTimestamptz(absl::Time t) {
  const absl::Time first = absl::FromUnixSeconds(kFirstSecond);
  const absl::Time last =
      absl::FromUnixSeconds(kLastSecond) + absl::Microseconds(999999);
  t = std::clamp(t, first, last);
  return absl::FormatTime("%E4Y-%m-%d %H:%M:%E6S+00", t, absl::UTCTimeZone());
}

std::string EpochMicrosSql(absl::string_view column) {
  return absl::StrCat("(extract(epoch FROM ", column, ") * 1e6)::bigint");
}

}  // namespace netvigil
