// A walk over a protobuf message's wire bytes, before it is parsed, that
// bounds what parsing it would cost: a message's parsed form can be 60x
// its wire size (an empty sub-message is 2 bytes on the wire and a C++
// object of about 100), so the receive size limit alone does not bound
// memory. Uses the message's descriptor to know which length-delimited
// fields are sub-messages. Thread-safe (pure functions).
#ifndef NETVIGIL_COLLECTOR_INGEST_MESSAGE_PRECHECK_H_
#define NETVIGIL_COLLECTOR_INGEST_MESSAGE_PRECHECK_H_

#include <cstdint>

#include "absl/status/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/zero_copy_stream.h"

namespace netvigil::collector {

struct ParseCostLimits {
  // What parsing may cost in memory, as estimated below.
  int64_t max_parsed_bytes = 128 << 20;
  int max_depth = 32;
};

// Estimated cost of parsing: wire bytes, plus kMessageCost per sub-message,
// kStringCost per non-empty string or bytes field (a heap std::string) and
// kScalarCost per element of a repeated number or enum (each is at least a
// byte on the wire and up to 8 in memory, twice that with the array's
// spare capacity).
inline constexpr int64_t kMessageCost = 160;
inline constexpr int64_t kStringCost = 48;
inline constexpr int64_t kScalarCost = 16;

struct ParseCost {
  int64_t wire_bytes = 0;
  int64_t messages = 0;
  int64_t strings = 0;
  int64_t scalars = 0;  // elements of repeated numbers, at most
  int64_t estimate() const {
    return wire_bytes + messages * kMessageCost + strings * kStringCost +
           scalars * kScalarCost;
  }
};

// Walks `in` (`size` bytes) as a `type`; RESOURCE_EXHAUSTED when parsing it
// would cost more than the limits allow, INVALID_ARGUMENT when the bytes
// are not a well-formed message. `cost` (optional) gets the figures.
absl::Status PrecheckWire(const google::protobuf::Descriptor* type,
                          google::protobuf::io::ZeroCopyInputStream* in,
                          int64_t size, const ParseCostLimits& limits,
                          ParseCost* cost = nullptr);

// The same over bytes in memory (tests, fuzzing).
absl::Status PrecheckWire(const google::protobuf::Descriptor* type,
                          const std::string& bytes,
                          const ParseCostLimits& limits,
                          ParseCost* cost = nullptr);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_INGEST_MESSAGE_PRECHECK_H_
