#include "agent/collector_link.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/backlog_pacer.h"
#include "common/proto_time.h"
#include "google/protobuf/util/time_util.h"
#include "spdlog/spdlog.h"

namespace netvigil::agent {
namespace {

using google::protobuf::util::TimeUtil;

constexpr size_t kMaxBatchBytes = 4 << 20;
// A failure class repeated is logged again only this often.
constexpr int kRepeatLogEvery = 50;

}  // namespace

std::string FailureClass(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      if (status.error_message().find("database") != std::string::npos) {
        return "collector database unavailable";
      }
      return "collector unreachable";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "collector unreachable";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "refused: name already connected";
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      return "refused: not authorised";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "refused: invalid message";
    case grpc::StatusCode::CANCELLED:
      return "stream cancelled";
    case grpc::StatusCode::OK:
      return "stream ended";
    default:
      return absl::StrCat("stream failed (code ",
                          static_cast<int>(status.error_code()), ")");
  }
}

CollectorLink::CollectorLink(LinkOptions options, Outbox& outbox,
                             LinkHandler& handler, Clock& clock)
    : options_(std::move(options)),
      outbox_(outbox),
      handler_(handler),
      clock_(clock),
      backoff_(options_.backoff) {}

void CollectorLink::Stop() {
  stop_.store(true);
  absl::MutexLock l(&mu_);
  if (active_ != nullptr) active_->TryCancel();
}

std::string CollectorLink::last_failure_class() {
  absl::MutexLock l(&mu_);
  return last_class_;
}

void CollectorLink::ReportFailure(const grpc::Status& status) {
  const std::string cls = FailureClass(status);
  absl::MutexLock l(&mu_);
  if (cls != last_class_) {
    last_class_ = cls;
    same_class_count_ = 0;
    spdlog::warn(
        "collector_link_failed collector={} class=\"{}\" "
        "detail=\"{}\" retrying=yes",
        options_.collector, cls, status.error_message());
  } else if (++same_class_count_ % kRepeatLogEvery == 0) {
    spdlog::warn(
        "collector_link_still_failing collector={} class=\"{}\" "
        "attempts={}",
        options_.collector, cls, same_class_count_ + 1);
  }
}

void CollectorLink::Run() {
  while (!stop_.load()) {
    const absl::Time started = clock_.MonotonicNow();
    grpc::Status status = RunSession();
    connected_.store(false);
    if (stop_.load()) break;
    if (clock_.MonotonicNow() - started >= options_.stable_after) {
      backoff_.Reset();
    }
    ReportFailure(status);
    const absl::Duration delay = backoff_.Next();
    // Sleep in slices so Stop() is prompt.
    const absl::Time until = clock_.MonotonicNow() + delay;
    while (!stop_.load() && clock_.MonotonicNow() < until) {
      clock_.SleepFor(
          std::min(absl::Milliseconds(100), until - clock_.MonotonicNow()));
    }
  }
}

grpc::Status CollectorLink::RunSession() {
  grpc::ChannelArguments args;
  // Notice a collector that vanished without closing the connection.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Our own backoff decides when to retry, not gRPC's.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(16 << 20);
  if (!options_.ssl_target_name.empty()) {
    args.SetSslTargetNameOverride(options_.ssl_target_name);
  }
  auto channel =
      grpc::CreateCustomChannel(options_.collector, options_.credentials, args);
  const auto deadline = std::chrono::system_clock::now() +
                        absl::ToChronoMilliseconds(options_.connect_timeout);
  // Fail fast on a refused or unreachable address (TRANSIENT_FAILURE): our
  // backoff, not gRPC's internal retries, paces the next attempt.
  for (grpc_connectivity_state state = channel->GetState(true);
       state != GRPC_CHANNEL_READY; state = channel->GetState(true)) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE ||
        state == GRPC_CHANNEL_SHUTDOWN ||
        !channel->WaitForStateChange(state, deadline)) {
      return grpc::Status(
          grpc::StatusCode::UNAVAILABLE,
          absl::StrCat("cannot connect to ", options_.collector));
    }
    if (stop_.load()) return grpc::Status::OK;
  }
  auto stub = v1::Agent::NewStub(channel);
  grpc::ClientContext ctx;
  {
    absl::MutexLock l(&mu_);
    active_ = &ctx;
    if (stop_.load()) ctx.TryCancel();
  }
  auto stream = stub->Stream(&ctx);
  absl::Mutex write_mu;
  auto write = [&](const v1::AgentMessage& m) {
    absl::MutexLock l(&write_mu);
    return stream->Write(m);
  };

  auto finish = [&]() {
    grpc::Status s = stream->Finish();
    absl::MutexLock l(&mu_);
    active_ = nullptr;
    return s;
  };

  v1::AgentMessage hello;
  *hello.mutable_hello() = options_.hello;
  hello.mutable_hello()->set_next_seq(outbox_.next_seq());
  v1::CollectorMessage in;
  if (!write(hello) || !stream->Read(&in)) return finish();
  if (!in.has_welcome()) {
    ctx.TryCancel();
    finish();
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the collector's first message was not a welcome");
  }
  const v1::Welcome welcome = in.welcome();
  uint64_t acked = welcome.acked_through_seq();
  if (acked >= outbox_.next_seq()) {
    spdlog::warn(
        "spool_behind_collector acked_through={} next_seq={} "
        "detail=\"numbering moves past what the collector has\"",
        acked, outbox_.next_seq());
    absl::Status s = outbox_.AdvanceNextSeqPast(acked);
    if (!s.ok())
      spdlog::error("spool_advance_failed error=\"{}\"",
                    std::string(s.message()));
  }
  if (absl::Status s = outbox_.AckThrough(acked); !s.ok()) {
    spdlog::warn("spool_ack_failed seq={} error=\"{}\"", acked,
                 std::string(s.message()));
  }
  handler_.OnWelcome(welcome);
  absl::Duration heartbeat = absl::Seconds(5);
  if (welcome.plan().has_heartbeat_interval()) {
    heartbeat = FromProtoDuration(welcome.plan().heartbeat_interval());
    heartbeat = std::max(heartbeat, absl::Milliseconds(100));
  }
  {
    absl::MutexLock l(&mu_);
    if (!last_class_.empty()) {
      spdlog::info("collector_link_recovered after=\"{}\"", last_class_);
    }
    last_class_.clear();
    same_class_count_ = 0;
  }
  connected_.store(true);
  spdlog::info(
      "collector_connected collector={} name={} acked_through={} "
      "pending={}",
      options_.collector, welcome.agent_name(), acked, outbox_.pending());

  std::atomic<uint64_t> acked_through{acked};
  std::atomic<bool> reader_done{false};
  std::thread reader([&] {
    v1::CollectorMessage m;
    while (stream->Read(&m)) {
      if (m.has_ack()) {
        if (m.ack().refused_seq() != 0) {
          // The collector stored a gap record with this reason in the
          // result's place; its ack follows like any other. Nothing to
          // resend: the same bytes would be refused again.
          refused_results_.fetch_add(1);
          spdlog::warn(
              "result_refused_by_collector seq={} reason=\"{}\" "
              "detail=\"recorded as a gap; delivery goes on\"",
              m.ack().refused_seq(), m.ack().refused_reason());
        }
        const uint64_t n = m.ack().acked_through_seq();
        if (n > acked_through.load()) {
          acked_through.store(n);
          absl::Status s = outbox_.AckThrough(n);
          if (!s.ok()) {
            spdlog::warn("spool_ack_failed seq={} error=\"{}\"", n,
                         std::string(s.message()));
          }
        }
      } else if (m.has_command()) {
        v1::AgentMessage reply;
        *reply.mutable_command_status() = handler_.OnCommand(m.command());
        write(reply);
      } else if (m.has_plan_update()) {
        handler_.OnPlanUpdate(m.plan_update());
      }
    }
    reader_done.store(true);
  });

  uint64_t sent = acked;
  BacklogPacer pacer(options_.backlog_bytes_per_second, options_.backlog_after,
                     clock_);
  absl::Time next_heartbeat = clock_.MonotonicNow();
  bool ok = true;
  while (ok && !stop_.load() && !reader_done.load()) {
    const absl::Time now = clock_.MonotonicNow();
    if (now >= next_heartbeat) {
      v1::AgentMessage hb;
      *hb.mutable_heartbeat()->mutable_sent_at() =
          TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(clock_.Now()));
      hb.mutable_heartbeat()->set_spooled(outbox_.pending());
      hb.mutable_heartbeat()->set_dropped_total(outbox_.dropped_total());
      hb.mutable_heartbeat()->set_refused_results(refused_results_.load());
      handler_.FillHeartbeat(hb.mutable_heartbeat());
      ok = write(hb);
      next_heartbeat = now + heartbeat;
      continue;
    }
    const uint64_t in_flight = sent - std::min(sent, acked_through.load());
    if (in_flight < options_.max_unacked) {
      auto batch = outbox_.ReadAfter(sent, options_.max_unacked - in_flight,
                                     kMaxBatchBytes);
      if (!batch.ok()) {
        spdlog::error("spool_read_failed error=\"{}\"",
                      std::string(batch.status().message()));
      } else if (!batch->empty()) {
        for (const v1::Result& r : *batch) {
          pacer.Pace(r.ByteSizeLong(), FromProtoTime(r.produced_at()));
          v1::AgentMessage m;
          *m.mutable_result() = r;
          if (!(ok = write(m))) break;
          sent = r.seq();
        }
        continue;
      }
      outbox_.WaitForResultsAfter(
          sent, std::min(next_heartbeat - now, absl::Milliseconds(200)));
    } else {
      // Window full: wait for acks.
      clock_.SleepFor(absl::Milliseconds(5));
    }
  }
  // When the collector ended the stream, Finish() carries its reason;
  // otherwise (stop, a failed write) end it from this side.
  if (!reader_done.load()) ctx.TryCancel();
  reader.join();
  grpc::Status s = finish();
  if (stop_.load()) return grpc::Status::OK;
  if (s.ok()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "the collector ended the stream");
  }
  return s;
}

}  // namespace netvigil::agent
