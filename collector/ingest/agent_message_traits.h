// How gRPC turns an agent's bytes into a v1::AgentMessage in the collector:
// as protobuf does, but only after a walk over the wire bytes has shown that
// parsing them cannot cost more than kAgentMessageParseLimits (see
// message_precheck.h: a message of tiny sub-messages parses to 60x its
// size), and, when the reading thread has an AgentReadContext
// (inflight_budget.h), only once that estimate fits the in-flight budget:
// a stream over budget waits here with its bytes unparsed. The sync API
// parses on the thread that calls Read() and gives no other place to see
// the bytes before they are parsed; SerializationTraits is gRPC's
// documented extension point.
//
// Include this (and only this) wherever the collector reads AgentMessages
// through gRPC: it must be seen before such a read is instantiated. Today
// that is agent_service.cc alone; the generated code instantiates no read.
// Serialize is protobuf's own, so a translation unit that writes
// AgentMessages without this header (a test client) compiles the same.
// Thread-safe.
#ifndef NETVIGIL_COLLECTOR_INGEST_AGENT_MESSAGE_TRAITS_H_
#define NETVIGIL_COLLECTOR_INGEST_AGENT_MESSAGE_TRAITS_H_

#include <string>

#include "collector/ingest/inflight_budget.h"
#include "collector/ingest/message_precheck.h"
#include "common/grpc_status.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "netvigil/v1/agent.pb.h"

namespace netvigil::collector {

// A 50,000-socket snapshot is estimated at 34 MiB; a 32 MiB message of
// realistic content (the receive limit) at up to about 125 MiB.
inline constexpr ParseCostLimits kAgentMessageParseLimits{128 << 20, 32};

}  // namespace netvigil::collector

namespace grpc {

template <>
class SerializationTraits<netvigil::v1::AgentMessage, void> {
 public:
  static Status Serialize(const grpc::protobuf::MessageLite& msg,
                          ByteBuffer* bb, bool* own_buffer) {
    return GenericSerialize<ProtoBufferWriter, netvigil::v1::AgentMessage>(
        msg, bb, own_buffer);
  }

  static Status Deserialize(ByteBuffer* buffer,
                            grpc::protobuf::MessageLite* msg) {
    netvigil::collector::AgentReadContext* ctx =
        netvigil::collector::CurrentAgentRead();
    if (buffer == nullptr) {
      return GenericDeserialize<ProtoBufferReader, netvigil::v1::AgentMessage>(
          buffer, msg);
    }
    absl::Status s;
    netvigil::collector::ParseCost cost;
    {
      ProtoBufferReader reader(buffer);
      if (!reader.status().ok()) {
        buffer->Clear();
        return reader.status();
      }
      s = netvigil::collector::PrecheckWire(
          netvigil::v1::AgentMessage::descriptor(), &reader,
          static_cast<int64_t>(buffer->Length()),
          netvigil::collector::kAgentMessageParseLimits, &cost);
    }
    if (s.ok() && ctx != nullptr && ctx->budget != nullptr) {
      ctx->reservation = ctx->budget->Acquire(
          ctx->agent, static_cast<size_t>(cost.estimate()), ctx->give_up);
      if (ctx->reservation == nullptr) {
        s = absl::CancelledError(
            "the stream ended while its message waited for memory");
      }
    }
    if (!s.ok()) {
      if (ctx != nullptr) ctx->refused = s;
      buffer->Clear();
      return netvigil::ToGrpcStatus(s);
    }
    return GenericDeserialize<ProtoBufferReader, netvigil::v1::AgentMessage>(
        buffer, msg);
  }
};

}  // namespace grpc

#endif  // NETVIGIL_COLLECTOR_INGEST_AGENT_MESSAGE_TRAITS_H_
