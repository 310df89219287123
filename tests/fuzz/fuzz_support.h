// Helpers shared by the libFuzzer harnesses (tests/fuzz/*_fuzz.cc) and the
// seed writer: the fixed "now" of the harnesses, a crash that names the
// broken property, and checks of what a parser hands to the wire or to
// PostgreSQL. Thread-compatible (pure functions).
#ifndef NETVIGIL_TESTS_FUZZ_FUZZ_SUPPORT_H_
#define NETVIGIL_TESTS_FUZZ_FUZZ_SUPPORT_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/time_util.h"

namespace netvigil::fuzz {

// The collector's clock in the harnesses; seeds are produced just before.
inline constexpr int64_t kNowUnixS = 1'790'000'000;  // 2026-09-21

// protobuf logs every string that is not UTF-8 it meets; in a fuzzer that
// is most inputs, and the log would drown the report. Defined once for
// every harness that includes this header.
inline const bool kProtobufLogsSilenced = [] {
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  return true;
}();

// A broken property is a crash, so libFuzzer keeps the input.
[[noreturn]] inline void Fail(const std::string& why) {
  std::fprintf(stderr, "fuzz property broken: %s\n", why.c_str());
  std::abort();
}

// What the other end of the gRPC stream does with a message: proto3 string
// fields must be UTF-8, or the receiver's parse fails and the whole message
// (and with it the stream) is refused.
inline void CheckSurvivesWire(const google::protobuf::Message& m) {
  std::string bytes;
  if (!m.SerializeToString(&bytes)) Fail("cannot serialize " + m.GetTypeName());
  std::unique_ptr<google::protobuf::Message> back(m.New());
  if (!back->ParseFromString(bytes)) {
    Fail(m.GetTypeName() + " does not parse back (a string is not UTF-8?)");
  }
}

// Walks every field of `m` (recursively) and fails on a value PostgreSQL
// would refuse when the store writes it: a NUL byte in text, a timestamp
// outside what google.protobuf.Timestamp allows (0001..9999, which
// to_timestamp() and the microsecond arithmetic hold), an enum beyond the
// smallint columns that hold them.
inline void CheckStorable(const google::protobuf::Message& m,
                          const std::string& path = "") {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Descriptor* d = m.GetDescriptor();
  const google::protobuf::Reflection* r = m.GetReflection();
  if (d->full_name() == "google.protobuf.Timestamp") {
    const auto& t = static_cast<const google::protobuf::Timestamp&>(m);
    using google::protobuf::util::TimeUtil;
    if (t.seconds() < TimeUtil::kTimestampMinSeconds ||
        t.seconds() > TimeUtil::kTimestampMaxSeconds || t.nanos() < 0 ||
        t.nanos() > 999'999'999) {
      Fail(path + ": timestamp out of range passed validation");
    }
    return;
  }
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string name = path.empty() ? f->name() : path + "." + f->name();
    const int n = f->is_repeated() ? r->FieldSize(m, f) : 1;
    if (!f->is_repeated() && f->message_type() != nullptr &&
        !r->HasField(m, f)) {
      continue;
    }
    for (int j = 0; j < n; ++j) {
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_STRING: {
          std::string scratch;
          const std::string& s =
              f->is_repeated()
                  ? r->GetRepeatedStringReference(m, f, j, &scratch)
                  : r->GetStringReference(m, f, &scratch);
          if (s.find('\0') != std::string::npos) {
            Fail(name +
                 ": a NUL byte (PostgreSQL text cannot hold it) "
                 "passed validation");
          }
          break;
        }
        case FieldDescriptor::CPPTYPE_ENUM: {
          const int v = f->is_repeated() ? r->GetRepeatedEnumValue(m, f, j)
                                         : r->GetEnumValue(m, f);
          if (v < -32768 || v > 32767) {
            Fail(name + ": enum value beyond smallint passed validation");
          }
          break;
        }
        case FieldDescriptor::CPPTYPE_MESSAGE:
          CheckStorable(f->is_repeated() ? r->GetRepeatedMessage(m, f, j)
                                         : r->GetMessage(m, f),
                        name);
          break;
        default:
          break;
      }
    }
  }
}

}  // namespace netvigil::fuzz

#endif  // NETVIGIL_TESTS_FUZZ_FUZZ_SUPPORT_H_
