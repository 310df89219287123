#include "collector/ingest/message_precheck.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"

namespace netvigil::collector {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;

class Walker {
 public:
  Walker(CodedInputStream& in, const ParseCostLimits& limits, ParseCost& cost)
      : in_(in), limits_(limits), cost_(cost) {}

  absl::Status Walk(const Descriptor* type, int depth) {
    for (;;) {
      const uint32_t tag = in_.ReadTag();
      if (tag == 0) return absl::OkStatus();  // at the limit or the end
      const int number = WireFormatLite::GetTagFieldNumber(tag);
      const FieldDescriptor* field =
          type == nullptr ? nullptr : type->FindFieldByNumber(number);
      const bool repeated_scalar =
          field != nullptr && field->is_repeated() &&
          field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE &&
          field->cpp_type() != FieldDescriptor::CPPTYPE_STRING;
      if (repeated_scalar && WireFormatLite::GetTagWireType(tag) !=
                                 WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
        ++cost_.scalars;  // one unpacked element
        if (absl::Status s = Check(); !s.ok()) return s;
      }
      if (field == nullptr) {
        // Kept as an unknown field: an entry of its own (and a string for
        // a length-delimited one), counted like a string.
        ++cost_.strings;
        if (absl::Status s = Check(); !s.ok()) return s;
      }
      switch (WireFormatLite::GetTagWireType(tag)) {
        case WireFormatLite::WIRETYPE_VARINT: {
          uint64_t v;
          if (!in_.ReadVarint64(&v)) return Malformed();
          break;
        }
        case WireFormatLite::WIRETYPE_FIXED64:
          if (!in_.Skip(8)) return Malformed();
          break;
        case WireFormatLite::WIRETYPE_FIXED32:
          if (!in_.Skip(4)) return Malformed();
          break;
        case WireFormatLite::WIRETYPE_LENGTH_DELIMITED: {
          uint32_t len;
          if (!in_.ReadVarint32(&len)) return Malformed();
          if (field != nullptr &&
              field->type() == FieldDescriptor::TYPE_MESSAGE) {
            if (depth >= limits_.max_depth) {
              return absl::InvalidArgumentError(absl::StrCat(
                  "message nested deeper than ", limits_.max_depth));
            }
            ++cost_.messages;
            if (absl::Status s = Check(); !s.ok()) return s;
            const auto limit = in_.PushLimit(static_cast<int>(len));
            if (absl::Status s = Walk(field->message_type(), depth + 1);
                !s.ok()) {
              return s;
            }
            if (!in_.ConsumedEntireMessage() || in_.BytesUntilLimit() != 0) {
              return Malformed();
            }
            in_.PopLimit(limit);
          } else if (repeated_scalar) {
            // Packed: at most one element per byte.
            cost_.scalars += len;
            if (absl::Status s = Check(); !s.ok()) return s;
            if (!in_.Skip(static_cast<int>(len))) return Malformed();
          } else {
            // Strings and bytes are one allocation each; unknown fields
            // cost their bytes.
            if (len > 0 && field != nullptr &&
                (field->type() == FieldDescriptor::TYPE_STRING ||
                 field->type() == FieldDescriptor::TYPE_BYTES)) {
              ++cost_.strings;
              if (absl::Status s = Check(); !s.ok()) return s;
            }
            if (!in_.Skip(static_cast<int>(len))) return Malformed();
          }
          break;
        }
        default:  // groups: not in our protos
          return Malformed();
      }
    }
  }

  absl::Status Check() {
    if (cost_.estimate() > limits_.max_parsed_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("message would take more than ",
                       limits_.max_parsed_bytes >> 20, " MiB to parse (",
                       cost_.messages, " sub-messages and ", cost_.strings,
                       " strings so far in ", cost_.wire_bytes >> 10, " KiB)"));
    }
    return absl::OkStatus();
  }

 private:
  static absl::Status Malformed() {
    return absl::InvalidArgumentError("malformed protobuf message");
  }

  CodedInputStream& in_;
  const ParseCostLimits& limits_;
  ParseCost& cost_;
};

}  // namespace

absl::Status PrecheckWire(const Descriptor* type,
                          google::protobuf::io::ZeroCopyInputStream* in,
                          int64_t size, const ParseCostLimits& limits,
                          ParseCost* cost) {
  ParseCost local;
  ParseCost& c = cost != nullptr ? *cost : local;
  c = ParseCost{};
  c.wire_bytes = size;
  c.messages = 1;  // the message itself
  CodedInputStream coded(in);
  coded.SetTotalBytesLimit(INT32_MAX);
  Walker w(coded, limits, c);
  if (absl::Status s = w.Check(); !s.ok()) return s;
  absl::Status s = w.Walk(type, 0);
  if (!s.ok()) return s;
  if (!coded.ConsumedEntireMessage()) {
    return absl::InvalidArgumentError("malformed protobuf message");
  }
  return absl::OkStatus();
}

absl::Status PrecheckWire(const Descriptor* type, const std::string& bytes,
                          const ParseCostLimits& limits, ParseCost* cost) {
  google::protobuf::io::ArrayInputStream in(bytes.data(),
                                            static_cast<int>(bytes.size()));
  return PrecheckWire(type, &in, static_cast<int64_t>(bytes.size()), limits,
                      cost);
}

}  // namespace netvigil::collector
